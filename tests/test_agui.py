"""``?format=ag-ui``: every event the feed emits validates with the real ``ag-ui-protocol`` models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from ag_ui.core import Event
from pydantic import BaseModel, TypeAdapter

from otel_bridge.config import Settings
from otel_bridge.model import EventKind
from otel_bridge.sinks.feed import FeedRecord
from otel_bridge.sinks.feed.agui import translate
from tests.support.live import LiveServer, post, sse, take

EVENTS = TypeAdapter(Event)

# One event of every kind, in an order a real run could have them.
EVERY_KIND: list[dict[str, Any]] = [
    {"kind": "run.started", "agent": "planner", "conversation_id": "thread-9"},
    {"kind": "agent.started", "agent": "researcher"},
    {"kind": "step.started", "name": "plan"},
    {"kind": "thinking", "text": "hmm"},
    {"kind": "llm.started", "model": "gpt-4o", "call_id": "c1"},
    {"kind": "llm.stream.started", "call_id": "c1"},
    {"kind": "llm.chunk", "call_id": "c1", "text": "Hel"},
    {"kind": "llm.chunk", "call_id": "c1", "text": "lo"},
    {"kind": "llm.stream.ended", "call_id": "c1"},
    {"kind": "llm.completed", "model": "gpt-4o", "call_id": "c1", "usage": {"input": 3, "output": 2}},
    {"kind": "llm.completed", "model": "gpt-4o", "call_id": "c2", "text": "never streamed"},
    {"kind": "llm.failed", "model": "gpt-4o", "call_id": "c3", "error": "rate limited", "error_type": "429"},
    {"kind": "tool.requested", "tool_name": "search", "call_id": "t1", "arguments": '{"q": "x"}'},
    {"kind": "tool.started", "tool_name": "search", "call_id": "t1", "arguments": '{"q": "x"}'},
    {"kind": "tool.completed", "tool_name": "search", "call_id": "t1", "result": "[1, 2]"},
    {"kind": "tool.failed", "tool_name": "fetch", "call_id": "t2", "error": "timeout"},
    {"kind": "request.started", "name": "tools/list", "call_id": "r1"},
    {"kind": "request.finished", "name": "tools/list", "call_id": "r1"},
    {"kind": "request.failed", "name": "prompts/get", "call_id": "r2", "error": "unknown", "error_type": "-32602"},
    {"kind": "state.changed", "name": "memory"},
    {"kind": "status.changed", "status": "working"},
    {"kind": "progress", "name": "50%"},
    {"kind": "message", "text": "done soon"},
    {"kind": "error", "error": "oops"},
    {"kind": "custom", "name": "my.thing"},
    {"kind": "step.finished", "name": "plan"},
    {"kind": "agent.failed", "agent": "researcher", "error": "gave up"},
    {"kind": "agent.finished", "agent": "researcher"},
    {"kind": "run.finished"},
]
FAILED_RUN: list[dict[str, Any]] = [{"kind": "run.started"}, {"kind": "run.failed", "error": "boom", "error_type": "E"}]

# Starts are synthesised for ends the feed never showed a start for; results follow tool ends.
EXPECTED_TYPES = [
    "RUN_STARTED",
    "STEP_STARTED",  # agent.started
    "STEP_STARTED",
    "CUSTOM",  # thinking
    "TEXT_MESSAGE_START",
    "CUSTOM",  # llm.stream.started
    "TEXT_MESSAGE_CONTENT",
    "TEXT_MESSAGE_CONTENT",
    "CUSTOM",  # llm.stream.ended
    "TEXT_MESSAGE_END",
    "TEXT_MESSAGE_START",  # c2 completed without a start: its text said at once
    "TEXT_MESSAGE_CONTENT",
    "TEXT_MESSAGE_END",
    "TEXT_MESSAGE_START",  # c3 failed without a start
    "TEXT_MESSAGE_END",
    "CUSTOM",  # tool.requested
    "TOOL_CALL_START",
    "TOOL_CALL_ARGS",
    "TOOL_CALL_END",
    "TOOL_CALL_RESULT",
    "TOOL_CALL_START",  # t2 failed without a start
    "TOOL_CALL_END",
    "TOOL_CALL_RESULT",
    "CUSTOM",  # request.started (a protocol request: no AG-UI counterpart)
    "CUSTOM",  # request.finished
    "CUSTOM",  # request.failed
    "CUSTOM",  # state.changed
    "STATE_DELTA",  # status.changed
    "CUSTOM",  # progress
    "TEXT_MESSAGE_START",  # message
    "TEXT_MESSAGE_CONTENT",
    "TEXT_MESSAGE_END",
    "CUSTOM",  # error
    "CUSTOM",  # custom
    "STEP_FINISHED",
    "STEP_FINISHED",  # agent.failed
    "STEP_FINISHED",  # agent.finished
    "RUN_FINISHED",
    "RUN_STARTED",
    "RUN_ERROR",
]


def test_every_kind_is_in_the_fixture() -> None:
    assert {e["kind"] for e in EVERY_KIND + FAILED_RUN} == {k.value for k in EventKind}


def unknown_fields(model: BaseModel) -> list[str]:
    """Fields the model does not declare (the models keep unknown fields instead of rejecting them)."""
    return sorted((model.model_extra or {}).keys())


@pytest.fixture
def server() -> Iterator[LiveServer]:
    live = LiveServer(msgspec.convert({"mapping": {"capture_content": True}}, Settings))
    try:
        yield live
    finally:
        live.stop()


def test_the_ag_ui_feed_validates_and_carries_the_trace(server: LiveServer) -> None:
    with sse(server.url + "/v1/stream?format=ag-ui") as events, sse(server.url + "/v1/stream") as canonical:
        post(server.url, [{**e, "run_id": "run-1"} for e in EVERY_KIND])
        post(server.url, [{**e, "run_id": "run-2"} for e in FAILED_RUN])
        sent = len(EVERY_KIND) + len(FAILED_RUN)
        records = {json.loads(e.data)["seq"]: json.loads(e.data) for e in take(canonical, sent)}
        received = take(events, len(EXPECTED_TYPES))
    types = []
    for sse_event in received:
        body = json.loads(sse_event.data)
        model = EVENTS.validate_python(body)
        assert unknown_fields(model) == [], body
        assert EVENTS.dump_python(model, mode="json", by_alias=True) == body  # nothing lost or coerced
        record = records[body["metadata"]["seq"]]
        assert body["metadata"]["traceId"] == record["trace_id"]
        assert body["metadata"]["spanId"] == record["span_id"]
        assert body["metadata"].get("parentSpanId") == record["parent_span_id"]
        assert body["metadata"]["kind"] == record["kind"]
        types.append(body["type"])
    assert types == EXPECTED_TYPES
    # Only the last frame of an event's group carries the id, so a resume never splits a group.
    # (httpx-sse repeats the last id on frames without one, as the SSE spec says.)
    seqs = [json.loads(e.data)["metadata"]["seq"] for e in received]
    for i, e in enumerate(received):
        if e.id != (received[i - 1].id if i else ""):
            assert int(e.id) == seqs[i]
            assert i + 1 == len(seqs) or seqs[i + 1] != seqs[i]  # the last frame of its group
    assert sorted({int(e.id) for e in received}) == sorted(records)


def test_ag_ui_resume_and_notices_are_valid_too(server: LiveServer) -> None:
    post(server.url, [{"kind": "run.started", "run_id": "r"}, {"kind": "run.finished", "run_id": "r"}])
    first = server.feed.newest_seq - 1
    with sse(f"{server.url}/v1/stream?format=ag-ui&last_event_id={first - 1}") as events:
        replayed = take(events, 2)
    assert [json.loads(e.data)["type"] for e in replayed] == ["RUN_STARTED", "RUN_FINISHED"]
    with sse(f"{server.url}/v1/stream?format=ag-ui&last_event_id=5") as events:
        notice = json.loads(take(events, 1)[0].data)
    model = EVENTS.validate_python(notice)
    assert unknown_fields(model) == []
    assert notice == {
        "type": "CUSTOM",
        "name": "otel_bridge.missed",
        "value": {"missed": None, "reason": "restarted", "last_event_id": 5, "oldest_available": first},
    }


def record(kind: str, **fields: Any) -> FeedRecord:
    base = {
        "seq": 7,
        "kind": kind,
        "run_id": "r",
        "timestamp_ns": 5_000_000,
        "trace_id": "t" * 32,
        "span_id": "s" * 16,
        "parent_span_id": None,
        "dialect": "generic",
        "original_type": kind,
        "source": "http",
    }
    return msgspec.convert({**base, **fields}, FeedRecord)


def test_the_whole_output_of_one_tool_call() -> None:
    rec = record("tool.completed", tool_name="search", call_id="t1", arguments="{}", result="ok")
    assert translate(rec, EventKind.TOOL_COMPLETED, needs_start=True) == [
        {"type": "TOOL_CALL_START", "toolCallId": "t1", "toolCallName": "search"},
        {"type": "TOOL_CALL_ARGS", "toolCallId": "t1", "delta": "{}"},
        {"type": "TOOL_CALL_END", "toolCallId": "t1"},
        {"type": "TOOL_CALL_RESULT", "messageId": "t1:result", "toolCallId": "t1", "content": "ok", "role": "tool"},
    ]
    assert translate(rec, EventKind.TOOL_COMPLETED) == [
        {"type": "TOOL_CALL_END", "toolCallId": "t1"},
        {"type": "TOOL_CALL_RESULT", "messageId": "t1:result", "toolCallId": "t1", "content": "ok", "role": "tool"},
    ]
