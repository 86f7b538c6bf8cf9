"""Live-feed fan-out: framed once for all subscribers vs a naive per-subscriber serializer.

For 1, 10, 100 and 1000 subscribers, a server process (uvicorn + uvloop +
httptools, one worker) runs either the real feed (``GET /v1/stream``: each event
encoded and framed once, the same bytes queued to every subscriber, everything
accumulated written in one chunk) or a naive baseline in the same app
(``/naive``: each subscriber ``json.dumps`` every event itself and writes it
through sse-starlette's framing, one write per event). A separate client
process opens the subscribers on raw sockets, publishes events at a fixed rate
with ``POST /v1/events`` (10 ms batches) and measures publish-to-receipt latency
per delivered event; the driver reads the server's CPU time from /proc.

Prints, per row: delivered events per server CPU-second (and its inverse, CPU per
delivery), p50/p99 latency, the feed/naive ratio, the feed's events per write
(from ``/v1/health``: its rounds put several events in each write), the publish
rate reached and the load average. The machine is shared and noisy: read the ratios.

``--per-post 1`` publishes one event per POST instead of 10 ms batches;
``--rows 100x1000,1000x1000`` picks the (subscribers x events/s) rows; ``--rounds N``
repeats each row, alternating which of the two goes first, and prints medians
(min-max).

Usage: python bench/bench_fanout.py [--seconds 3] [--rows ...] [--per-post N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.proctree import tree_cpu_seconds  # noqa: E402

ROWS = [(1, 1000), (10, 1000), (100, 1000), (1000, 100)]  # (subscribers, events per second)
NAME = re.compile(rb'"name": ?"(\d+)"')


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server process --------------------------------------------------------------


def serve(port: int) -> None:
    import msgspec
    import uvicorn
    from fastapi import APIRouter
    from sse_starlette import EventSourceResponse, ServerSentEvent

    from otel_bridge.app import create_app
    from otel_bridge.config import load_settings
    from otel_bridge.model import AgentEvent, Placement
    from otel_bridge.sinks.feed.record import enrich

    settings = load_settings(environ={}, overrides={"feed": {"max_subscribers": 2000, "queue_size": 1000}})
    app = create_app(settings)
    bridge = app.state.bridge
    queues: set[asyncio.Queue[tuple[int, AgentEvent, Placement]]] = set()
    seq = iter(range(1, 1 << 62))

    def observe(events: Any, placements: Any) -> None:
        for event, placement in zip(events, placements, strict=True):
            item = (next(seq), event, placement)
            for q in queues:
                if q.qsize() < 1000:
                    q.put_nowait(item)

    bridge.add_observer(observe)
    router = APIRouter()

    @router.get("/naive")
    async def naive() -> EventSourceResponse:
        q: asyncio.Queue[tuple[int, AgentEvent, Placement]] = asyncio.Queue()
        queues.add(q)

        async def gen() -> Any:
            try:
                while True:
                    n, event, placement = await q.get()
                    record = enrich(event, placement, n, agent=event.agent, trace_url_template=None, content=False)
                    data = json.dumps(msgspec.to_builtins(record))  # per subscriber, per event
                    yield ServerSentEvent(data=data, event=event.kind.value, id=str(n))
            finally:
                queues.discard(q)

        return EventSourceResponse(gen(), ping=15, send_timeout=10)

    app.include_router(router)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop="uvloop", http="httptools")


# --- the client process ----------------------------------------------------------------


async def client(
    port: int, path: str, subscribers: int, rate: int, seconds: float, per_post: int = 0
) -> dict[str, Any]:

    total = int(rate * seconds)
    sep = b"\r\n\r\n" if path == "/naive" else b"\n\n"  # sse-starlette's default line ending is CRLF
    latencies: list[int] = []
    received = [0] * subscribers
    connected = 0
    done = asyncio.Event()

    async def subscriber(i: int) -> None:
        nonlocal connected
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        connected += 1
        buf = b""
        try:
            while received[i] < total:
                data = await reader.read(1 << 16)
                if not data:
                    return
                now = time.time_ns()
                buf += data
                cut = buf.rfind(sep)
                if cut < 0:
                    continue
                whole, buf = buf[: cut + len(sep)], buf[cut + len(sep) :]
                for match in NAME.finditer(whole):
                    latencies.append(now - int(match.group(1)))
                    received[i] += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(subscriber(i)) for i in range(subscribers)]
    while connected < subscribers:  # noqa: ASYNC110 - a benchmark's start line, polled
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    print("READY", flush=True)
    sys.stdin.readline()  # the driver has read the server's CPU time
    per_tick = per_post or max(1, rate // 100)
    # Several posters share the schedule (one POST in flight each), so a rate of small POSTs is not
    # held back by one connection's round trips on a busy machine.
    posters = 4 if per_post else 1
    ticks = [(i / rate, min(per_tick, total - i)) for i in range(0, total, per_tick)]
    start = time.monotonic()

    async def poster(mine: list[tuple[float, int]]) -> None:
        # Plain HTTP/1.1 on one kept-alive connection: a client library's own cost per request would
        # limit the rate of small POSTs on a busy machine, and it is not what is measured.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for due, batch in mine:
                delay = start + due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.time_ns()
                body = b"\n".join(
                    json.dumps({"kind": "progress", "run_id": "bench", "name": str(now)}).encode() for _ in range(batch)
                )
                writer.write(
                    b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 202"):
                    raise SystemExit(f"POST /v1/events: {head!r}")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(poster(ticks[i::posters]) for i in range(posters)))
    published_s = time.monotonic() - start
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    done.set()
    latencies.sort()
    n = len(latencies)
    return {
        "delivered": sum(received),
        "expected": total * subscribers,
        "published_per_s": total / published_s,
        "p50_ms": latencies[n // 2] / 1e6 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] / 1e6 if n else None,
    }


# --- the driver --------------------------------------------------------------------------


def run_row(mode: str, subscribers: int, rate: int, seconds: float, per_post: int = 0) -> dict[str, Any]:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        path = "/v1/stream" if mode == "feed" else "/naive"
        args = [sys.executable, __file__, "--client", str(port), path, str(subscribers), str(rate), str(seconds)]
        args.append(str(per_post))
        cli = subprocess.Popen(args, env=env, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert cli.stdout is not None
        assert cli.stdin is not None
        assert cli.stdout.readline().strip() == "READY"
        cpu0 = tree_cpu_seconds(server.pid)
        cli.stdin.write("go\n")
        cli.stdin.flush()
        result: dict[str, Any] = json.loads(cli.stdout.readline())
        cpu = tree_cpu_seconds(server.pid) - cpu0
        cli.wait(30)
        if mode == "feed":
            feed = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).json()["feed"]
            result["per_write"] = feed["delivered"] / feed["writes"] if feed.get("writes") else None
    finally:
        server.terminate()
        server.wait(10)
    result["server_cpu_s"] = cpu
    result["per_cpu_s"] = result["delivered"] / cpu if cpu else 0.0
    result["load"] = os.getloadavg()[0]
    return result


def _us(per_cpu_s: float) -> str:
    return f"{1e6 / per_cpu_s:.1f} us" if per_cpu_s else "n/a"


def _num(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "n/a"


def _ms(value: float | None) -> str:
    return f"{value:>6.1f}ms" if value is not None else "     n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="publishing time per row")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rows", help="subscribers x events/s, comma-separated (default: 1x1000,10x1000,100x1000,1000x100)"
    )
    parser.add_argument("--per-post", type=int, default=0, help="events per POST (default: 10 ms batches)")
    parser.add_argument("--only", choices=("feed", "naive"), help="run one of the two (no ratio)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per row, alternating which mode goes first")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.client:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        port, path, subs, rate, seconds, per_post = args.client
        out = asyncio.run(client(int(port), path, int(subs), int(rate), float(seconds), int(per_post)))
        print(json.dumps(out), flush=True)
        return
    rows = ROWS
    if args.rows:
        rows = [(int(a), int(b)) for a, b in (row.split("x") for row in args.rows.split(","))]
    print(
        f"{'subs':>5} {'ev/s':>5} | {'feed deliv/CPU-s':>16} {'p50':>7} {'p99':>7} | "
        f"{'naive deliv/CPU-s':>17} {'p50':>7} {'p99':>7} | ratio  (delivered/expected)"
    )
    for subscribers, rate in rows:
        feeds: list[dict[str, Any]] = []
        naives: list[dict[str, Any]] = []
        ratios: list[float] = []
        for r in range(args.rounds):
            order = ("feed", "naive") if r % 2 == 0 else ("naive", "feed")
            none = {"per_cpu_s": 0.0, "p50_ms": None, "p99_ms": None, "delivered": 0, "expected": 0}
            got = {
                mode: run_row(mode, subscribers, rate, args.seconds, args.per_post)
                if args.only in (None, mode)
                else none
                for mode in order
            }
            feed, naive = got["feed"], got["naive"]
            feeds.append(feed)
            naives.append(naive)
            ratio = feed["per_cpu_s"] / naive["per_cpu_s"] if naive["per_cpu_s"] else float("nan")
            ratios.append(ratio)
            print(
                f"{subscribers:>5} {rate:>5} | "
                f"{feed['per_cpu_s']:>16.0f} {_ms(feed['p50_ms'])} {_ms(feed['p99_ms'])} | "
                f"{naive['per_cpu_s']:>17.0f} {_ms(naive['p50_ms'])} {_ms(naive['p99_ms'])} | {ratio:>4.2f}x "
                f"({feed['delivered']}/{feed['expected']}, {naive['delivered']}/{naive['expected']}); "
                f"feed: {_us(feed['per_cpu_s'])} CPU/delivery, {_num(feed.get('per_write'))} events/write, "
                f"{_num(feed.get('published_per_s'))} events/s published; load {feed.get('load', 0):.1f}",
                flush=True,
            )
        if args.rounds > 1:
            print(
                f"  median: feed {_spread([f['per_cpu_s'] for f in feeds], '.0f')} deliv/CPU-s, "
                f"p50 {_spread([f['p50_ms'] for f in feeds], '.1f')} ms, "
                f"p99 {_spread([f['p99_ms'] for f in feeds], '.1f')} ms; "
                f"naive {_spread([n['per_cpu_s'] for n in naives], '.0f')}, "
                f"p99 {_spread([n['p99_ms'] for n in naives], '.1f')} ms; ratio {_spread(ratios, '.2f')}x; "
                f"feed CPU/delivery {_spread([1e6 / f['per_cpu_s'] if f['per_cpu_s'] else None for f in feeds], '.1f')}"
                f" us, events/write {_spread([f.get('per_write') for f in feeds], '.0f')}, "
                f"load {_spread([f.get('load') for f in feeds], '.1f')}",
                flush=True,
            )


def _spread(values: list[Any], fmt: str) -> str:
    known = sorted(v for v in values if v is not None)
    if not known:
        return "n/a"
    return f"{statistics.median(known):{fmt}} ({known[0]:{fmt}}-{known[-1]:{fmt}})"


if __name__ == "__main__":
    main()
