"""A long run's "in progress" marker: the run is findable in a backend before its root span is exported."""

from __future__ import annotations

from typing import Any

from otel_bridge import semconv as sc
from otel_bridge.config import MappingSettings, MetricsSettings
from otel_bridge.mapping.ids import span_id_for, trace_id_for_run
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind, SpanKind, SpanRecord, StatusCode
from otel_bridge.pipeline import ListSink
from otel_bridge.sinks.metrics import GenAiMetrics
from otel_bridge.stats import Stats
from tests.conftest import FakeClock

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def ev(kind: EventKind, t_ms: float, run: str = "long-run", **fields: Any) -> AgentEvent:
    return AgentEvent(
        kind=kind, run_id=run, timestamp_ns=T0 + int(t_ms * MS), dialect="test", original_type=str(kind), **fields
    )


def mapper(clock: FakeClock, **settings: Any) -> tuple[SpanMapper, ListSink, Stats]:
    sink, stats = ListSink(), Stats()
    return SpanMapper(MappingSettings(**settings), sink, stats, clock=clock.monotonic), sink, stats


def test_a_run_open_past_the_threshold_gets_one_marker_child_of_its_root(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, run_marker_after_s=30)
    m.process(
        [
            ev(EventKind.RUN_STARTED, 0, agent="researcher", conversation_id="conv-9"),
            ev(EventKind.LLM_STARTED, 10, call_id="c1", provider="openai", model="gpt-4o"),
            ev(EventKind.LLM_COMPLETED, 900, call_id="c1", provider="openai", model="gpt-4o"),
        ]
    )
    clock.now = 29.9
    m.sweep()
    assert [s.name for s in sink.spans] == ["chat gpt-4o"]  # not yet
    clock.now = 30.0
    m.sweep()
    trace_id = trace_id_for_run("long-run")
    marker = sink.spans[-1]
    assert marker == SpanRecord(
        trace_id=trace_id,
        span_id=span_id_for(trace_id, "run.in_progress"),
        parent_span_id=span_id_for(trace_id, "run"),
        name="invoke_agent researcher (running)",
        kind=SpanKind.INTERNAL,
        start_ns=T0,
        end_ns=T0 + 900 * MS,
        attributes={
            sc.BRIDGE_RUN_ID: "long-run",
            sc.GEN_AI_AGENT_NAME: "researcher",
            sc.GEN_AI_CONVERSATION_ID: "conv-9",
            sc.BRIDGE_DIALECT: "test",
            sc.BRIDGE_SOURCE: "http",
            sc.BRIDGE_RUN_IN_PROGRESS: True,
        },
        status_code=StatusCode.UNSET,
    )
    assert sc.GEN_AI_OPERATION_NAME not in marker.attributes
    assert stats.run_markers == 1
    clock.now = 120.0
    m.sweep()  # once per run
    assert [s.name for s in sink.spans].count("invoke_agent researcher (running)") == 1
    m.process([ev(EventKind.RUN_FINISHED, 2000)])
    m.close_all()
    root = sink.spans[-1]
    assert (root.name, root.span_id, root.parent_span_id) == ("invoke_agent researcher", marker.parent_span_id, None)


def test_short_runs_and_a_zero_setting_get_no_marker(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, run_marker_after_s=30, run_end_grace_s=0)
    m.process([ev(EventKind.RUN_STARTED, 0, agent="quick"), ev(EventKind.RUN_FINISHED, 5)])
    clock.now = 1.0
    m.sweep()
    clock.now = 31.0
    m.sweep()
    assert [s.name for s in sink.spans] == ["invoke_agent quick"]
    off, off_sink, off_stats = mapper(clock, run_marker_after_s=0)
    off.process([ev(EventKind.RUN_STARTED, 0, agent="slow")])
    clock.now = 10_000.0
    off.sweep()
    assert off_stats.run_markers == stats.run_markers == 0
    assert all(not s.name.endswith("(running)") for s in off_sink.spans)


def test_the_marker_is_not_counted_as_an_agent_invocation(clock: FakeClock) -> None:
    stats = Stats()
    metrics = GenAiMetrics(MetricsSettings(), stats)
    m = SpanMapper(MappingSettings(run_marker_after_s=1), metrics, stats, clock=clock.monotonic)
    m.process([ev(EventKind.RUN_STARTED, 0, agent="counted")])
    clock.now = 2.0
    m.sweep()
    assert stats.run_markers == 1

    def agent_series() -> int:
        return sum(len(f.series) for f in metrics.families() if f.name == sc.METRIC_INVOKE_AGENT_DURATION)

    assert agent_series() == 0
    m.close_all()  # the root itself is counted, once
    assert agent_series() == 1
