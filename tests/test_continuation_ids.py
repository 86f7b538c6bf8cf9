"""Regression: a finished run's late events became a continuation whose child spans reused the span ids of
the finished run's children (same producer call ids, same keys). Jaeger then held two different spans with
one id ("duplicate span IDs"), found by tests/test_e2e_jaeger.py when two captures shared a response id."""

from __future__ import annotations

from typing import Any

import msgspec

from otel_bridge.config import MappingSettings
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind
from otel_bridge.pipeline import ListSink
from otel_bridge.stats import Stats
from tests.conftest import FakeClock

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def ev(kind: EventKind, t_ms: float, **fields: Any) -> AgentEvent:
    return AgentEvent(
        kind=kind, run_id="resent", timestamp_ns=T0 + int(t_ms * MS), dialect="test", original_type=str(kind), **fields
    )


def test_a_continuation_never_reuses_a_span_id_of_the_run_it_continues(clock: FakeClock) -> None:
    sink, stats = ListSink(), Stats()
    mapper = SpanMapper(MappingSettings(run_end_grace_s=0), sink, stats, clock=clock.monotonic)
    call = [
        ev(EventKind.LLM_STARTED, 0, call_id="chatcmpl-1", model="gpt-4o"),
        ev(EventKind.TOOL_STARTED, 5, call_id="call_1", tool_name="lookup", parent_call_id="chatcmpl-1"),
        ev(EventKind.TOOL_COMPLETED, 8, call_id="call_1", tool_name="lookup"),
        ev(EventKind.LLM_COMPLETED, 10, call_id="chatcmpl-1", model="gpt-4o"),
        ev(EventKind.RUN_FINISHED, 11),
    ]
    mapper.process(call)
    clock.now = 1.0
    mapper.sweep()
    first = {s.span_id: s for s in sink.spans}
    mapper.process([msgspec.structs.replace(e, timestamp_ns=e.timestamp_ns + 1000 * MS) for e in call])
    clock.now = 2.0
    mapper.close_all()
    later = [s for s in sink.spans if s.span_id not in first or s is not first[s.span_id]]
    assert stats.continuations == 1
    assert {s.name for s in later} >= {"chat gpt-4o", "execute_tool lookup"}
    assert not {s.span_id for s in later} & set(first)
    # Within the continuation, the tool still links to its own chat span.
    (tool,) = [s for s in later if s.name == "execute_tool lookup"]
    (chat,) = [s for s in later if s.name == "chat gpt-4o"]
    assert [link.span_id for link in tool.links] == [chat.span_id]
