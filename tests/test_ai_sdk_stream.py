"""The AI SDK's own reader rebuilds every capture from ``?format=ai-sdk``: one run, one assistant message.

Every capture of every registered dialect, posted while subscribed and read again
resumed (:mod:`tests.support.ui_clients`), read by the ``ai`` package's
``parseJsonEventStream`` with its ``uiMessageChunkSchema`` (what ``useChat``'s
transport does) and ``readUIMessageStream``. The message must hold the capture's
texts, tool calls with their inputs, outputs and errors, ``data-otel`` parts with
the trace, and the run's error.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from unittest.mock import ANY

import httpx
import msgspec
import pytest

from otel_bridge.config import Settings
from tests.support.live import LiveServer, post
from tests.support.ui_clients import (
    Expected,
    Job,
    Outcome,
    _run_clients,
    captures,
    missing,
    norm,
    read_batch,
    read_every_capture,
)

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


def test_one_run_is_one_assistant_message_whole_stream() -> None:
    live = LiveServer(msgspec.convert({"mapping": {"capture_content": True}}, Settings))
    try:
        post(live.url, RUN, run_id="r")
        with httpx.stream("GET", live.url + "/v1/stream?format=ai-sdk&run_id=r", timeout=10) as response:
            headers = response.headers
            raw = response.read().decode()
    finally:
        live.stop()
    assert headers["x-vercel-ai-ui-message-stream"] == "v1"
    data = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert raw.endswith("data: [DONE]\n\n: end of run\n\n")  # and then the response ends
    chunks = [json.loads(d) for d in data[:-1]]
    trace = chunks[0]["messageMetadata"]["traceId"]
    root = {"traceId": trace, "spanId": ANY, "runId": "r", "threadId": "c", "durationMs": ANY}
    otel = {**root, "parentSpanId": ANY}
    assert chunks == [
        {
            "type": "start",
            "messageId": "r",
            "messageMetadata": {"traceId": trace, "runId": "r", "threadId": "c", "agent": "planner"},
        },
        {"type": "reasoning-start", "id": ANY},
        {"type": "reasoning-delta", "id": ANY, "delta": "hmm"},
        {"type": "reasoning-end", "id": ANY},
        {"type": "start-step"},
        {"type": "text-start", "id": ANY},
        {"type": "text-delta", "id": ANY, "delta": "Hel"},
        {"type": "text-delta", "id": ANY, "delta": "lo"},
        {"type": "text-end", "id": ANY},
        {
            "type": "data-otel",
            "id": ANY,
            "data": {
                **otel,
                "kind": "llm.completed",
                "provider": "openai",
                "model": "gpt-4o",
                "costUsd": ANY,
                "usage": {"inputTokens": 10, "outputTokens": 3, "totalTokens": 13},
            },
        },
        {"type": "finish-step"},
        {"type": "tool-input-available", "toolCallId": ANY, "toolName": "search", "input": {"q": "x"}, "dynamic": True},
        {"type": "tool-output-available", "toolCallId": ANY, "output": [1], "dynamic": True},
        {"type": "data-otel", "id": ANY, "data": {**otel, "kind": "tool.completed", "name": "search"}},
        {"type": "tool-input-available", "toolCallId": ANY, "toolName": "fetch", "input": None, "dynamic": True},
        {"type": "tool-output-error", "toolCallId": ANY, "errorText": "timeout", "dynamic": True},
        {"type": "data-otel", "id": ANY, "data": {**otel, "kind": "tool.failed", "name": "fetch", "error": "timeout"}},
        {
            "type": "data-otel",
            "id": ANY,
            "data": {**root, "kind": "run.finished"},
        },
        {
            "type": "finish",
            "finishReason": "stop",
            "messageMetadata": {
                "traceId": trace,
                "runId": "r",
                "threadId": "c",
                "usage": {"inputTokens": 10, "outputTokens": 3, "totalTokens": 13},
                "costUsd": ANY,
            },
        },
    ]
    text_ids = {c["id"] for c in chunks if c["type"].startswith("text-")}
    assert len(text_ids) == 1


RUN: list[dict[str, Any]] = [
    {"kind": "run.started", "agent": "planner", "conversation_id": "c"},
    {"kind": "thinking", "text": "hmm"},
    {"kind": "llm.started", "call_id": "l1", "model": "gpt-4o", "provider": "openai"},
    {"kind": "llm.chunk", "call_id": "l1", "text": "Hel"},
    {"kind": "llm.chunk", "call_id": "l1", "text": "lo"},
    {
        "kind": "llm.completed",
        "call_id": "l1",
        "model": "gpt-4o",
        "provider": "openai",
        "usage": {"input": 10, "output": 3},
    },
    {"kind": "tool.started", "tool_name": "search", "call_id": "t1", "arguments": '{"q":"x"}'},
    {"kind": "tool.completed", "tool_name": "search", "call_id": "t1", "result": "[1]"},
    {"kind": "tool.failed", "tool_name": "fetch", "call_id": "t2", "error": "timeout"},
    {"kind": "run.finished"},
]


def test_with_content_off_both_clients_are_told_why_the_message_is_empty() -> None:
    [capture] = [c for c in captures() if c.name == "openai-chat/tool-call.sse"]
    outcomes = read_batch([capture], content=False)
    for outcome in outcomes:
        result = outcome.result
        assert result["ok"], result
        if outcome.job.kind == "ai-sdk":
            notices = [p for p in result["message"]["parts"] if p["type"] == "data-otel" and p["id"] == "notice"]
            assert [n["data"]["notice"] for n in notices] == ["otel_bridge.content_not_captured"]
            assert [p for p in result["message"]["parts"] if p["type"] == "text"] == []
        else:
            assert [(e["type"], e.get("name")) for e in result["events"][:2]] == [
                ("RUN_STARTED", None),
                ("CUSTOM", "otel_bridge.content_not_captured"),
            ]
            assert [m for m in result["messages"] if m.get("content")] == []


def test_a_tool_started_without_arguments_shows_at_once_and_stays_one_part() -> None:
    """Regression: a ``tool.started`` without arguments sent nothing until the tool ended, so a UI
    showed no call while it ran; now ``tool-input-start`` opens the part, even when a step (a
    sub-agent's LLM call) comes between it and the tool's end."""
    live = LiveServer(msgspec.convert({"mapping": {"capture_content": True}}, Settings))
    url = live.url + "/v1/stream?format=ai-sdk&run_id=r"
    try:
        post(
            live.url,
            [{"kind": "run.started"}, {"kind": "tool.started", "tool_name": "search", "call_id": "t1"}],
            run_id="r",
        )
        running = Job("running", "ai-sdk", url, Expected("r", "r"), open=True)
        [result] = _run_clients(live, [running], post=[]).values()
        assert result["ok"], result
        tools = [p for p in result["message"]["parts"] if p["type"] == "dynamic-tool"]
        assert [(t["toolName"], t["state"]) for t in tools] == [("search", "input-streaming")]
        post(
            live.url,
            [
                {"kind": "llm.started", "call_id": "l1", "model": "gpt-4o"},
                {"kind": "llm.completed", "call_id": "l1", "model": "gpt-4o", "text": "sub-agent"},
                {"kind": "tool.completed", "tool_name": "search", "call_id": "t1", "result": "[1]"},
                {"kind": "run.finished"},
            ],
            run_id="r",
        )
        [whole] = _run_clients(live, [Job("whole", "ai-sdk", url, Expected("r", "r"))], post=[]).values()
    finally:
        live.stop()
    assert whole["ok"], whole
    tools = [p for p in whole["message"]["parts"] if p["type"] == "dynamic-tool"]
    assert [(t["toolName"], t["state"], t["output"]) for t in tools] == [("search", "output-available", [1])]
