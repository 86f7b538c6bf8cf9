"""Issue 13, item 8: a property-based fuzzer over every dialect and every content type, through the ASGI app.

Bodies are built from the real captures in ``tests/fixtures/<dialect>/`` (so every
registered dialect is reached), with values replaced by hostile ones (huge and
negative numbers, times out of range, wrong types, deep nesting, odd text), mixed
with arbitrary JSON and bytes, framed as JSON, NDJSON or SSE, sent with any media
type and any ``?dialect=``. Whatever comes in, the app must answer below 500,
still answer health, and keep every background task alive.

CI runs a fixed budget (``FUZZ_EXAMPLES``, default 300); ``make fuzz-hypothesis`` runs
a bigger one and prints requests, 5xx and RSS before and after (``FUZZ_REPORT=1``).
The million-request run is ``make fuzz`` (``bench/fuzz_long.py``): a mutation fuzzer
straight into the ASGI app, many times faster per request than this one.
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from otel_bridge.app import create_app
from otel_bridge.config import FeedSettings, MappingSettings, Settings, StoreSettings
from otel_bridge.dialects import registry
from otel_bridge.dialects.framing import ACCEPTED_MEDIA_TYPES, sniff_text_frames
from otel_bridge.model import AgentEvent, EventKind
from tests.support.golden import cases

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
REPORT = os.environ.get("FUZZ_REPORT") == "1"
# Small bounds (100 runs, traces, feed events) make a long run reach every bound early, so what RSS
# does after that is growth the bounds do not cover.
SMALL_BOUNDS = os.environ.get("FUZZ_SMALL_BOUNDS") == "1"


def _seeds() -> list[tuple[str, str | None, Any]]:
    """(dialect folder, SSE event name, decoded JSON) of every frame of every capture."""
    seeds = []
    for capture in cases():
        for frame in sniff_text_frames(capture.read_text()):
            try:
                obj = msgspec.json.decode(frame.data)
            except msgspec.DecodeError:
                continue
            seeds.append((capture.parent.name, frame.event, obj))
    return seeds


SEEDS = _seeds()
FIELDS = sorted(set(AgentEvent.__struct_fields__) | {"timestamp", "type", "id", "data", "delta", "usage"})

poison_numbers = st.one_of(
    st.sampled_from([0, -1, 2**63, 2**64, -(2**63) - 1, 10**20, 1e20, 1e308, -1e308, 5e-324, 1e13, 2**53 + 1]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
poison_text = st.one_of(
    st.sampled_from(
        ["0001-01-01T00:00:00Z", "2600-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "", "[DONE]", "\x00", "nan", "1e400"]
    ),
    st.sampled_from([k.value for k in EventKind]),
    st.text(max_size=30),
)
scalars = st.one_of(st.none(), st.booleans(), poison_numbers, poison_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=12,
)


def _deep(depth: int, kind: str) -> Any:
    return msgspec.Raw(
        ("[" * depth + "]" * depth).encode() if kind == "list" else b'{"a":' * depth + b"1" + b"}" * depth
    )


@st.composite
def mutated_seed(draw: st.DrawFn) -> tuple[str | None, Any]:
    _, event, obj = draw(st.sampled_from(SEEDS))
    obj = msgspec.json.decode(msgspec.json.encode(obj))  # a copy to change
    if isinstance(obj, dict) and obj:
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.one_of(st.sampled_from(sorted(obj)), st.sampled_from(FIELDS)))
            target = obj
            if isinstance(obj.get(key), dict) and obj[key] and draw(st.booleans()):
                target, key = obj[key], draw(st.sampled_from(sorted(obj[key])))
            target[key] = draw(
                st.one_of(json_values, st.builds(_deep, st.integers(100, 3000), st.sampled_from(["list", "dict"])))
            )
    return event, obj


frame_values = st.one_of(
    mutated_seed(),
    st.tuples(st.none(), json_values),
    st.tuples(
        st.sampled_from([None, "message", "error", "RUN_STARTED"]),
        st.sampled_from([k.value for k in EventKind]).map(lambda k: {"kind": k, "run_id": "r", "timestamp": 1e20}),
    ),
)


def _encode(value: Any) -> bytes:
    return msgspec.json.encode(value)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    frames = draw(st.lists(frame_values, min_size=1, max_size=6))
    shape = draw(st.sampled_from(["json", "ndjson", "sse", "sse-crlf", "raw"]))
    if shape == "raw":
        return draw(st.binary(max_size=200)), draw(st.sampled_from([*ACCEPTED_MEDIA_TYPES, "text/plain", ""]))
    if shape == "json":
        values = [v for _, v in frames]
        data = _encode(values if len(values) > 1 or draw(st.booleans()) else values[0])
        media = "application/json"
    elif shape == "ndjson":
        data = b"\n".join(_encode(v) for _, v in frames)
        media = draw(st.sampled_from(["application/x-ndjson", "application/jsonl", "application/ndjson"]))
    else:
        end = "\n" if shape == "sse" else "\r\n"
        parts = []
        for i, (event, value) in enumerate(frames):
            head = f"event: {event}{end}" if event else ""
            ident = f"id: {i}{end}" if draw(st.booleans()) else ""
            parts.append(f"{head}{ident}data: {_encode(value).decode()}{end}{end}")
        data = "".join(parts).encode()
        media = "text/event-stream"
    if draw(st.booleans()):  # cut short, or a byte changed
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] if draw(st.booleans()) else data[:cut] + bytes([draw(st.integers(0, 255))]) + data[cut + 1 :]
    return data, media


class Fuzzed:
    def __init__(self, client: TestClient, tasks: set[asyncio.Task[Any]]) -> None:
        self.client = client
        self.tasks = tasks
        self.statuses: Counter[int] = Counter()
        self.rss_mb: list[int] = []  # every 1,000 requests


def _live_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if not t.done()}


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Fuzzed]:
    settings = Settings()
    if SMALL_BOUNDS:
        settings = Settings(
            mapping=MappingSettings(max_open_runs=100, max_finished_runs=100),
            store=StoreSettings(max_traces=100),
            feed=FeedSettings(ring_size=100),
        )
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.portal is not None

        async def tasks() -> set[asyncio.Task[Any]]:
            return _live_tasks()

        background = {t for t in client.portal.call(tasks) if not t.get_name().startswith(("anyio", "Task-"))}
        state = Fuzzed(client, background)
        rss_before = _rss_mb()
        yield state
        if REPORT:
            total = sum(state.statuses.values())
            fives = sum(n for code, n in state.statuses.items() if code >= 500)
            rejected = client.get("/v1/health").json()["events_rejected"]
            print(
                f"\nfuzz: {total} requests, {fives} answers 5xx, statuses {dict(sorted(state.statuses.items()))},"
                f" RSS {rss_before:.0f} MB before, {_rss_mb():.0f} MB after (every 1,000: {state.rss_mb}),"
                f" rejections {rejected}"
            )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not REPORT,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(
    body=bodies(),
    dialect=st.one_of(st.none(), st.sampled_from([*registry.DIALECTS, "nope"])),
    run_id=st.one_of(st.none(), st.text(max_size=10)),
)
def test_no_input_gets_a_5xx_or_hurts_the_app(
    fuzzed: Fuzzed, body: tuple[bytes, str], dialect: str | None, run_id: str | None
) -> None:
    data, media = body
    params = {k: v for k, v in (("dialect", dialect), ("run_id", run_id)) if v is not None}
    r = fuzzed.client.post("/v1/events", content=data, headers={"Content-Type": media}, params=params)
    fuzzed.statuses[r.status_code] += 1
    if REPORT and sum(fuzzed.statuses.values()) % 1000 == 0:
        fuzzed.rss_mb.append(round(_rss_mb()))
    # A dialect that raises is caught and counted (`dialect_error`), but it is a bug: the fuzzer says so.
    if r.status_code in (202, 422):
        assert "dialect_error" not in {e["reason"] for e in r.json().get("errors", [])}, r.text
    assert r.status_code < 500, r.text
    assert r.status_code in (202, 400, 415, 422), r.text
    assert fuzzed.client.get("/v1/health").status_code == 200
    assert fuzzed.client.get("/v1/traces").status_code == 200

    async def alive() -> set[asyncio.Task[Any]]:
        return _live_tasks()

    assert fuzzed.client.portal is not None
    dead = fuzzed.tasks - fuzzed.client.portal.call(alive)
    assert not dead, f"background tasks ended: {[t.get_name() for t in dead]}"


def test_the_fuzzer_reaches_every_dialect() -> None:
    assert {folder for folder, _, _ in SEEDS} == set(registry.DIALECTS)
