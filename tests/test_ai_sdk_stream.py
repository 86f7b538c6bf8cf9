"""The AI SDK's own reader rebuilds every capture from ``?format=ai-sdk``: one run, one assistant message.

Every capture of every registered dialect, posted while subscribed and read again
resumed (:mod:`tests.support.ui_clients`), read by the ``ai`` package's
``parseJsonEventStream`` with its ``uiMessageChunkSchema`` (what ``useChat``'s
transport does) and ``readUIMessageStream``. The message must hold the capture's
texts, tool calls with their inputs, outputs and errors, ``data-otel`` parts with
the trace, and the run's error.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.ui_clients import Outcome, captures, missing, norm, read_every_capture

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

CAPTURES = [capture.name for capture in captures()]


def rebuilt(message: dict[str, Any]) -> tuple[Counter[str], Counter[tuple[str, str]], Counter[str]]:
    texts: Counter[str] = Counter()
    calls: Counter[tuple[str, str]] = Counter()
    results: Counter[str] = Counter()
    for part in message["parts"]:
        if part["type"] == "text" and part["text"]:
            texts[part["text"]] += 1
        elif part["type"] == "dynamic-tool":
            arguments = part.get("input")
            calls[(part["toolName"], norm("" if arguments is None else arguments))] += 1
            if part["state"] == "output-error":
                results[norm(part["errorText"])] += 1
            elif part["state"] == "output-available" and part.get("output") is not None:
                results[norm(part["output"])] += 1
    return texts, calls, results


def problems(outcome: Outcome) -> list[str]:
    result, run = outcome.result, outcome.job.run
    where = f"{outcome.phase} {outcome.capture.name} run {run.run_id}"
    if not result["ok"]:
        return [f"{where}: the reader refused the stream: {result['error']}"]
    out = []
    if result["header"] != "v1":
        out.append(f"{where}: x-vercel-ai-ui-message-stream is {result['header']!r}")
    message = result["message"]
    texts, calls, results = rebuilt(message)
    for what, got, want in (("texts", texts, run.texts), ("tool calls", calls, run.tool_calls)):
        if got != want:
            out.append(f"{where}: {what} {dict(got)} != {dict(want)}")
    if results != run.outcomes:
        out.append(f"{where}: outputs and errors {dict(results)} != {dict(run.outcomes)}")
    if message["role"] != "assistant" or not message["metadata"].get("traceId"):
        out.append(f"{where}: not an assistant message with the trace in its metadata: {message['metadata']}")
    if run.error is not None and run.error not in result["errors"]:
        out.append(f"{where}: the run's error {run.error!r} not reported: {result['errors']}")
    return out


@pytest.mark.parametrize("name", CAPTURES)
def test_the_ai_sdk_reader_rebuilds_the_capture(name: str) -> None:
    outcomes = [o for o in read_every_capture() if o.capture.name == name and o.job.kind == "ai-sdk"]
    assert {o.phase for o in outcomes} == {"live", "resumed"}
    assert [p for outcome in outcomes for p in problems(outcome)] == []
