"""The embedded store's summaries: runs are listed while they run, and settled by their own span."""

from __future__ import annotations

from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, Settings
from otel_bridge.model import AgentEvent, EventKind, TokenUsage
from tests.conftest import FakeClock

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
# Derived from the run id alone ("long-run"): the same run is always the same trace.
TRACE_ID = "89721847314981ca3549d9fa02e04060"


def ev(kind: EventKind, t_ms: int, **fields: object) -> AgentEvent:
    return AgentEvent(
        kind=kind, run_id="long-run", timestamp_ns=T0 + t_ms * MS, dialect="test", original_type=str(kind), **fields
    )  # type: ignore[arg-type]


def test_a_running_run_is_listed_before_its_own_span_ends(clock: FakeClock) -> None:
    pipeline = assemble(Settings(mapping=MappingSettings(run_end_grace_s=0.0)), clock=clock.monotonic, pricer=None)
    bridge, store = pipeline.bridge, pipeline.store
    assert store is not None
    bridge.submit(
        [
            ev(EventKind.RUN_STARTED, 0, agent="planner"),
            ev(EventKind.LLM_STARTED, 10, call_id="c", model="m"),
            ev(EventKind.LLM_COMPLETED, 50, call_id="c", model="m", usage=TokenUsage(input=5, output=2)),
            ev(EventKind.TOOL_STARTED, 60, call_id="t", tool_name="slow"),
        ]
    )
    (running,) = store.recent()
    assert running.as_json() == {
        "trace_id": TRACE_ID,
        "run_id": "long-run",
        "agent": "planner",
        "dialect": "test",
        "name": None,
        "start_time_unix_nano": T0,
        "duration_ms": 60.0,
        "span_count": 1,  # the finished chat span; the run's own span is still open
        "error_count": 0,
        "input_tokens": 5,
        "output_tokens": 2,
        "cost_usd": None,
        "status": "running",
        "llm_calls": 1,
        "tool_calls": 0,  # the tool call is still open
        "models": ["m"],
    }
    assert [span.name for span in store.get(bytes.fromhex(TRACE_ID)) or []] == ["chat m"]
    bridge.submit([ev(EventKind.TOOL_COMPLETED, 90, call_id="t", tool_name="slow"), ev(EventKind.RUN_FINISHED, 100)])
    bridge.mapper.sweep()
    (done,) = store.recent()
    assert (done.root_name, done.status, done.span_count, done.end_ns - done.start_ns, done.tool_calls) == (
        "invoke_agent planner",
        "ok",
        3,
        100 * MS,
        1,
    )
