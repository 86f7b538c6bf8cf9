"""The span lifecycle: whole spans asserted, deterministic ids and clocks."""

from __future__ import annotations

from typing import Any

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, Settings
from otel_bridge.mapping.ids import span_id_for, trace_id_for_run
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind, SpanKind, SpanRecord, StatusCode, TokenUsage
from otel_bridge.pipeline import ListSink
from otel_bridge.stats import Stats
from tests.conftest import FakeClock

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def ev(kind: EventKind, t_ms: float, run: str = "run-1", **fields: Any) -> AgentEvent:
    return AgentEvent(
        kind=kind, run_id=run, timestamp_ns=T0 + int(t_ms * MS), dialect="test", original_type=str(kind), **fields
    )


def mapper(clock: FakeClock, **settings: Any) -> tuple[SpanMapper, ListSink, Stats]:
    sink, stats = ListSink(), Stats()
    return SpanMapper(MappingSettings(**settings), sink, stats, clock=clock.monotonic), sink, stats


def by_name(spans: list[SpanRecord]) -> dict[str, SpanRecord]:
    return {s.name: s for s in spans}


def test_llm_call_becomes_a_whole_chat_span(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    m.process(
        [
            ev(EventKind.RUN_STARTED, 0, agent="planner"),
            ev(
                EventKind.LLM_STARTED,
                10,
                call_id="c1",
                provider="openai",
                model="gpt-4o",
                stream=True,
                temperature=0.2,
                max_tokens=256,
            ),
            ev(EventKind.LLM_CHUNK, 250, call_id="c1"),
            ev(EventKind.LLM_CHUNK, 260, call_id="c1"),
            ev(
                EventKind.LLM_COMPLETED,
                400,
                call_id="c1",
                provider="openai",
                model="gpt-4o",
                response_model="gpt-4o-2024-08-06",
                response_id="chatcmpl-1",
                finish_reasons=("stop",),
                usage=TokenUsage(input=100, output=0, cache_read=0, reasoning=0),
            ),
            ev(EventKind.RUN_FINISHED, 500),
        ]
    )
    m.close_all()
    spans = by_name(sink.spans)
    assert set(spans) == {"chat gpt-4o", "invoke_agent planner"}
    trace = trace_id_for_run("run-1")
    root, chat = spans["invoke_agent planner"], spans["chat gpt-4o"]
    assert chat.trace_id == trace
    assert chat.span_id == span_id_for(trace, "chat:c1")
    assert chat.parent_span_id == root.span_id == span_id_for(trace, "run")
    assert chat.kind is SpanKind.CLIENT
    assert (chat.start_ns, chat.end_ns) == (T0 + 10 * MS, T0 + 400 * MS)
    assert chat.status_code is StatusCode.UNSET
    assert chat.attributes == {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_REQUEST_STREAM: True,
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        sc.GEN_AI_REQUEST_MAX_TOKENS: 256,
        sc.BRIDGE_CALL_ID: "c1",
        sc.BRIDGE_DIALECT: "test",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
        sc.GEN_AI_RESPONSE_ID: "chatcmpl-1",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        # zero is data: every zero count is kept
        sc.GEN_AI_USAGE_INPUT_TOKENS: 100,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.24,
        sc.BRIDGE_CHUNK_COUNT: 2,
    }
    assert root.kind is SpanKind.INTERNAL
    assert root.parent_span_id is None
    assert (root.start_ns, root.end_ns) == (T0, T0 + 500 * MS)
    assert root.attributes == {
        sc.GEN_AI_OPERATION_NAME: "invoke_agent",
        sc.BRIDGE_RUN_ID: "run-1",
        sc.BRIDGE_SOURCE: "http",
        sc.BRIDGE_DIALECT: "test",
        sc.GEN_AI_AGENT_NAME: "planner",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 100,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
    }


def test_tool_span_is_child_of_run_with_link_to_requesting_call(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    m.process(
        [
            ev(EventKind.LLM_STARTED, 0, call_id="c1", model="gpt-4o"),
            ev(EventKind.LLM_COMPLETED, 5, call_id="c1", model="gpt-4o"),
            ev(EventKind.TOOL_STARTED, 6, call_id="t1", tool_name="search", parent_call_id="c1"),
            ev(EventKind.TOOL_FAILED, 9, call_id="t1", tool_name="search", error="TimeoutError: slow"),
        ]
    )
    m.close_all()
    spans = by_name(sink.spans)
    tool, root = spans["execute_tool search"], spans["invoke_agent"]
    assert tool.parent_span_id == root.span_id
    assert tool.kind is SpanKind.INTERNAL
    assert tool.status_code is StatusCode.ERROR
    assert tool.status_message == "TimeoutError: slow"
    assert tool.attributes[sc.ERROR_TYPE] == "TimeoutError"
    assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == "t1"
    assert tool.attributes[sc.GEN_AI_TOOL_TYPE] == "function"
    assert [link.span_id for link in tool.links] == [spans["chat gpt-4o"].span_id]


def test_completion_without_start_is_rebuilt_from_its_duration(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    m.process([ev(EventKind.TOOL_COMPLETED, 5000, call_id="t9", tool_name="fetch", duration_ms=1200)])
    m.close_all()
    tool = by_name(sink.spans)["execute_tool fetch"]
    assert (tool.start_ns, tool.end_ns) == (T0 + 3800 * MS, T0 + 5000 * MS)
    root = by_name(sink.spans)["invoke_agent"]
    assert root.start_ns <= tool.start_ns  # the run span is widened to contain its child


def test_start_that_never_completes_is_closed_as_error_after_span_timeout(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, span_timeout_s=30, run_idle_timeout_s=300, run_marker_after_s=0)
    m.process([ev(EventKind.TOOL_STARTED, 0, call_id="t1", tool_name="slow")])
    clock.now = 29.9
    m.sweep()
    assert sink.spans == []
    clock.now = 30.0
    m.sweep()
    (tool,) = sink.spans
    assert tool.name == "execute_tool slow"
    assert tool.status_code is StatusCode.ERROR
    assert tool.attributes[sc.ERROR_TYPE] == sc.ERROR_INCOMPLETE
    assert tool.attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_SPAN_TIMEOUT
    assert stats.incomplete == {sc.CLOSE_SPAN_TIMEOUT: 1}
    assert m.open_runs == 1


def test_idle_run_is_closed_with_its_reason(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock, run_idle_timeout_s=60)
    m.process([ev(EventKind.LLM_STARTED, 0, call_id="c1", model="m")])
    clock.now = 60.0
    m.sweep()
    spans = by_name(sink.spans)
    assert spans["chat m"].attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_IDLE
    assert spans["chat m"].status_code is StatusCode.ERROR
    assert spans["invoke_agent"].attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_IDLE
    assert spans["invoke_agent"].status_code is StatusCode.UNSET
    assert m.open_runs == 0


def test_shutdown_closes_open_spans_as_incomplete(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    m.process([ev(EventKind.RUN_STARTED, 0), ev(EventKind.LLM_STARTED, 1, call_id="c", model="m")])
    m.close_all(sc.CLOSE_SHUTDOWN)
    spans = by_name(sink.spans)
    assert spans["chat m"].attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_SHUTDOWN
    assert spans["chat m"].attributes[sc.ERROR_TYPE] == sc.ERROR_INCOMPLETE


def test_terminal_event_ends_run_after_grace_and_stragglers_join_it(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock, run_end_grace_s=1.0)
    m.process([ev(EventKind.RUN_STARTED, 0), ev(EventKind.RUN_FINISHED, 100)])
    clock.now = 0.5
    m.sweep()
    assert sink.spans == []
    m.process([ev(EventKind.TOOL_COMPLETED, 90, call_id="t", tool_name="late", duration_ms=10)])
    clock.now = 1.0
    m.sweep()
    spans = by_name(sink.spans)
    assert spans["execute_tool late"].parent_span_id == spans["invoke_agent"].span_id
    assert sc.BRIDGE_CLOSE_REASON not in spans["invoke_agent"].attributes
    assert spans["invoke_agent"].end_ns == T0 + 100 * MS


def test_with_no_grace_a_run_ends_with_the_batch_that_ended_it(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock, run_end_grace_s=0.0)
    m.process([ev(EventKind.RUN_STARTED, 0), ev(EventKind.RUN_FINISHED, 100), ev(EventKind.PROGRESS, 90)])
    # No sweep: the root span is out as soon as the batch is mapped, with the batch's straggler on it.
    (root,) = sink.spans
    assert [e.name for e in root.events] == ["progress"]
    assert root.end_ns == T0 + 100 * MS
    assert m.open_runs == 0
    assert m.next_end_in() is None


def test_a_grace_says_when_the_sweep_is_due(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock, run_end_grace_s=1.0)
    assert m.next_end_in() is None
    m.process([ev(EventKind.RUN_STARTED, 0), ev(EventKind.RUN_FINISHED, 100)])
    assert sink.spans == []  # a grace: the run waits for stragglers
    assert m.next_end_in() == 1.0
    clock.now = 0.75
    assert m.next_end_in() == 0.25
    clock.now = 2.0
    assert m.next_end_in() == 0.0


def test_event_after_run_end_continues_the_same_trace(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, run_end_grace_s=0.0)
    m.process([ev(EventKind.RUN_STARTED, 0, agent="a"), ev(EventKind.RUN_FINISHED, 100)])
    m.sweep()
    m.process([ev(EventKind.PROGRESS, 200, name="after")])
    m.close_all()
    root, cont = sink.spans
    assert cont.trace_id == root.trace_id
    assert cont.parent_span_id == root.span_id
    assert cont.span_id == span_id_for(root.trace_id, "run+1")
    assert cont.name == "invoke_agent a"
    assert [e.name for e in cont.events] == ["progress"]
    assert stats.continuations == 1


def test_failed_run_sets_error_status_and_type(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock, run_end_grace_s=0.0)
    m.process([ev(EventKind.RUN_FAILED, 10, error="boom", error_type="TIMEOUT")])
    m.sweep()
    (root,) = sink.spans
    assert root.status_code is StatusCode.ERROR
    assert root.status_message == "boom"
    assert root.attributes[sc.ERROR_TYPE] == "TIMEOUT"


def test_traceparent_wins_over_the_derived_trace_id(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    m.process([ev(EventKind.RUN_STARTED, 0, traceparent=tp)])
    m.close_all()
    (root,) = sink.spans
    assert root.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    assert root.parent_span_id == bytes.fromhex("b7ad6b7169203331")


def test_trace_ids_are_stable_across_mappers(clock: FakeClock) -> None:
    ids = []
    for _ in range(2):
        m, sink, _ = mapper(clock)
        m.process([ev(EventKind.LLM_COMPLETED, 1, call_id="c", model="m")])
        m.close_all()
        ids.append([(s.trace_id, s.span_id) for s in sink.spans])
    assert ids[0] == ids[1]


def test_other_events_land_on_the_innermost_open_span(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    m.process(
        [
            ev(EventKind.STATE_CHANGED, 0, status="draft"),
            ev(EventKind.TOOL_STARTED, 1, call_id="t", tool_name="x"),
            ev(EventKind.PROGRESS, 2, name="halfway"),
            ev(EventKind.TOOL_COMPLETED, 3, call_id="t", tool_name="x"),
            ev(EventKind.CUSTOM, 4, name="my.event"),
        ]
    )
    m.close_all()
    spans = by_name(sink.spans)
    assert [(e.name, e.time_ns) for e in spans["execute_tool x"].events] == [("progress", T0 + 2 * MS)]
    assert [e.name for e in spans["invoke_agent"].events] == ["state.changed", str(EventKind.CUSTOM)]


def test_bounds_drop_and_count(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, max_events_per_span=2, max_open_runs=2, max_open_spans_per_run=1)
    m.process([ev(EventKind.PROGRESS, i) for i in range(5)])
    m.process(
        [
            ev(EventKind.TOOL_STARTED, 6, call_id="a", tool_name="a"),
            ev(EventKind.TOOL_STARTED, 7, call_id="b", tool_name="b"),
        ]
    )
    m.process([ev(EventKind.RUN_STARTED, 1, run="r2"), ev(EventKind.RUN_STARTED, 1, run="r3")])
    spans = by_name(sink.spans)
    assert spans["execute_tool a"].attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_EVICTED
    root = next(s for s in sink.spans if s.attributes.get(sc.BRIDGE_RUN_ID) == "run-1")
    assert root.attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_EVICTED
    assert len(root.events) == 2
    assert root.dropped_events == 3
    assert stats.dropped == {"max_events_per_span": 3, "max_open_spans_per_run": 1, "max_open_runs": 1}
    assert m.open_runs == 2


def test_stream_events_pair_with_their_llm_call_by_order(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    m.process(
        [
            ev(EventKind.LLM_STARTED, 0, call_id="req-1", model="gpt-4o", stream=True),
            ev(EventKind.STREAM_STARTED, 2, call_id="stream-a"),
            ev(EventKind.LLM_CHUNK, 30, call_id="stream-a"),
            ev(EventKind.LLM_CHUNK, 35, call_id="stream-a"),
            ev(EventKind.STREAM_ENDED, 40, call_id="stream-a", status="completed"),
            ev(EventKind.LLM_COMPLETED, 41, call_id="req-1", model="gpt-4o"),
        ]
    )
    m.close_all()
    chat = by_name(sink.spans)["chat gpt-4o"]
    assert chat.attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == 0.03
    assert chat.attributes[sc.BRIDGE_CHUNK_COUNT] == 2
    assert chat.attributes[sc.BRIDGE_STREAM_ID] == "stream-a"
    assert [e.name for e in chat.events] == ["llm.stream.started", "llm.stream.ended"]


def test_bridge_maps_a_newest_first_batch_in_time_order(clock: FakeClock) -> None:
    sink = ListSink()
    bridge = assemble(Settings(), clock=clock.monotonic, extra_sinks=[sink], pricer=None).bridge
    batch = [
        ev(EventKind.RUN_FINISHED, 100),
        ev(EventKind.LLM_COMPLETED, 50, call_id="c", model="m"),
        ev(EventKind.LLM_STARTED, 10, call_id="c", model="m"),
        ev(EventKind.RUN_STARTED, 0),
    ]
    pairs = bridge.submit(batch)
    assert [e.kind for e, _ in pairs] == [
        EventKind.RUN_STARTED,
        EventKind.LLM_STARTED,
        EventKind.LLM_COMPLETED,
        EventKind.RUN_FINISHED,
    ]
    bridge.mapper.close_all()
    chat = by_name(sink.spans)["chat m"]
    assert (chat.start_ns, chat.end_ns) == (T0 + 10 * MS, T0 + 50 * MS)
    assert sc.BRIDGE_CLOSE_REASON not in chat.attributes


def test_placements_carry_the_ids_of_the_spans(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    placements = m.process(
        [ev(EventKind.LLM_STARTED, 0, call_id="c", model="m"), ev(EventKind.LLM_COMPLETED, 20, call_id="c", model="m")]
    )
    m.close_all()
    chat = by_name(sink.spans)["chat m"]
    assert placements[0][:3] == (chat.trace_id, chat.span_id, chat.parent_span_id)
    assert placements[1].duration_ms == 20.0


def test_an_event_id_seen_twice_in_a_run_is_mapped_once(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock)
    once = ev(EventKind.TOOL_COMPLETED, 5, call_id="t", tool_name="x", duration_ms=1, event_id="e-1")
    m.process([once, once, ev(EventKind.PROGRESS, 6, event_id="e-2"), ev(EventKind.PROGRESS, 7, event_id="e-2")])
    m.close_all()
    assert [s.name for s in sink.spans] == ["execute_tool x", "invoke_agent"]
    assert len(sink.spans[1].events) == 1
    assert stats.dropped == {"duplicate_event": 2}


def test_the_least_recently_active_run_is_evicted_however_its_events_came(clock: FakeClock) -> None:
    """Runs are kept in order of their latest event: an event of the run that had the latest one moves
    nothing, any other event makes its run the latest, in one batch or across batches. With room for
    two runs, a third evicts the one whose latest event is the oldest."""
    for order, evicted in (("abba", "b"), ("aabb", "a"), ("abab", "a"), ("abaa", "b")):
        m, sink, _ = mapper(clock, max_open_runs=2)
        m.process([ev(EventKind.PROGRESS, i, run=r) for i, r in enumerate(order[:2])])
        m.process([ev(EventKind.PROGRESS, i + 2, run=r) for i, r in enumerate(order[2:])])
        m.process([ev(EventKind.RUN_STARTED, 9, run="c")])
        (closed,) = [s for s in sink.spans if s.attributes.get(sc.BRIDGE_CLOSE_REASON) == sc.CLOSE_EVICTED]
        assert closed.attributes[sc.BRIDGE_RUN_ID] == evicted, order
        m.process([ev(EventKind.PROGRESS, 10, run="a" if evicted == "b" else "b")])  # the kept one is still open
        assert m.open_runs == 2
