"""A run the bridge closes itself is told to the observers: one synthetic terminal event on its root span.

A producer that never ends its runs (MCP-like captures, event logs, a stream that just
stops) has its runs closed by the mapper (idle timeout, eviction, ``shed_oldest``,
shutdown, end of input). The observers (the store, the feed) then get a ``run.finished``
(the run went quiet or its input ran out) or ``run.failed`` (the bridge stopped following
it: evicted, shut down), named by ``original_type``, placed on the root span the sinks
got; a run its producer ended, and a continuation of one, get nothing more. Over HTTP:
the UI forms close what is open and end the filtered response.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import pytest
from ag_ui.core import Event
from pydantic import TypeAdapter

from otel_bridge import semconv as sc
from otel_bridge.bridge import Bridge
from otel_bridge.config import MappingSettings, Settings, StoreSettings
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind, Placement, SpanRecord
from otel_bridge.pipeline import FanoutSink, ListSink
from otel_bridge.sinks.store import TraceStore
from otel_bridge.stats import Stats
from otel_bridge.web.traces import parse_query
from tests.conftest import FakeClock
from tests.support.live import LiveServer, post, sse

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def ev(kind: EventKind, t_ms: int, run_id: str = "r", **fields: Any) -> AgentEvent:
    return AgentEvent(
        kind=kind, run_id=run_id, timestamp_ns=T0 + t_ms * MS, dialect="test", original_type=str(kind), **fields
    )


class Seen:
    """An observer that keeps each call it gets (events with their placements)."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[AgentEvent, Placement]]] = []

    def __call__(self, events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
        self.calls.append(list(zip(events, placements, strict=True)))

    def closes(self) -> list[tuple[AgentEvent, Placement]]:
        return [(e, p) for call in self.calls for e, p in call if e.inferred and e.original_type in sc.RUN_CLOSED_ALL]


def bridge_with(clock: FakeClock, **mapping: Any) -> tuple[Bridge, ListSink, Seen]:
    sink, stats, seen = ListSink(), Stats(), Seen()
    mapper = SpanMapper(MappingSettings(**mapping), sink, stats, clock=clock.monotonic)
    return Bridge(mapper, stats, sweep_interval_s=60.0, observers=[seen]), sink, seen


def root_of(spans: list[SpanRecord], run_id: str) -> SpanRecord:
    [root] = [s for s in spans if s.attributes.get(sc.BRIDGE_RUN_ID) == run_id]
    return root


def test_a_run_left_open_and_swept_gives_the_observers_one_run_finished_on_its_root(clock: FakeClock) -> None:
    bridge, sink, seen = bridge_with(clock, run_idle_timeout_s=10.0)
    bridge.submit(
        [
            ev(EventKind.RUN_STARTED, 0, agent="planner", conversation_id="thread-1"),
            ev(EventKind.LLM_STARTED, 1, call_id="c1", model="m"),
            ev(EventKind.TOOL_STARTED, 2, call_id="t1", tool_name="search"),
        ]
    )
    assert seen.closes() == []
    clock.now = 11.0
    bridge.sweep()
    root = root_of(sink.spans, "r")
    [(event, placement)] = seen.closes()
    assert event.kind is EventKind.RUN_FINISHED  # silence: the root's status is unset, not an error
    assert (event.original_type, event.status, event.error) == ("otel_bridge.run_timeout", sc.CLOSE_IDLE, None)
    assert (event.run_id, event.dialect, event.agent, event.conversation_id) == ("r", "test", "planner", "thread-1")
    assert (event.inferred, event.timestamp_from_source, event.timestamp_ns) == (True, False, root.end_ns)
    assert placement == Placement(root.trace_id, root.span_id, root.parent_span_id, (root.end_ns - root.start_ns) / 1e6)
    assert root.attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_IDLE
    # Told in a call of its own, after the spans went out; a later sweep tells nothing again.
    assert seen.calls[-1] == [(event, placement)]
    clock.now = 30.0
    bridge.sweep()
    assert len(seen.closes()) == 1


def test_a_run_its_producer_ended_and_its_late_continuation_are_not_told_again(clock: FakeClock) -> None:
    bridge, sink, seen = bridge_with(clock, run_idle_timeout_s=10.0, run_end_grace_s=1.0)
    bridge.submit([ev(EventKind.RUN_STARTED, 0), ev(EventKind.RUN_FINISHED, 5)])
    clock.now = 2.0
    bridge.sweep()  # closed after its grace: its producer's end was told already
    assert root_of(sink.spans, "r").attributes.get(sc.BRIDGE_CLOSE_REASON) is None
    bridge.submit([ev(EventKind.MESSAGE, 6, text="late")])  # a continuation of the finished run
    clock.now = 20.0
    bridge.sweep()
    assert any(s.attributes.get(sc.BRIDGE_CLOSE_REASON) == sc.CLOSE_IDLE for s in sink.spans)
    assert seen.closes() == []


def test_a_run_evicted_by_a_bound_while_mapping_is_told_as_failed_after_the_batch(clock: FakeClock) -> None:
    bridge, sink, seen = bridge_with(clock, max_open_runs=1)
    bridge.submit([ev(EventKind.LLM_STARTED, 0, run_id="old", call_id="c1")])
    bridge.submit([ev(EventKind.RUN_STARTED, 1, run_id="new")])
    root = root_of(sink.spans, "old")
    batch, told = seen.calls[-2:]
    assert [e.run_id for e, _ in batch] == ["new"]
    [(event, placement)] = told
    assert (event.kind, event.run_id, event.original_type) == (EventKind.RUN_FAILED, "old", "otel_bridge.run_evicted")
    assert (event.error, event.error_type) == ("run closed by otel-bridge: evicted", sc.CLOSE_EVICTED)
    assert placement[:3] == (root.trace_id, root.span_id, root.parent_span_id)


def test_shed_oldest_close_all_and_shutdown_are_told(clock: FakeClock) -> None:
    bridge, _, seen = bridge_with(clock)
    bridge.submit([ev(EventKind.RUN_STARTED, i, run_id=f"r{i}") for i in range(4)])
    assert bridge.shed_oldest(1) == 1
    bridge.close_all(sc.CLOSE_END_OF_INPUT)
    assert [(e.run_id, e.kind, e.original_type) for e, _ in seen.closes()] == [
        ("r0", EventKind.RUN_FAILED, "otel_bridge.run_evicted"),
        ("r1", EventKind.RUN_FINISHED, "otel_bridge.run_end_of_input"),
        ("r2", EventKind.RUN_FINISHED, "otel_bridge.run_end_of_input"),
        ("r3", EventKind.RUN_FINISHED, "otel_bridge.run_end_of_input"),
    ]


async def test_shutdown_tells_the_observers_before_the_components_stop(clock: FakeClock) -> None:
    journal: list[str] = []

    class Component:
        async def start(self) -> None:
            pass

        async def shutdown(self) -> None:
            journal.append("component stops")

    def observe(events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
        journal.extend(f"{e.kind} {e.original_type}" for e in events)

    sink, stats = ListSink(), Stats()
    mapper = SpanMapper(MappingSettings(), sink, stats, clock=clock.monotonic)
    bridge = Bridge(mapper, stats, sweep_interval_s=60.0, observers=[observe], components=[Component()])
    bridge.submit([ev(EventKind.RUN_STARTED, 0)])
    await bridge.shutdown()
    assert journal == ["run.started run.started", "run.failed otel_bridge.run_shutdown", "component stops"]


def test_a_mapper_no_bridge_reads_keeps_no_closes(clock: FakeClock) -> None:
    mapper = SpanMapper(MappingSettings(run_idle_timeout_s=1.0), ListSink(), Stats(), clock=clock.monotonic)
    mapper.process([ev(EventKind.RUN_STARTED, 0)])
    clock.now = 5.0
    mapper.sweep()
    assert (mapper.closed_runs, mapper.take_closed()) == ([], [])


def test_the_store_lists_a_closed_run_whose_own_span_it_could_not_keep_as_ended(clock: FakeClock) -> None:
    stats = Stats()
    store = TraceStore(StoreSettings(max_spans_per_trace=1), stats)
    mapper = SpanMapper(
        MappingSettings(run_idle_timeout_s=10.0), FanoutSink({"store": store}, stats), stats, clock=clock.monotonic
    )
    bridge = Bridge(mapper, stats, sweep_interval_s=60.0, observers=[store.observe])
    bridge.submit([ev(EventKind.TOOL_COMPLETED, 0, call_id="t1", tool_name="search"), ev(EventKind.MESSAGE, 1)])
    clock.now = 11.0
    bridge.sweep()  # the root span finds the trace full (one span): only the notice says the run ended
    assert stats.dropped["store_max_spans_per_trace"] == 1
    [summary] = store.recent()
    assert (summary.run_id, summary.status) == ("r", "ok")


# -- over HTTP: the UI forms end the filtered response ----------------------------------------------

EVENTS = TypeAdapter(Event)
NEVER_ENDED = [
    {"kind": "step.started", "name": "plan"},
    {"kind": "llm.chunk", "call_id": "c1", "text": "Hi"},
    {"kind": "tool.started", "tool_name": "search", "call_id": "t1"},
]


@pytest.fixture
def server() -> Iterator[LiveServer]:
    settings = msgspec.convert(
        {"mapping": {"capture_content": True, "run_idle_timeout_s": 1.0, "sweep_interval_s": 0.1, "max_open_runs": 2}},
        Settings,
    )
    live = LiveServer(settings)
    try:
        yield live
    finally:
        live.stop()


def strip(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in b.items() if k not in ("metadata", "timestamp")} for b in bodies]


def test_an_idle_run_ends_its_ag_ui_response_with_everything_closed(server: LiveServer) -> None:
    with sse(server.url + "/v1/stream?format=ag-ui&run_id=quiet") as stream:
        post(server.url, NEVER_ENDED, run_id="quiet")
        bodies = [json.loads(e.data) for e in stream if e.data]  # ends only if the server ends the response
    for body in bodies:
        EVENTS.validate_python(body)
    [message_id] = {b["messageId"] for b in bodies if b["type"].startswith("TEXT_MESSAGE")}
    [call_id] = {b["toolCallId"] for b in bodies if b["type"].startswith("TOOL_CALL")}
    assert strip(bodies)[-5:] == [
        {"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": "search", "parentMessageId": message_id},
        {"type": "TEXT_MESSAGE_END", "messageId": message_id},
        {"type": "TOOL_CALL_END", "toolCallId": call_id},
        {"type": "STEP_FINISHED", "stepName": "plan"},
        {"type": "RUN_FINISHED", "threadId": "quiet", "runId": "quiet"},
    ]
    assert bodies[-1]["metadata"]["originalType"] == "otel_bridge.run_timeout"


def test_an_evicted_run_ends_its_ai_sdk_response_with_an_error(server: LiveServer) -> None:
    with sse(server.url + "/v1/stream?format=ai-sdk&run_id=first") as stream:
        post(server.url, NEVER_ENDED, run_id="first")
        post(server.url, NEVER_ENDED, run_id="second")
        post(server.url, NEVER_ENDED, run_id="third")  # max_open_runs=2: "first" is evicted now
        frames = [e.data for e in stream if e.data]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert [c["type"] for c in chunks] == [
        *("start", "start-step", "text-start", "text-delta", "tool-input-start"),
        *("text-end", "finish-step"),  # what was open is closed
        *("error", "data-otel", "finish"),
    ]
    assert chunks[-3] == {"type": "error", "errorText": "run closed by otel-bridge: evicted"}
    assert chunks[-2]["data"]["kind"] == "run.failed"
    assert chunks[-1]["finishReason"] == "error"


@pytest.mark.parametrize("root_kept", [True, False])
def test_the_store_lists_runs_the_sidecar_gave_up_on_as_incomplete(clock: FakeClock, root_kept: bool) -> None:
    """Evicted or open at shutdown: the feed says run.failed, the span's status stays unset, the list says why."""
    stats = Stats()
    store = TraceStore(StoreSettings(max_spans_per_trace=5 if root_kept else 1), stats)
    sink = FanoutSink({"store": store}, stats)
    mapper = SpanMapper(MappingSettings(max_open_runs=1), sink, stats, clock=clock.monotonic)
    bridge = Bridge(mapper, stats, sweep_interval_s=60.0, observers=[store.observe])
    bridge.submit([ev(EventKind.TOOL_COMPLETED, 0, run_id="old", call_id="t1", tool_name="search")])
    bridge.submit([ev(EventKind.RUN_STARTED, 1, run_id="ended"), ev(EventKind.RUN_FINISHED, 2, run_id="ended")])
    bridge.submit([ev(EventKind.TOOL_COMPLETED, 3, run_id="last", call_id="t2", tool_name="search")])
    bridge.close_all(sc.CLOSE_SHUTDOWN)
    status = {s.run_id: s.status for s in store.recent()}
    assert status == {"old": "incomplete", "ended": "ok", "last": "incomplete"}
    assert [s.run_id for s in store.search(parse_query(status="incomplete"))] == ["last", "old"]
