"""A stock ``@ag-ui/client`` accepts the AG-UI feed of every capture and rebuilds what the capture said.

Every capture of every registered dialect is posted to a live sidecar while a stock
``HttpAgent`` is subscribed (changed only to GET ``?format=ag-ui&run_id=``, and
unchanged, POSTing its ``RunAgentInput``), with several runs in flight, and again
resumed (``last_event_id=0``) after the posts (:mod:`tests.support.ui_clients`). The
client runs its own pipeline: schema check, ``verifyEvents`` (one refused event
fails the run), ``defaultApplyEvents``. ``runAgent()`` must resolve when the run
ends, and the messages it built must hold the capture's texts, tool calls with
their arguments, results and errors.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.ui_clients import Outcome, captures, missing, norm, read_every_capture

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

CAPTURES = [capture.name for capture in captures()]


def rebuilt(result: dict[str, Any]) -> tuple[Counter[str], Counter[tuple[str, str]], Counter[str]]:
    """Texts, tool calls (name, arguments) and tool results of the messages an AG-UI client built."""
    texts: Counter[str] = Counter()
    calls: Counter[tuple[str, str]] = Counter()
    results: Counter[str] = Counter()
    for message in result["messages"]:
        if message["role"] == "assistant":
            if message.get("content"):
                texts[message["content"]] += 1
            for call in message.get("toolCalls", []):
                calls[(call["function"]["name"], norm(call["function"]["arguments"]))] += 1
        elif message["role"] == "tool":
            results[norm(message["content"])] += 1
    return texts, calls, results


def problems(outcome: Outcome) -> list[str]:
    result, run = outcome.result, outcome.job.run
    where = f"{outcome.phase} {outcome.job.kind} {outcome.capture.name} run {run.run_id}"
    if not result["ok"]:
        return [f"{where}: the client refused the stream: {result['error']}"]
    out = []
    texts, calls, results = rebuilt(result)
    for what, got, want in (("texts", texts, run.texts), ("tool calls", calls, run.tool_calls)):
        if got != want:
            out.append(f"{where}: {what} {dict(got)} != {dict(want)}")
    if results != run.results:
        out.append(f"{where}: results {dict(results)} != {dict(run.results)}")
    types = [event["type"] for event in result["events"]]
    if run.ended and not result["stopped"]:
        end = "RUN_ERROR" if run.error is not None else "RUN_FINISHED"
        if types[-1:] != [end]:
            out.append(f"{where}: the run did not end with {end}: {types[-3:]}")
    if run.error is not None and run.ended:
        errors = [e for e in result["events"] if e["type"] == "RUN_ERROR"]
        if not errors:
            out.append(f"{where}: no RUN_ERROR")
    for event in result["events"]:
        if result["stopped"] and event["type"] == "RUN_ERROR" and "metadata" not in event:
            continue  # the client's own, for the stop
        meta = event.get("metadata") or {}
        if not meta.get("threadId") or not meta.get("runId"):
            out.append(f"{where}: {event['type']} without threadId/runId in its metadata")
            break
    return out


@pytest.mark.parametrize("name", CAPTURES)
def test_a_stock_client_accepts_the_stream_and_rebuilds_the_capture(name: str) -> None:
    outcomes = [o for o in read_every_capture() if o.capture.name == name and o.job.kind.startswith("agui")]
    assert {(o.phase, o.job.kind) for o in outcomes} >= {("live", "agui-get"), ("resumed", "agui-get")}
    assert [p for outcome in outcomes for p in problems(outcome)] == []


def test_run_agent_resolves_when_the_run_ends_get_and_post() -> None:
    ended = [o for o in read_every_capture() if o.job.kind.startswith("agui") and o.job.run.ended]
    assert {o.job.kind for o in ended} == {"agui-get", "agui-post"}
    assert [o.job.id for o in ended if o.result["stopped"] or not o.result["ok"]] == []


# What the captures themselves say (read from the files): the state their STATE_SNAPSHOT / STATE_DELTA build.
STATES = {
    ("ag-ui/python-encoder.sse", "run_1"): {"city": "Lisbon", "status": "done"},
    ("ag-ui/python-encoder-openinference.sse", "run_oi_1"): {"city": "Lisbon", "status": "done"},
    ("ag-ui/typescript-encoder.sse", "run_1"): {"weather": "18C"},
}


def test_state_reasoning_and_requested_tool_calls_reach_the_client() -> None:
    gets = {
        (o.capture.name, o.job.run.run_id): o.result
        for o in read_every_capture()
        if o.job.kind == "agui-get" and o.phase == "live"
    }
    # AG-UI state is passed through: the client applies the producer's snapshot and delta itself.
    assert {key: gets[key]["state"] for key in STATES} == STATES
    # Reasoning arrives as REASONING_* (and the client keeps it as a reasoning message).
    thinking = gets[("ag-ui/thinking-0.1-chunks-subagent.sse", "run_7")]
    assert "REASONING_MESSAGE_CONTENT" in [e["type"] for e in thinking["events"]]
    assert [m["role"] for m in thinking["messages"] if m["role"] == "reasoning"] != []
    # A raw provider stream's requested tool call is a tool call of the assistant message that asked for it.
    chat = gets[("openai-chat/tool-call.sse", "ui-openai-chat-tool-call")]
    [assistant] = [m for m in chat["messages"] if m["role"] == "assistant" and m.get("toolCalls")]
    assert [c["function"]["name"] for c in assistant["toolCalls"]] != []
