"""Generic upstream SSE sources: resume with Last-Event-ID, isolation of a failing source, /v1/sources."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.config import Settings, SourceSettings
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import parse_sse
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.model import SpanRecord
from otel_bridge.pipeline import ListSink
from otel_bridge.sources.manager import SourceManager
from otel_bridge.sources.upstream import UpstreamSource
from tests.support.golden import FIXTURES
from tests.support.ports import free_port
from tests.support.server import BridgeProcess
from tests.support.sse_server import CaptureUpstream, start_capture_server

CAPTURE = FIXTURES / "locus" / "weather.sse"  # a capture whose frames carry ids
CUT_AFTER = 10


@pytest.fixture
def capture() -> Iterator[Callable[..., CaptureUpstream]]:
    started: list[CaptureUpstream] = []

    def start(drop_after: int | None = None) -> CaptureUpstream:
        upstream = start_capture_server(CAPTURE.read_text(), drop_after=drop_after)
        started.append(upstream)
        return upstream

    try:
        yield start
    finally:
        for upstream in started:
            assert upstream.server is not None
            upstream.server.stop()


def ticking_clock() -> Callable[[], int]:
    """Arrival times for events without their own: 1 ms apart from a fixed epoch."""
    counter = itertools.count()
    return lambda: 1_800_000_000_000_000_000 + next(counter) * 1_000_000


def sorted_spans(spans: list[SpanRecord]) -> list[SpanRecord]:
    return sorted(spans, key=lambda s: (s.trace_id, s.start_ns, s.span_id))


async def eventually(predicate: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_dropped_mid_frame_resumes_with_last_event_id_and_maps_each_frame_once(
    capture: Callable[..., CaptureUpstream],
) -> None:
    upstream = capture(drop_after=CUT_AFTER)
    assert upstream.server is not None
    frames = upstream.frames
    sink = ListSink()
    bridge = assemble(Settings(), extra_sinks=[sink], pricer=None).bridge
    settings = SourceSettings(url=f"{upstream.server.url}/stream", name="agent", backoff_initial_s=0.01)
    manager = SourceManager(bridge, [settings], clock_ns=ticking_clock())
    source = manager.sources[0]
    assert isinstance(source, UpstreamSource)
    await manager.start()
    try:
        await eventually(lambda: source.snapshot()["last_event_id"] == frames[-1].id, what="the whole capture")
    finally:
        await manager.shutdown()
    bridge.mapper.close_all(sc.CLOSE_END_OF_INPUT)

    # The reference: the same capture decoded in one piece, as if nothing had dropped.
    reference_sink = ListSink()
    reference = assemble(Settings(), extra_sinks=[reference_sink], pricer=None).bridge
    decoder = StreamDecoder(StreamContext(source="agent", stream_key="agent", clock_ns=ticking_clock()))
    expected_events = decoder.feed(parse_sse(CAPTURE.read_text())) + decoder.close()
    reference.submit(expected_events)
    reference.mapper.close_all(sc.CLOSE_END_OF_INPUT)

    # The frame cut in half was not remembered: the resume asks for it again.
    assert upstream.last_event_ids == [None, frames[CUT_AFTER - 1].id]
    assert sorted_spans(sink.spans) == sorted_spans(reference_sink.spans)
    assert len(sink.spans) > 1
    snap = source.snapshot()
    assert {k: snap[k] for k in ("dialect", "dialect_forced", "events", "reconnects", "rejected", "connected")} == {
        "dialect": "locus",
        "dialect_forced": False,
        "events": len(expected_events),
        "reconnects": 1,
        "rejected": 0,
        "connected": False,  # stopped
    }
    assert bridge.stats.events_received == len(expected_events)


async def test_shutdown_is_safe_when_start_never_ran() -> None:
    bridge = assemble(Settings(), pricer=None).bridge
    manager = SourceManager(bridge, [SourceSettings(url="http://127.0.0.1:9/stream")])
    await manager.shutdown()
    assert manager.snapshot()[0]["connected"] is False


def _get_sources(url: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/v1/sources", timeout=5).json()
    sources: list[dict[str, Any]] = body["sources"]
    return sources


def test_unreachable_source_shows_its_error_while_another_works(
    bridge_server: Callable[..., BridgeProcess], capture: Callable[..., CaptureUpstream]
) -> None:
    upstream = capture()
    assert upstream.server is not None
    dead = free_port()
    bridge = bridge_server(
        args=[
            "--subscribe",
            f"http://agent:s3cret@127.0.0.1:{dead}/stream?api_key=s3cret&run=7",
            "--subscribe",
            f"{upstream.server.url}/stream",
            "--dialect",
            "locus",
            "--header",
            "Authorization: Bearer token-123",
            "--subscribe",
            f"{upstream.server.url}/missing",
        ]
    )
    expected_frames = len(upstream.frames) + 1  # and data: [DONE]
    deadline = time.monotonic() + 15
    while True:
        sources = _get_sources(bridge.url)
        failing, working, missing = sources
        if (
            working["frames"] == expected_frames
            and failing["reconnects"] >= 1
            and missing["last_error"]
            and failing["last_error"]
        ):
            break
        assert time.monotonic() < deadline, f"sources did not settle: {sources}"
        time.sleep(0.05)
    assert {k: failing[k] for k in ("name", "kind", "url", "dialect", "connected", "events", "frames")} == {
        "name": f"127.0.0.1:{dead}/stream",
        "kind": "sse",
        "url": f"http://agent:***@127.0.0.1:{dead}/stream?api_key=***&run=7",
        "dialect": None,
        "connected": False,
        "events": 0,
        "frames": 0,
    }
    assert failing["last_error"].startswith("ConnectError")
    assert "s3cret" not in str(sources)
    assert {k: working[k] for k in ("kind", "dialect", "dialect_forced", "connected", "rejected", "last_event_id")} == {
        "kind": "sse",
        "dialect": "locus",
        "dialect_forced": True,
        "connected": True,
        "rejected": 0,
        "last_event_id": upstream.frames[-1].id,
    }
    assert working["events"] > 0
    assert working["last_event_time"] is not None
    # A 404 will not fix itself soon: it is retried at the slowest pace, not hammered.
    assert {k: missing[k] for k in ("connected", "reconnects", "last_error")} == {
        "connected": False,
        "reconnects": 0,
        "last_error": "HTTP 404: Not Found",
    }
    # The working source's run is in the store, and the sidecar is healthy.
    traces = httpx.get(f"{bridge.url}/v1/traces", timeout=5).json()["traces"]
    assert len(traces) >= 1
    assert httpx.get(f"{bridge.url}/v1/health", timeout=5).json()["status"] == "ok"


async def test_a_quiet_stream_is_decoded_without_waiting_for_more_frames() -> None:
    """Two frames no dialect claims, then silence: they reach the bridge anyway (not at shutdown)."""
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from tests.support.sse_server import ThreadedServer

    async def stream(_: Any) -> StreamingResponse:
        async def body() -> Any:
            yield b'event: hello\ndata: {"who": "a"}\n\n'
            yield b'event: hello\ndata: {"who": "b"}\n\n'
            await asyncio.sleep(30)

        return StreamingResponse(body(), media_type="text/event-stream")

    server = ThreadedServer(Starlette(routes=[Route("/events", stream)]))
    bridge = assemble(Settings(), pricer=None).bridge
    seen: list[str] = []
    bridge.add_observer(lambda events, _: seen.extend(e.original_type for e in events))
    source = UpstreamSource(bridge, SourceSettings(name="quiet", url=server.url + "/events"), None)
    task = asyncio.create_task(source.run())
    try:
        await eventually(lambda: len(seen) == 2, within=5, what="the held frames to be decoded")
        assert seen == ["hello", "hello"]
        assert source.status.connected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.stop()
