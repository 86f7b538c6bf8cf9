"""Event-id dedupe: one global table, least recently seen forgotten first, each forgotten id counted."""

from __future__ import annotations

from otel_bridge.model import EventKind
from tests.conftest import FakeClock
from tests.test_lifecycle import ev, mapper


def test_a_resend_is_mapped_once_and_the_forgotten_ids_are_counted(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, max_event_ids=2)
    events = [ev(EventKind.RUN_STARTED, 0, event_id="e0")]
    events += [ev(EventKind.TOOL_STARTED, i, call_id=f"c{i}", tool_name="t", event_id=f"e{i}") for i in (1, 2, 3)]
    events.append(ev(EventKind.TOOL_STARTED, 4, call_id="c3", tool_name="t", event_id="e3"))  # remembered: dropped
    events.append(ev(EventKind.TOOL_STARTED, 5, call_id="c9", tool_name="t", event_id="e1"))  # forgotten: mapped
    m.process(events)
    assert stats.dropped == {"duplicate_event": 1}
    assert stats.event_ids_forgotten == 3  # e0, e1, then e2 (e3 was seen again, so e2 was the oldest)
    m.close_all()
    assert sorted(s.name for s in sink.spans) == ["execute_tool t"] * 4 + ["invoke_agent"]


def test_one_table_for_all_runs_and_ids_are_per_run(clock: FakeClock) -> None:
    m, _, stats = mapper(clock, max_event_ids=10)
    m.process(
        [
            ev(EventKind.RUN_STARTED, 0, run="a", event_id="e1"),
            ev(EventKind.RUN_STARTED, 0, run="b", event_id="e1"),  # another run's e1: not a re-send
            ev(EventKind.RUN_STARTED, 1, run="a", event_id="e1"),
        ]
    )
    assert stats.dropped == {"duplicate_event": 1}
    assert stats.event_ids_forgotten == 0


def test_a_resend_after_its_run_finished_is_still_mapped_once(clock: FakeClock) -> None:
    m, _, stats = mapper(clock, run_end_grace_s=0.0)
    m.process([ev(EventKind.RUN_STARTED, 0, event_id="s"), ev(EventKind.RUN_FINISHED, 5, event_id="f")])
    clock.now += 1
    m.sweep()
    m.process([ev(EventKind.RUN_FINISHED, 5, event_id="f")])  # the producer re-sent it after a reconnect
    m.close_all()
    assert stats.dropped == {"duplicate_event": 1}
    assert stats.continuations == 0
