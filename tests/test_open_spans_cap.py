"""The global cap on open spans: runs that each stay inside their own bounds cannot add up past it."""

from __future__ import annotations

import pytest

from otel_bridge import semconv as sc
from otel_bridge.config import MappingSettings
from otel_bridge.model import EventKind
from tests.conftest import FakeClock
from tests.test_lifecycle import ev, mapper


def test_past_the_cap_the_least_recently_active_run_is_closed_and_counted(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, max_open_spans=5, max_open_spans_per_run=5)
    for run in ("a", "b"):
        m.process([ev(EventKind.RUN_STARTED, 0, run=run)])
    m.process([ev(EventKind.TOOL_STARTED, i, run="a", call_id=f"a{i}", tool_name="t") for i in range(3)])
    m.process([ev(EventKind.TOOL_STARTED, i, run="b", call_id=f"b{i}", tool_name="t") for i in range(2)])
    assert m.open_runs == 2  # five open spans: at the cap, not past it
    assert sink.spans == []
    m.process([ev(EventKind.TOOL_STARTED, 5, run="b", call_id="b5", tool_name="t")])
    assert m.open_runs == 1  # run "a" was the least recently active: closed early, all of it
    assert stats.dropped == {"max_open_spans": 1}
    closed = {s.name: s for s in sink.spans}
    assert len(sink.spans) == 4
    assert closed["invoke_agent"].attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_EVICTED
    m.process([ev(EventKind.TOOL_STARTED, 6, run="b", call_id="b6", tool_name="t")])
    assert stats.dropped == {"max_open_spans": 1}  # four open now: room again


def test_a_run_alone_is_held_by_its_own_bound(clock: FakeClock) -> None:
    m, _, stats = mapper(clock, max_open_spans=3, max_open_spans_per_run=3)
    m.process([ev(EventKind.RUN_STARTED, 0)])
    m.process([ev(EventKind.TOOL_STARTED, i, call_id=f"c{i}", tool_name="t") for i in range(5)])
    assert m.open_runs == 1
    assert stats.dropped == {"max_open_spans_per_run": 2}


def test_the_cap_is_at_least_the_per_run_bound() -> None:
    with pytest.raises(ValueError, match="max_open_spans must be >= max_open_spans_per_run"):
        MappingSettings(max_open_spans=10, max_open_spans_per_run=20)
