"""``GET /v1/stream`` against a real uvicorn server, read by real SSE clients (httpx-sse)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from otel_bridge.config import Settings
from tests.support.live import LiveServer, post, sse, take, take_until, wait_for
from tests.support.rotel import Rotel
from tests.support.server import BridgeProcess


def settings(**feed: object) -> Settings:
    return msgspec.convert({"feed": feed}, Settings)


@pytest.fixture
def live() -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(**feed: object) -> LiveServer:
        server = LiveServer(settings(**feed))
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def progress(n: int, start: int = 0, run: str = "r1") -> list[dict[str, Any]]:
    return [{"kind": "progress", "run_id": run, "name": f"e{i}"} for i in range(start, start + n)]


RUN = [
    {"kind": "run.started", "run_id": "run-a", "agent": "planner"},
    {"kind": "llm.started", "run_id": "run-a", "model": "gpt-4o", "call_id": "c1"},
    {
        "kind": "llm.completed",
        "run_id": "run-a",
        "model": "gpt-4o",
        "call_id": "c1",
        "usage": {"input": 7, "output": 3},
    },
    {"kind": "tool.started", "run_id": "run-a", "tool_name": "search", "call_id": "t1"},
    {"kind": "tool.completed", "run_id": "run-a", "tool_name": "search", "call_id": "t1"},
    {"kind": "run.finished", "run_id": "run-a"},
]


def test_feed_ids_are_the_ids_in_the_store_and_at_the_collector(
    rotel: Rotel, bridge_server: Callable[..., BridgeProcess]
) -> None:
    server = bridge_server(env={"OTEL_EXPORTER_OTLP_ENDPOINT": rotel.http_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    with sse(server.url + "/v1/stream") as events:
        assert post(server.url, RUN).status_code == 202
        feed = [json.loads(e.data) for e in take(events, len(RUN))]
    assert [e["kind"] for e in feed] == [e["kind"] for e in RUN]
    trace_id = feed[0]["trace_id"]
    assert {e["trace_id"] for e in feed} == {trace_id}
    placed = {(e["span_id"], e["parent_span_id"]) for e in feed}
    assert len(placed) == 3  # the run, the LLM call, the tool call: starts and ends on the same span

    def stored() -> dict[str, str | None]:
        body = httpx.get(f"{server.url}/v1/traces/{trace_id}").json()
        spans = [s for rs in body["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
        return {s["spanId"]: s.get("parentSpanId") for s in spans}

    wait_for(lambda: httpx.get(f"{server.url}/v1/traces/{trace_id}").status_code == 200 and len(stored()) == 3)
    assert set(stored().items()) == placed
    exported = rotel.wait_for_spans(lambda spans: len(spans) >= 3)
    assert {(s.span_id.hex(), s.parent_span_id.hex() or None) for s in exported} == placed
    assert {s.trace_id.hex() for s in exported} == {trace_id}


def test_resume_after_a_disconnect_gives_every_event_once_in_order(live: Callable[..., LiveServer]) -> None:
    server = live()
    with sse(server.url + "/v1/stream") as events:
        post(server.url, progress(5))
        first = take(events, 5)
    post(server.url, progress(5, start=5))  # while nobody listens
    with sse(server.url + "/v1/stream", headers={"Last-Event-ID": first[-1].id}) as events:
        post(server.url, progress(3, start=10))
        rest = take(events, 8)
    with sse(f"{server.url}/v1/stream?last_event_id={first[1].id}") as events:
        again = take(events, 11)
    names = [json.loads(e.data)["name"] for e in first + rest]
    assert names == [f"e{i}" for i in range(13)]
    ids = [int(e.id) for e in first + rest]
    assert ids == list(range(ids[0], ids[0] + 13))
    assert [int(e.id) for e in again] == ids[2:]


def test_an_id_older_than_the_ring_gets_the_missed_notice_first(live: Callable[..., LiveServer]) -> None:
    server = live(ring_size=5)
    post(server.url, progress(12))
    oldest_id = server.feed.newest_seq - 11
    with sse(server.url + "/v1/stream", headers={"Last-Event-ID": str(oldest_id)}) as events:
        notice, *replayed = take(events, 6)
    assert notice.event == "missed"
    assert json.loads(notice.data) == {
        "missed": 6,
        "reason": "evicted",
        "last_event_id": oldest_id,
        "oldest_available": oldest_id + 7,
    }
    assert [json.loads(e.data)["name"] for e in replayed] == ["e7", "e8", "e9", "e10", "e11"]


def test_an_idle_feed_sends_the_retry_hint_and_heartbeats_with_the_right_headers(
    live: Callable[..., LiveServer],
) -> None:
    server = live(heartbeat_s=0.2, retry_ms=1500)
    lines: list[str] = []
    with httpx.stream("GET", server.url + "/v1/stream", timeout=5) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        for line in response.iter_lines():
            lines.append(line)
            if lines.count(": heartbeat") == 3:
                break
    assert lines[:2] == ["retry: 1500", ""]
    assert set(lines[2:]) == {": heartbeat", ""}


def test_a_heartbeat_after_an_event_is_not_an_event(live: Callable[..., LiveServer]) -> None:
    # httpx-sse (0.4.3) dispatches a data-less "message" event at the blank line after a heartbeat
    # comment once an id has been seen; the spec drops it (an empty data buffer dispatches nothing).
    # Reading its empty data as JSON was tests/test_feed_slow.py's intermittent "Input data was
    # truncated": it needed a heartbeat (15 s by default) to fall between events on a slow run.
    server = live(heartbeat_s=0.05)
    with sse(server.url + "/v1/stream") as events:
        assert post(server.url, [{"kind": "progress", "run_id": "r", "name": "before"}]).status_code == 202
        first = next(events)
        time.sleep(0.3)  # several heartbeats go out
        assert post(server.url, [{"kind": "progress", "run_id": "r", "name": "after"}]).status_code == 202
        second = next(events)
    assert [msgspec.json.decode(e.data)["name"] for e in (first, second)] == ["before", "after"]


def test_filters_select_exactly_what_they_promise(live: Callable[..., LiveServer]) -> None:
    server = live()
    filters = {
        "kind=llm.*": lambda e: e["kind"].startswith("llm."),
        "kind=tool,run.finished": lambda e: e["kind"].startswith("tool.") or e["kind"] == "run.finished",
        "run_id=run-b": lambda e: e["run_id"] == "run-b",
        "agent=coder": lambda e: e.get("agent") == "coder",
        "source=replayer&kind=llm.completed": lambda e: e["source"] == "replayer" and e["kind"] == "llm.completed",
        "dialect=openintent": lambda e: e["dialect"] == "openintent",
    }
    run_b = [{**e, "run_id": "run-b"} for e in RUN]
    run_b[0]["agent"] = "coder"
    with sse(server.url + "/v1/stream") as everything:
        streams = {q: sse(f"{server.url}/v1/stream?{q}") for q in filters}
        opened = {q: s.__enter__() for q, s in streams.items()}
        try:
            post(server.url, RUN)
            post(server.url, run_b, source="replayer")
            post(server.url, progress(3, run="run-b"))
            every = [json.loads(e.data) for e in take(everything, 15)]
            got = {}
            for q, events in opened.items():
                expected = [e for e in every if filters[q](e)]
                got[q] = ([json.loads(e.data) for e in take(events, len(expected))], expected)
        finally:
            for s in streams.values():
                s.__exit__(None, None, None)
    for q, (received, expected) in got.items():
        assert received == expected, q
    assert [len(expected) for _, expected in got.values()] == [4, 6, 9, 9, 1, 0]
    # Nothing more went out than what matched: every delivery is accounted for.
    health = httpx.get(server.url + "/v1/health").json()
    assert health["feed"]["delivered"] == 15 + sum(len(expected) for _, expected in got.values())


def test_bad_requests_get_a_clear_error(live: Callable[..., LiveServer]) -> None:
    server = live(max_subscribers=1)
    r = httpx.get(server.url + "/v1/stream?kind=lm.*")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_filter"
    assert r.json()["message"].startswith("kind 'lm.*' matches no event kind; kinds are: run.started, ")
    r = httpx.get(server.url + "/v1/stream?format=xml")
    assert (r.status_code, r.json()) == (
        400,
        {"error": "unknown_format", "message": "format 'xml' is not one of: canonical, ag-ui, ai-sdk"},
    )
    r = httpx.get(server.url + "/v1/stream", headers={"Last-Event-ID": "abc"})
    assert (r.status_code, r.json()) == (
        400,
        {
            "error": "invalid_last_event_id",
            "message": "Last-Event-ID must be an event id from this feed (an integer), got 'abc'",
        },
    )
    with sse(server.url + "/v1/stream"):
        r = httpx.get(server.url + "/v1/stream")
        assert (r.status_code, r.headers["retry-after"]) == (503, "5")
        assert r.json()["error"] == "too_many_subscribers"


def test_a_server_shutdown_ends_open_streams(live: Callable[..., LiveServer]) -> None:
    server = live()
    with sse(server.url + "/v1/stream") as events:
        post(server.url, progress(1))
        take(events, 1)
        server.stop()
        assert list(events) == []
    wait_for(lambda: server.feed.subscribers == 0)


def test_take_until_reports_a_stream_that_ends_early(live: Callable[..., LiveServer]) -> None:
    server = live()
    with sse(server.url + "/v1/stream") as events:
        post(server.url, progress(1))
        take(events, 1)
        server.stop()
        with pytest.raises(AssertionError, match="stream ended before the expected event"):
            take_until(events, lambda e: False)
