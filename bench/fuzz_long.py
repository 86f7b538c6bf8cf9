"""The long ingest fuzz run: a million mutated requests through the ASGI app, in this process.

Issue 13 asks for 1,000,000 fuzzed requests with zero 5xx, zero dead tasks and
flat memory. Through HTTP with hypothesis that is most of a day; this driver
calls the app's ASGI interface directly (no sockets, no HTTP client) with a
cheap mutation fuzzer, so a million takes hours at most. The hypothesis fuzzer
(``tests/test_fuzz_ingest.py``) stays in CI with its fixed budget: it shrinks
what it finds, this one finds by volume.

Inputs start from every capture in ``tests/fixtures/<dialect>/`` (every
registered dialect), as whole files and as their decoded frames. Each request
stacks one to three mutations: bit flips, interesting bytes, truncation,
deletion and duplication of a range, splicing two captures, nesting bombs
(inserted, or a whole body), numbers replaced by extremes, hostile unicode
(invalid UTF-8, lone surrogates, NUL, bidi controls), frames re-framed as a JSON
array, NDJSON or SSE (LF or CRLF) and frame values replaced by hostile ones. The
media type and ``?dialect=``/``?run_id=`` vary too.

Request ``i`` of seed ``s`` is drawn from ``random.Random(s * 2**32 + i)`` only,
so any request can be replayed alone: ``--seed s --only i --show``.

Every ``--report-every`` requests it prints requests so far, the rate, 5xx,
dead background tasks, ``dialect_error`` answers (a dialect that raised: caught
and counted, but a bug), errors logged, and the RSS; health and ``/v1/traces``
are asked each 1,000 requests. The summary at the end (also after Ctrl-C or
SIGTERM) gives RSS after warm-up and at the end. Exit status 1 if any 5xx, dead
task or failed health check.

Usage: python bench/fuzz_long.py [--requests 1000000] [--seed 1] [--report-every 20000]
       [--small-bounds] [--save DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec

from otel_bridge.app import create_app
from otel_bridge.config import FeedSettings, MappingSettings, Settings, StoreSettings
from otel_bridge.dialects import registry
from otel_bridge.dialects.framing import ACCEPTED_MEDIA_TYPES, sniff_text_frames

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
MEDIA_BY_SUFFIX = {".sse": "text/event-stream", ".ndjson": "application/x-ndjson", ".json": "application/json"}
ASGI = {"version": "3.0", "spec_version": "2.3"}
Json = Any


# -- the corpus ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Capture:
    dialect: str
    media: str
    body: bytes
    frames: tuple[tuple[str | None, Json], ...]  # (SSE event name, decoded JSON) of each frame


def load_corpus(root: Path = FIXTURES) -> list[Capture]:
    """Every capture (not an expected tree or options file) with its decoded frames."""
    corpus = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in MEDIA_BY_SUFFIX or path.name.endswith((".expected.json", ".options.json")):
            continue
        body = path.read_bytes()
        frames = []
        for frame in sniff_text_frames(body.decode("utf-8", "replace")):
            try:
                frames.append((frame.event, msgspec.json.decode(frame.data)))
            except msgspec.DecodeError:
                continue
        corpus.append(Capture(path.parent.name, MEDIA_BY_SUFFIX[path.suffix], body, tuple(frames)))
    return corpus


# -- hostile values ----------------------------------------------------------------------------------------
NUMBERS = [
    b"0", b"-1", b"1e20", b"-1e20", b"1e308", b"-1e308", b"1e400", b"5e-324", b"9223372036854775807",
    b"9223372036854775808", b"18446744073709551616", b"-9223372036854775809", b"1180591620717411303424",
    b"9007199254740993", b"1e13", b"0.0", b"-0", b"1.5", b"NaN", b"Infinity", b"-Infinity", b"00", b"1e",
]  # fmt: skip
TEXT = [
    "0001-01-01T00:00:00Z", "2600-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "", "[DONE]", "\x00", "nan",
    "1e400", "\u202e\u2066evil", "\U0001f4a5" * 50, "\ufeff", "a" * 5000, "\\", '"', "\r\n\r\ndata: x\n\n",
]  # fmt: skip
UNICODE_BYTES = [
    b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff\xfe", b"\x00", b"\\ud800",
    b"\\udfff\\ud800", b"\xe2\x80\xae", b"\xef\xbb\xbf", b"\xf0\x9f\x92\xa5", b"\\u0000",
]  # fmt: skip
INTERESTING = b'\x00\xff\x7f"{}[]:,\n\r\\ '
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def hostile_value(rng: random.Random, depth: int = 0) -> Json:
    pick = rng.randrange(9)
    if pick == 0:
        return msgspec.Raw(rng.choice(NUMBERS))
    if pick == 1:
        return rng.choice(TEXT)
    if pick == 2:
        return rng.choice([None, True, False, [], {}])
    if pick == 3:
        n = rng.choice([50, 500, 3_000, 20_000])
        return msgspec.Raw(b"[" * n + b"]" * n if rng.random() < 0.5 else b'{"a":' * n + b"1" + b"}" * n)
    if pick == 4 and depth < 3:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 5 and depth < 3:
        return {rng.choice(KEYS): hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if pick == 6:
        return rng.randrange(-(2**70), 2**70)
    if pick == 7:
        return rng.uniform(-1e300, 1e300)
    return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(12)))


KEYS = [
    "kind", "type", "run_id", "id", "timestamp", "data", "delta", "usage", "event", "name", "tool_call_id",
    "duration_ms", "model", "input_tokens", "output_tokens", "parent_id", "messages", "content", "status",
]  # fmt: skip


def mutate_value(rng: random.Random, obj: Json) -> Json:
    """Replace one to three values (at the top or one level down) by hostile ones."""
    if not isinstance(obj, dict) or not obj:
        return hostile_value(rng) if rng.random() < 0.3 else obj
    for _ in range(rng.randrange(1, 4)):
        target = obj
        key = rng.choice(list(obj)) if rng.random() < 0.7 else rng.choice(KEYS)
        inner = obj.get(key)
        if isinstance(inner, dict) and inner and rng.random() < 0.5:
            target, key = inner, rng.choice(list(inner))
        target[key] = hostile_value(rng)
    return obj


# -- framing -------------------------------------------------------------------------------------------------
def frame(rng: random.Random, frames: list[tuple[str | None, Json]]) -> tuple[bytes, str]:
    encoded = [(event, msgspec.json.encode(value)) for event, value in frames]
    shape = rng.randrange(4)
    if shape == 0:
        values = [data for _, data in encoded]
        single = len(values) == 1 and rng.random() < 0.5
        return (values[0] if single else b"[" + b",".join(values) + b"]"), "application/json"
    if shape == 1:
        return b"\n".join(data for _, data in encoded), "application/x-ndjson"
    end = b"\n" if shape == 2 else b"\r\n"
    parts = []
    for i, (event, data) in enumerate(encoded):
        if event and rng.random() < 0.9:
            parts.append(b"event: " + event.encode() + end)
        if rng.random() < 0.3:
            parts.append(b"id: " + str(i).encode() + end)
        parts.append(b"data: " + data + end + end)
    return b"".join(parts), "text/event-stream"


# -- byte mutations ----------------------------------------------------------------------------------------
def _flip(rng: random.Random, data: bytes, _: list[Capture]) -> bytes:
    if not data:
        return data
    buf = bytearray(data)
    for _flips in range(rng.randrange(1, 5)):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def _interesting(rng: random.Random, data: bytes, _: list[Capture]) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + bytes([rng.choice(INTERESTING)]) + data[at + 1 :]


def _truncate(rng: random.Random, data: bytes, _: list[Capture]) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _delete(rng: random.Random, data: bytes, _: list[Capture]) -> bytes:
    a = rng.randrange(len(data) + 1)
    return data[:a] + data[a + rng.randrange(1, 200) :]


def _duplicate(rng: random.Random, data: bytes, _: list[Capture]) -> bytes:
    a = rng.randrange(len(data) + 1)
    b = min(len(data), a + rng.randrange(1, 2_000))
    return data[:b] + data[a:b] * rng.randrange(1, 4) + data[b:]


def _splice(rng: random.Random, data: bytes, corpus: list[Capture]) -> bytes:
    other = rng.choice(corpus).body
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


def _bomb(rng: random.Random, data: bytes, _: list[Capture]) -> bytes:
    n = rng.choice([200, 1_000, 10_000, 100_000])
    bomb = b"[" * n + b"]" * n if rng.random() < 0.5 else b'{"a":' * n + b"1" + b"}" * n
    if rng.random() < 0.3:
        return bomb
    # In a value position when there is one, else anywhere.
    at = data.find(b":", rng.randrange(len(data) + 1)) + 1 or rng.randrange(len(data) + 1)
    return data[:at] + bomb + data[at:]


def _number(rng: random.Random, data: bytes, _: list[Capture]) -> bytes:
    matches = list(NUMBER.finditer(data, rng.randrange(len(data) + 1)))[:50]
    if not matches:
        return data
    m = rng.choice(matches)
    return data[: m.start()] + rng.choice(NUMBERS) + data[m.end() :]


def _unicode(rng: random.Random, data: bytes, _: list[Capture]) -> bytes:
    # Inside a string when one starts after the chosen point, so JSON stays otherwise valid.
    at = data.find(b'"', rng.randrange(len(data) + 1)) + 1 or rng.randrange(len(data) + 1)
    return data[:at] + rng.choice(UNICODE_BYTES) * rng.randrange(1, 4) + data[at:]


BYTE_MUTATIONS: list[Callable[[random.Random, bytes, list[Capture]], bytes]] = [
    _flip, _interesting, _truncate, _delete, _duplicate, _splice, _bomb, _number, _unicode,
]  # fmt: skip


# -- one request ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Request:
    body: bytes
    media: str
    params: dict[str, str]
    mutations: tuple[str, ...]


DIALECT_CHOICES = [*registry.DIALECTS, "nope", ""]


def draw(corpus: list[Capture], seed: int, index: int) -> Request:
    """Request ``index`` of ``seed``: a function of those two alone (replayable)."""
    rng = random.Random(seed * 2**32 + index)
    capture = rng.choice(corpus)
    names: list[str] = []
    if capture.frames and rng.random() < 0.5:
        copy = msgspec.json.decode(msgspec.json.encode([v for _, v in capture.frames]))
        picked = list(zip((e for e, _ in capture.frames), copy, strict=True))
        if rng.random() < 0.5:  # a slice of the run, so that runs stay open or end partway
            a = rng.randrange(len(picked))
            picked = picked[a : a + rng.randrange(1, 8)]
        if rng.random() < 0.7:
            i = rng.randrange(len(picked))
            picked[i] = (picked[i][0], mutate_value(rng, picked[i][1]))
            names.append("value")
        body, media = frame(rng, picked)
        names.append("reframe")
    else:
        body, media = capture.body, capture.media
    for _ in range(rng.randrange(0 if names else 1, 4)):
        mutation = rng.choice(BYTE_MUTATIONS)
        body = mutation(rng, body, corpus)
        names.append(mutation.__name__.lstrip("_"))
    roll = rng.random()
    if roll < 0.05:
        media = rng.choice(["text/plain", "", "application/xml", "multipart/form-data; boundary=x"])
    elif roll < 0.12:
        media = rng.choice(ACCEPTED_MEDIA_TYPES)
    elif roll < 0.16:
        media += rng.choice(["; charset=utf-8", "; charset=latin-1", ";;", "; q=\x00"])
    params: dict[str, str] = {}
    if rng.random() < 0.2:
        params["dialect"] = capture.dialect if rng.random() < 0.6 else rng.choice(DIALECT_CHOICES)
    if rng.random() < 0.2:
        params["run_id"] = rng.choice(["r", "", "x" * 300, "\u202e", f"run-{rng.randrange(1_000)}"])
    return Request(body, media, params, tuple(names))


# -- the app, over raw ASGI -----------------------------------------------------------------------------------
class Lifespan:
    """The app's ASGI lifespan, driven the way a server drives it."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.state: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, str]:
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._outbox.put(message)

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        self._task = asyncio.create_task(self._app(scope, self._receive, self._send), name="fuzz-lifespan")
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._outbox.get()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"startup failed: {answer}")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._outbox.get()
        assert self._task is not None
        await self._task


async def call(
    app: Any, state: dict[str, Any], method: str, path: str, query: str = "", body: bytes = b"", media: str = ""
) -> tuple[int, bytes]:
    """One request straight into the ASGI app: (status, body). An exception out of the app is a 500."""
    headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
    if media:
        headers.append((b"content-type", media.encode("latin-1", "replace")))
    scope = {
        "type": "http", "asgi": ASGI, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8318), "state": dict(state),
    }  # fmt: skip
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client stays connected until the response is done
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception:  # what a server would answer with a 500
        logging.getLogger("fuzz").exception("the app raised")
        return 500, b""
    return status, b"".join(chunks)


# -- the run ---------------------------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.count[record.name] += 1


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    fives: list[int] = field(default_factory=list)  # indexes of 5xx answers
    dialect_errors: list[int] = field(default_factory=list)
    health_failures: int = 0
    dead: set[str] = field(default_factory=set)
    rss: list[tuple[int, float]] = field(default_factory=list)


def settings_for(small_bounds: bool) -> Settings:
    if not small_bounds:
        return Settings()
    # Every bound reached early, so RSS growth after that is growth no bound covers.
    return Settings(
        mapping=MappingSettings(max_open_runs=100, max_finished_runs=100),
        store=StoreSettings(max_traces=100),
        feed=FeedSettings(ring_size=100),
    )


def _save(save: Path | None, seed: int, index: int, request: Request, status: int, answer: bytes) -> None:
    if save is None:
        return
    save.mkdir(parents=True, exist_ok=True)
    (save / f"seed{seed}-{index}.body").write_bytes(request.body)
    meta = {"media": request.media, "params": request.params, "mutations": request.mutations, "status": status}
    (save / f"seed{seed}-{index}.json").write_bytes(msgspec.json.encode({**meta, "answer": answer[:2000].decode()}))


async def run(args: argparse.Namespace) -> Tally:
    corpus = load_corpus()
    errors = CountingHandler()
    root = logging.getLogger()
    root.setLevel(logging.ERROR)
    root.handlers[:] = [errors]  # counted, not printed: one line per report is enough
    app = create_app(settings_for(args.small_bounds))
    tally = Tally()
    async with Lifespan(app) as lifespan:
        background = {
            t for t in asyncio.all_tasks() if not t.done() and not t.get_name().startswith(("Task-", "fuzz-"))
        }
        print(f"corpus: {len(corpus)} captures; background tasks: {sorted(t.get_name() for t in background)}")
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        indexes = [args.only] if args.only is not None else range(args.start, args.start + args.requests)
        stop = asyncio.Event()  # Ctrl-C or SIGTERM: finish this request, then the summary
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        for n, index in enumerate(indexes, 1):
            if stop.is_set():
                break
            request = draw(corpus, args.seed, index)
            query = urlencode(request.params)
            status, answer = await call(app, lifespan.state, "POST", "/v1/events", query, request.body, request.media)
            tally.statuses[status] += 1
            if status >= 500 or status not in (202, 400, 413, 415, 422):
                tally.fives.append(index)
                _save(args.save, args.seed, index, request, status, answer)
            elif b"dialect_error" in answer:
                tally.dialect_errors.append(index)
                _save(args.save, args.seed, index, request, status, answer)
            if args.show:
                print(f"#{index} {request.mutations} {request.media!r} {request.params} -> {status} {answer[:500]!r}")
            if n % 100 == 0:
                await asyncio.sleep(0)  # the sweeper and other background tasks get their turn
            if n % 1_000 == 0:
                for path in ("/v1/health", "/v1/traces"):
                    if (await call(app, lifespan.state, "GET", path))[0] != 200:
                        tally.health_failures += 1
                tally.dead |= {t.get_name() for t in background if t.done()}
            if n % args.report_every == 0:
                tally.rss.append((n, rss_mb()))
                wall = time.perf_counter() - start_wall
                print(
                    f"{n:>9} requests  {n / wall:7.0f}/s  cpu {time.process_time() - start_cpu:7.0f} s"
                    f"  5xx {len(tally.fives)}  dead {len(tally.dead)}  dialect_error {len(tally.dialect_errors)}"
                    f"  health failures {tally.health_failures}  errors logged {sum(errors.count.values())}"
                    f"  RSS {tally.rss[-1][1]:.0f} MB",
                    flush=True,
                )
        wall = time.perf_counter() - start_wall
        total = sum(tally.statuses.values())
        print(
            f"\nseed {args.seed}, requests {args.start}..{args.start + total - 1}: {total} in {wall:.0f} s"
            f" ({total / wall:.0f}/s, {time.process_time() - start_cpu:.0f} CPU s)\n"
            f"statuses {dict(sorted(tally.statuses.items()))}\n"
            f"5xx or unexpected: {len(tally.fives)} {tally.fives[:20]}\n"
            f"dialect_error answers: {len(tally.dialect_errors)} {tally.dialect_errors[:20]}\n"
            f"dead background tasks: {sorted(tally.dead)}; health/traces failures: {tally.health_failures}\n"
            f"errors logged by logger: {dict(errors.count)}"
        )
        if tally.rss:
            warm = tally.rss[min(len(tally.rss) - 1, max(0, len(tally.rss) // 10))]
            print(
                f"RSS MB after warm-up ({warm[0]} requests) {warm[1]:.0f}, max {max(r for _, r in tally.rss):.0f},"
                f" at the end {tally.rss[-1][1]:.0f}; samples {[round(r) for _, r in tally.rss]}"
            )
        health = msgspec.json.decode((await call(app, lifespan.state, "GET", "/v1/health"))[1])
        print(
            f"health: status {health['status']}, open_runs {health['open_runs']}, rejected {health['events_rejected']}"
        )
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first request index (to resume or split a run)")
    parser.add_argument("--only", type=int, help="replay this one request index")
    parser.add_argument("--show", action="store_true", help="print every request and its answer")
    parser.add_argument("--report-every", type=int, default=20_000)
    parser.add_argument("--small-bounds", action="store_true", help="bounds of 100 runs, traces and feed events")
    parser.add_argument("--save", type=Path, help="write every failing request's body and answer here")
    args = parser.parse_args(argv)
    tally = asyncio.run(run(args))
    return 1 if tally.fives or tally.dead or tally.health_failures else 0


if __name__ == "__main__":
    sys.exit(main())
