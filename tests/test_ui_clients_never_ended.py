"""A run its producer never ends still ends for a stock UI client: the bridge closes it, and says so.

The captures whose runs have no end (MCP-like captures, OpenIntent's adapter events) are
posted to a live sidecar with a one-second idle timeout while a stock ``@ag-ui/client``
``HttpAgent`` (GET and unchanged POST) and the AI SDK's ``readUIMessageStream`` follow each
run, and again resumed after (:mod:`tests.support.ui_clients`; no client is stopped by the
test). When the bridge closes the run for its silence, ``runAgent()`` must resolve on a
``RUN_FINISHED`` that names the timeout and the reader's stream must end, each with the
capture's content rebuilt.
"""

from __future__ import annotations

import functools

import pytest

from tests.support.ui_clients import Outcome, batches, captures, missing, read_batch
from tests.test_agui_clients import problems as agui_problems
from tests.test_ai_sdk_stream import problems as ai_sdk_problems

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

NEVER_ENDED = [c for c in captures() if any(not run.ended for run in c.runs.values())]


@functools.cache
def outcomes() -> tuple[Outcome, ...]:
    return tuple(o for group in batches(NEVER_ENDED) for o in read_batch(group, idle_timeout_s=1.0))


def test_there_are_captures_that_never_end_their_runs() -> None:
    assert {c.path.parent.name for c in NEVER_ENDED} >= {"generic", "mcp", "openintent"}


def ended_by_the_bridge(outcome: Outcome) -> list[str]:
    result, where = outcome.result, f"{outcome.phase} {outcome.job.kind} {outcome.capture.name}"
    if not result["ok"] or result["stopped"]:
        return [f"{where}: did not end by itself: {result.get('error')}"]
    if outcome.job.kind == "ai-sdk":
        return ai_sdk_problems(outcome)
    last = result["events"][-1]
    if (last["type"], last["metadata"]["originalType"]) != ("RUN_FINISHED", "otel_bridge.run_timeout"):
        return [f"{where}: ended with {last}"]
    return agui_problems(outcome)


def test_run_agent_resolves_and_the_reader_ends_when_the_bridge_closes_a_silent_run() -> None:
    done = outcomes()
    assert {(o.phase, o.job.kind) for o in done} == {
        (phase, kind) for phase in ("live", "resumed") for kind in ("agui-get", "agui-post", "ai-sdk")
    }
    assert [p for outcome in done for p in ended_by_the_bridge(outcome)] == []
