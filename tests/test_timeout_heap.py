"""Timeouts from the deadline heap: a span touched since its check was due is checked again later, not closed;
idle runs with nothing due cost a sweep nothing; ``shed_oldest`` closes the least recently active runs."""

from __future__ import annotations

from otel_bridge import semconv as sc
from otel_bridge.model import EventKind
from tests.conftest import FakeClock
from tests.test_lifecycle import ev, mapper


def test_a_span_touched_after_its_first_deadline_is_closed_at_its_real_one(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, span_timeout_s=600.0, run_idle_timeout_s=10_000.0, run_marker_after_s=0.0)
    m.process([ev(EventKind.RUN_STARTED, 0), ev(EventKind.LLM_STARTED, 1, call_id="c", model="m")])
    clock.now = 500.0
    m.process([ev(EventKind.LLM_CHUNK, 2, call_id="c")])  # the span's own event: its timeout starts again
    clock.now = 700.0  # past the deadline the span was scheduled with at its start
    m.sweep()
    assert sink.spans == []
    clock.now = 1_100.0
    m.sweep()
    (chat,) = sink.spans
    assert chat.attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_SPAN_TIMEOUT
    assert stats.incomplete == {sc.CLOSE_SPAN_TIMEOUT: 1}


def test_runs_with_nothing_due_leave_the_heap_empty(clock: FakeClock) -> None:
    m, _, _ = mapper(clock, run_marker_after_s=0.0)
    m.process([ev(EventKind.RUN_STARTED, 0, run=f"r{i}") for i in range(100)])
    assert m._closer._due == []  # no open span, no marker: no sweep will ever look at these runs


def test_shed_oldest_closes_the_least_recently_active_runs(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock)
    m.process([ev(EventKind.RUN_STARTED, i, run=f"r{i}") for i in range(5)])
    m.process([ev(EventKind.PROGRESS, 10, run="r0")])  # r0 is now the most recently active
    assert m.shed_oldest(2) == 2
    assert sorted(s.attributes[sc.BRIDGE_RUN_ID] for s in sink.spans) == ["r1", "r2"]
    assert {s.attributes[sc.BRIDGE_CLOSE_REASON] for s in sink.spans} == {sc.CLOSE_EVICTED}
    assert stats.dropped == {}  # the caller (the memory budget) counts what it sheds
    assert m.shed_oldest(10) == 3
    assert m.open_runs == 0
