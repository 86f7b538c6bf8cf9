"""Issue 13, item 4: the drill's 500s. Sniffing is guarded, deep JSON is a clear rejection everywhere
(ingest and a subscribed source, which must not reconnect over it), and a batch maps each good event once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from otel_bridge.app import create_app
from otel_bridge.assembly import assemble
from otel_bridge.config import Settings, SourceSettings
from otel_bridge.sources.upstream import UpstreamSource
from tests.support.sse_server import ThreadedServer

DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def client() -> Any:
    with TestClient(create_app(Settings())) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "media", "status", "code", "reason"),
    [
        (b'{"kind": ["x"]}', "application/json", 202, None, None),  # unhashable in a sniff: not a dialect's own
        (b'{"kind": {}}', "application/json", 202, None, None),
        (b'{"kind": {"a": 1}, "type": "t"}', "application/x-ndjson", 202, None, None),
        (DEEP_OBJECT, "application/json", 400, "malformed_body", None),
        (DEEP_ARRAY, "application/json", 400, "malformed_body", None),
        (DEEP_OBJECT, "application/x-ndjson", 422, "no_valid_events", "too_deep"),
        (b"data: " + DEEP_ARRAY + b"\n\n", "text/event-stream", 422, "no_valid_events", "too_deep"),
        (b'{"kind": "llm.completed", "run_id": "r", "duration_ms": 1e308}', "application/json", 422,
         "no_valid_events", "duration_out_of_range"),
    ],
)  # fmt: skip
def test_the_drills_bodies_get_a_clear_answer(
    client: TestClient, body: bytes, media: str, status: int, code: str | None, reason: str | None
) -> None:
    r = client.post("/v1/events", content=body, headers={"Content-Type": media})
    assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["error"] == code
    if reason is not None:
        assert [e["reason"] for e in r.json()["errors"]] == [reason]


def test_a_bad_event_in_a_batch_costs_only_itself_and_is_listed(client: TestClient) -> None:
    lines = [
        {"kind": "run.started", "run_id": "batch", "timestamp": 1767225600.0, "id": "e1"},
        {"kind": "tool.completed", "run_id": "batch", "call_id": "t", "tool_name": "x", "duration_ms": 1e308},
        {"kind": "progress", "run_id": "batch", "timestamp": 1767225601.0, "name": "p"},
        {"kind": "progress", "run_id": "batch", "timestamp": "0001-01-01T00:00:00Z"},
    ]
    body = b"\n".join(msgspec.json.encode(line) for line in lines)
    r = client.post("/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    answer = r.json()
    assert (answer["accepted"], answer["rejected"], answer["rejected_indexes"]) == (2, 2, [1, 3])
    assert [e["reason"] for e in answer["errors"]] == ["duration_out_of_range", "timestamp_out_of_range"]
    # The good events reached the store (and so every observer), once.
    (listed,) = [t for t in client.get("/v1/traces").json()["traces"] if t["run_id"] == "batch"]
    assert listed["status"] == "running"
    health = client.get("/v1/health").json()
    assert health["events_received"] == 2
    assert health["events_rejected"] == {"duration_out_of_range": 1, "timestamp_out_of_range": 1}


async def test_a_deep_frame_on_a_subscribed_source_is_rejected_and_the_stream_goes_on() -> None:
    """It used to raise RecursionError out of the decoder: the source reconnected in a loop, losing what followed."""

    async def stream(_: Any) -> StreamingResponse:
        async def body() -> Any:
            yield b'data: {"kind": "run.started", "run_id": "up", "timestamp": 1767225600.0}\n\n'
            yield b"data: " + DEEP_ARRAY + b"\n\n"
            yield b'data: {"kind": "progress", "run_id": "up", "name": "after", "timestamp": 1767225601.0}\n\n'
            await asyncio.sleep(30)

        return StreamingResponse(body(), media_type="text/event-stream")

    server = ThreadedServer(Starlette(routes=[Route("/events", stream)]))
    bridge = assemble(Settings(), pricer=None).bridge
    seen: list[str] = []
    bridge.add_observer(lambda events, _: seen.extend(e.kind.value for e in events))
    source = UpstreamSource(bridge, SourceSettings(name="deep", url=server.url + "/events"), None)
    task = asyncio.create_task(source.run())
    try:
        await _eventually(lambda: len(seen) == 2)
        assert seen == ["run.started", "progress"]
        snapshot = source.snapshot()
        assert (snapshot["rejected"], snapshot["reconnects"]) == (1, 0)
        assert "too_deep" in str(snapshot["last_rejection"])
        assert bridge.stats.events_rejected == {"too_deep": 1}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.stop()


async def _eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
