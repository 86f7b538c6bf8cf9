"""Regression (issue 9): an eviction storm must never export two spans with one id.

Many more runs send at once than ``max_open_runs`` allows, their events interleaved, so
every new event evicts an open run and an evicted run's next event comes back after it was
also pushed out of the finished-run memory. Before the fix, such a run rebuilt its root
(``run``) and its ``#n`` keys and re-exported span ids a backend already held. The issue's
storm is 100,000 runs against 10,000 open; this is the same shape at a hundredth.
"""

from __future__ import annotations

from collections import Counter

from otel_bridge.mapping.table import MAX_KEY_USES
from otel_bridge.model import AgentEvent, EventKind, TokenUsage
from tests.conftest import FakeClock
from tests.test_lifecycle import ev, mapper


def run_events(run: str) -> list[AgentEvent]:
    """16 events: the run, 3 LLM calls (two streamed), 2 tool calls, progress, a message."""
    out = [ev(EventKind.RUN_STARTED, 0, run, agent="storm")]
    t = 1
    for call in range(3):
        out.append(ev(EventKind.LLM_STARTED, t, run, call_id=f"l{call}", model="gpt-4o", provider="openai"))
        if call < 2:
            out.append(ev(EventKind.LLM_CHUNK, t + 1, run, call_id=f"l{call}"))
        out.append(ev(EventKind.LLM_COMPLETED, t + 2, run, call_id=f"l{call}", usage=TokenUsage(input=10, output=2)))
        t += 3
    for tool in range(2):
        out.append(ev(EventKind.TOOL_STARTED, t, run, call_id=f"t{tool}", tool_name="search"))
        out.append(ev(EventKind.TOOL_COMPLETED, t + 1, run, call_id=f"t{tool}", tool_name="search"))
        t += 2
    out.append(ev(EventKind.PROGRESS, t, run))
    out.append(ev(EventKind.MESSAGE, t + 1, run, text="done"))
    out.append(ev(EventKind.RUN_FINISHED, t + 2, run))
    assert len(out) == 16
    return out


def test_an_eviction_storm_exports_no_span_id_twice(clock: FakeClock) -> None:
    m, sink, stats = mapper(clock, max_open_runs=100, max_finished_runs=100, run_end_grace_s=0.0)
    runs = [run_events(f"storm-{r:04d}") for r in range(1000)]
    for i in range(16):  # every run's i-th event, then every run's next one: 1,000 runs at once
        m.process([events[i] for events in runs])
        clock.now += 0.001
        m.sweep()
    m.close_all()
    ids = Counter((s.trace_id, s.span_id) for s in sink.spans)
    assert [key for key, n in ids.items() if n > 1] == []
    assert stats.dropped["max_open_runs"] > 10_000  # it was a storm: nearly every event evicted a run
    # ... and runs came back after they were forgotten as finished
    assert stats.finished_runs_forgotten > 0
    assert stats.runs_reopened > 0


def test_a_run_past_the_key_use_bound_reuses_no_span_id(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    events = [ev(EventKind.RUN_STARTED, 0)]
    for i in range(MAX_KEY_USES + 10):  # more distinct call ids than the run remembers
        events += [ev(EventKind.TOOL_STARTED, i, call_id=f"c{i}"), ev(EventKind.TOOL_COMPLETED, i, call_id=f"c{i}")]
    for i in (0, MAX_KEY_USES + 5):  # then each id once more: one remembered, one not
        events += [ev(EventKind.TOOL_STARTED, 1e6, call_id=f"c{i}"), ev(EventKind.TOOL_COMPLETED, 1e6, call_id=f"c{i}")]
    m.process(events)
    m.close_all()
    ids = Counter(s.span_id for s in sink.spans)
    assert len(sink.spans) == MAX_KEY_USES + 10 + 2 + 1
    assert [key for key, n in ids.items() if n > 1] == []
