"""Event-id dedupe past its per-run bound: later ids are mapped and counted, never silently unchecked."""

from __future__ import annotations

from otel_bridge.model import EventKind
from tests.conftest import FakeClock
from tests.test_lifecycle import ev, mapper


def test_ids_past_the_bound_are_mapped_and_counted(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, max_event_ids_per_run=2)
    events = [ev(EventKind.RUN_STARTED, 0, event_id="e0")]
    events += [ev(EventKind.TOOL_STARTED, i, call_id=f"c{i}", tool_name="t", event_id=f"e{i}") for i in (1, 2, 3)]
    events.append(ev(EventKind.TOOL_STARTED, 4, call_id="c1", tool_name="t", event_id="e1"))  # a re-send
    m.process(events)
    assert stats.dropped == {"event_id_not_remembered": 2, "duplicate_event": 1}
    m.close_all()
    assert sorted(s.name for s in sink.spans) == ["execute_tool t"] * 3 + ["invoke_agent"]
