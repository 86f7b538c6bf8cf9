"""``?format=ag-ui``: one run per stream, whole outputs, validated with the real ``ag-ui-protocol`` models.

The stock TypeScript client reads every capture in ``test_agui_clients.py``; here the
route's rules (one run or thread per stream, the end of the response, 400/410/422),
late events, notices and ids, each on a small run with a whole-output assertion.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import httpx
import msgspec
import pytest
from ag_ui.core import Event
from pydantic import BaseModel, TypeAdapter

from otel_bridge.config import Settings
from otel_bridge.model import EventKind
from tests.support.live import LiveServer, post, sse

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

# The whole AG-UI run EVERY_KIND makes (the types; ids and values are pinned below where they matter).
EXPECTED_TYPES = [
    "RUN_STARTED",
    "STEP_STARTED",  # agent.started: the step is named after the agent
    "STEP_STARTED",
    *("REASONING_START", "REASONING_MESSAGE_START", "REASONING_MESSAGE_CONTENT"),  # thinking
    *("REASONING_MESSAGE_END", "REASONING_END"),
    "CUSTOM",  # llm.stream.started (llm.started shows nothing: its message opens with its text)
    "TEXT_MESSAGE_START",
    "TEXT_MESSAGE_CONTENT",
    "TEXT_MESSAGE_CONTENT",
    "CUSTOM",  # llm.stream.ended
    "TEXT_MESSAGE_END",
    "TEXT_MESSAGE_START",  # c2: a completion whose text was never streamed
    "TEXT_MESSAGE_CONTENT",
    "TEXT_MESSAGE_END",
    "CUSTOM",  # c3 failed, without text: its error
    "TOOL_CALL_START",  # tool.requested: args and end at once
    "TOOL_CALL_ARGS",
    "TOOL_CALL_END",
    "TOOL_CALL_RESULT",  # tool.started of the requested call shows nothing more; tool.completed: its result
    "TOOL_CALL_START",  # t2 failed without a start
    "TOOL_CALL_END",
    "TOOL_CALL_RESULT",
    "CUSTOM",  # request.started (a protocol request: no AG-UI counterpart)
    "CUSTOM",  # request.finished
    "CUSTOM",  # request.failed
    "CUSTOM",  # state.changed (not an AG-UI producer's STATE_*)
    "STATE_DELTA",  # status.changed
    "CUSTOM",  # progress
    "TEXT_MESSAGE_START",  # message
    "TEXT_MESSAGE_CONTENT",
    "TEXT_MESSAGE_END",
    "CUSTOM",  # error
    "CUSTOM",  # custom
    "STEP_FINISHED",
    "STEP_FINISHED",  # agent.failed (agent.finished then has nothing to close)
    "RUN_FINISHED",
]


def test_every_kind_is_in_the_fixture() -> None:
    assert {e["kind"] for e in EVERY_KIND + FAILED_RUN} == {k.value for k in EventKind}


def unknown_fields(model: BaseModel) -> list[str]:
    """Fields the model does not declare (the models keep unknown fields instead of rejecting them)."""
    return sorted((model.model_extra or {}).keys())


def settings(content: bool = True, **feed: object) -> Settings:
    return msgspec.convert({"mapping": {"capture_content": content}, "feed": feed}, Settings)


@pytest.fixture
def server() -> Iterator[LiveServer]:
    live = LiveServer(settings())
    try:
        yield live
    finally:
        live.stop()


def read_run(url: str) -> list[dict[str, Any]]:
    """Every AG-UI event of one response, read until the server ends it."""
    with sse(url) as events:
        return [json.loads(e.data) for e in events if e.data]


def test_one_run_validates_carries_its_run_and_trace_and_ends_the_response(server: LiveServer) -> None:
    post(server.url, [{**e, "run_id": "run-1"} for e in EVERY_KIND])
    with sse(server.url + "/v1/stream?run_id=run-1&last_event_id=0") as canonical:
        records = {}
        for e in canonical:
            if e.event == "missed":  # last_event_id=0 is from before this server started
                continue
            records[json.loads(e.data)["seq"]] = json.loads(e.data)
            if len(records) == len(EVERY_KIND):
                break
    with sse(server.url + "/v1/stream?format=ag-ui&run_id=run-1") as stream:
        received = [e for e in stream if e.data]  # the server ends the response after the run's end
    bodies = [json.loads(e.data) for e in received]
    for body in bodies:
        model = EVENTS.validate_python(body)
        assert unknown_fields(model) == [], body
        assert EVENTS.dump_python(model, mode="json", by_alias=True) == body  # nothing lost or coerced
        meta = body["metadata"]
        record = records[meta["seq"]]
        assert (meta["threadId"], meta["runId"]) == ("thread-9", "run-1")
        assert (meta["traceId"], meta["spanId"], meta.get("parentSpanId")) == (
            record["trace_id"],
            record["span_id"],
            record["parent_span_id"],
        )
        assert meta["kind"] == record["kind"]
    assert [b["type"] for b in bodies] == EXPECTED_TYPES
    assert bodies[0] | {"metadata": None, "timestamp": None} == {
        "type": "RUN_STARTED",
        "threadId": "thread-9",
        "runId": "run-1",
        "metadata": None,
        "timestamp": None,
    }
    # Only the last frame of an event's group carries the id, so a resume never splits a group.
    # (httpx-sse repeats the last id on frames without one, as the SSE spec says.)
    seqs = [b["metadata"]["seq"] for b in bodies]
    for i, e in enumerate(received):
        if e.id != (received[i - 1].id if i else ""):
            assert int(e.id) == seqs[i]
            assert i + 1 == len(seqs) or seqs[i + 1] != seqs[i]


def test_a_failed_run_ends_with_run_error(server: LiveServer) -> None:
    post(server.url, [{**e, "run_id": "run-2"} for e in FAILED_RUN])
    bodies = read_run(server.url + "/v1/stream?format=ag-ui&run_id=run-2")
    assert [{k: v for k, v in b.items() if k not in ("metadata", "timestamp")} for b in bodies] == [
        {"type": "RUN_STARTED", "threadId": "run-2", "runId": "run-2"},
        {"type": "RUN_ERROR", "message": "boom", "code": "E"},
    ]


def strip(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in b.items() if k not in ("metadata", "timestamp")} for b in bodies]


def test_a_run_without_a_start_gets_one_and_its_end_closes_what_is_open(server: LiveServer) -> None:
    post(
        server.url,
        [
            {"kind": "step.started", "name": "plan"},
            {"kind": "llm.chunk", "call_id": "c1", "text": "Hi"},
            {"kind": "tool.started", "tool_name": "search", "call_id": "t1"},
            {"kind": "run.finished"},
        ],
        run_id="bare",
    )
    bodies = read_run(server.url + "/v1/stream?format=ag-ui&run_id=bare")
    [message_id] = {b["messageId"] for b in bodies if b["type"].startswith("TEXT_MESSAGE")}
    [call_id] = {b["toolCallId"] for b in bodies if b["type"].startswith("TOOL_CALL")}
    assert strip(bodies) == [
        {"type": "RUN_STARTED", "threadId": "bare", "runId": "bare"},
        {"type": "STEP_STARTED", "stepName": "plan"},
        {"type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": message_id, "delta": "Hi"},
        {"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": "search", "parentMessageId": message_id},
        {"type": "TEXT_MESSAGE_END", "messageId": message_id},
        {"type": "TOOL_CALL_END", "toolCallId": call_id},
        {"type": "STEP_FINISHED", "stepName": "plan"},
        {"type": "RUN_FINISHED", "threadId": "bare", "runId": "bare"},
    ]


def test_tool_arguments_that_come_with_the_completion_are_sent_then_as_json(server: LiveServer) -> None:
    post(
        server.url,
        [
            {"kind": "run.started"},
            {"kind": "tool.started", "tool_name": "search", "call_id": "t1"},
            {"kind": "tool.completed", "tool_name": "search", "call_id": "t1", "arguments": "q=x", "result": "ok"},
            {"kind": "run.finished"},
        ],
        run_id="late-args",
    )
    bodies = strip(read_run(server.url + "/v1/stream?format=ag-ui&run_id=late-args"))
    call_id = bodies[1]["toolCallId"]
    assert bodies[1:-1] == [
        {"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": "search"},
        {"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": '"q=x"'},  # not JSON: a JSON string
        {"type": "TOOL_CALL_END", "toolCallId": call_id},
        {
            "type": "TOOL_CALL_RESULT",
            "messageId": f"result-{call_id}",
            "toolCallId": call_id,
            "content": "ok",
            "role": "tool",
        },
    ]


def test_producer_ids_are_namespaced_per_run(server: LiveServer) -> None:
    for run in ("a", "b"):
        post(
            server.url,
            [
                {"kind": "tool.completed", "tool_name": "search", "call_id": "t1", "result": "ok"},
                {"kind": "run.finished"},
            ],
            run_id=run,
        )
    ids = [
        {b["toolCallId"] for b in read_run(f"{server.url}/v1/stream?format=ag-ui&run_id={run}") if "toolCallId" in b}
        for run in ("a", "b")
    ]
    assert len(ids[0]) == len(ids[1]) == 1
    assert ids[0] != ids[1]


def test_late_events_are_held_back_and_counted_and_a_new_start_is_a_new_run(server: LiveServer) -> None:
    post(
        server.url, [{"kind": "run.started"}, {"kind": "run.finished"}, {"kind": "custom", "name": "tail"}], run_id="r"
    )
    assert [b["type"] for b in read_run(server.url + "/v1/stream?format=ag-ui&run_id=r")] == [
        "RUN_STARTED",
        "RUN_FINISHED",
    ]
    assert httpx.get(server.url + "/v1/health").json()["feed"]["late_dropped"] == {"ag-ui": 1, "ai-sdk": 1}
    post(server.url, [{"kind": "run.started"}, {"kind": "run.finished"}], run_id="r")
    again = read_run(server.url + "/v1/stream?format=ag-ui&run_id=r")
    assert [(b["type"], b["runId"]) for b in again] == [("RUN_STARTED", "r#2"), ("RUN_FINISHED", "r#2")]


def test_feed_notices_are_comments_so_a_resumed_stream_still_opens_with_run_started(server: LiveServer) -> None:
    post(server.url, [{"kind": "run.started"}, {"kind": "run.finished"}], run_id="r")
    with httpx.stream("GET", server.url + "/v1/stream?format=ag-ui&run_id=r&last_event_id=5", timeout=10) as response:
        raw = response.read().decode()
    oldest = server.feed.oldest_seq
    notice = (
        f': otel_bridge.missed {{"missed":null,"reason":"restarted","last_event_id":5,"oldest_available":{oldest}}}'
    )
    assert notice in raw.splitlines()
    data = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    assert [d["type"] for d in data] == ["RUN_STARTED", "RUN_FINISHED"]
    assert raw.endswith(": end of run\n\n")


@pytest.mark.parametrize("fmt", ["ag-ui", "ai-sdk"])
@pytest.mark.parametrize("query", ["", "&run_id=a,b", "&run_id=a&kind=llm", "&run_id=a&thread_id=t"])
def test_a_ui_form_needs_exactly_one_run_or_thread(server: LiveServer, fmt: str, query: str) -> None:
    response = httpx.get(f"{server.url}/v1/stream?format={fmt}{query}", timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == "one_run_per_stream"


def test_a_run_whose_start_left_the_ring_unseen_starts_at_what_the_ring_holds() -> None:
    # No UI asked while the run's start was in the ring: the run begins at its oldest event still held.
    live = LiveServer(settings(ring_size=2))
    try:
        run = [{"kind": "run.started"}, {"kind": "message", "text": "a"}, {"kind": "message", "text": "b"}]
        post(live.url, [*run, {"kind": "run.finished"}], run_id="r")
        bodies = strip(read_run(live.url + "/v1/stream?format=ag-ui&run_id=r"))
    finally:
        live.stop()
    assert [(b["type"], b.get("delta")) for b in bodies] == [
        ("RUN_STARTED", None),
        ("TEXT_MESSAGE_START", None),
        ("TEXT_MESSAGE_CONTENT", "b"),
        ("TEXT_MESSAGE_END", None),
        ("RUN_FINISHED", None),
    ]


def test_a_run_a_ui_saw_start_whose_start_left_the_ring_is_gone() -> None:
    live = LiveServer(settings(ring_size=2))
    try:
        post(live.url, [{"kind": "run.started"}], run_id="r")
        with httpx.stream("GET", live.url + "/v1/stream?format=ag-ui&run_id=r", timeout=10) as seen:
            assert b"RUN_STARTED" in next(seen.iter_bytes())  # a UI saw the run start
        post(live.url, [{"kind": "message", "text": "a"}, {"kind": "message", "text": "b"}], run_id="r")
        response = httpx.get(live.url + "/v1/stream?format=ag-ui&run_id=r", timeout=10)
        assert (response.status_code, response.json()["error"]) == (410, "run_not_in_ring")
    finally:
        live.stop()


def test_post_with_a_run_agent_input_watches_the_run_it_names(server: LiveServer) -> None:
    post(server.url, [{"kind": "run.started", "conversation_id": "t"}, {"kind": "run.finished"}], run_id="r")
    body = {"threadId": "t", "runId": "r", "messages": [], "tools": [], "context": [], "state": {}}
    with httpx.stream("POST", server.url + "/v1/stream", json=body, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    data = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    assert [(d["type"], d["threadId"], d["runId"]) for d in data] == [
        ("RUN_STARTED", "t", "r"),
        ("RUN_FINISHED", "t", "r"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{", 400, "malformed_body"),
        (b'{"threadId": "t"}', 422, "invalid_run_agent_input"),
        (b'{"threadId": 1, "runId": "r"}', 422, "invalid_run_agent_input"),
    ],
)
def test_a_bad_run_agent_input_gets_a_clear_error(server: LiveServer, body: bytes, status: int, error: str) -> None:
    response = httpx.post(server.url + "/v1/stream", content=body, timeout=10)
    assert (response.status_code, response.json()["error"]) == (status, error)


def test_the_thread_filter_selects_a_conversation_on_the_canonical_feed(server: LiveServer) -> None:
    post(server.url, [{"kind": "run.started", "conversation_id": "A"}, {"kind": "message", "text": "x"}], run_id="r1")
    post(server.url, [{"kind": "run.started", "conversation_id": "B"}, {"kind": "message", "text": "y"}], run_id="r2")
    with sse(server.url + "/v1/stream?thread_id=A&last_event_id=0") as events:
        got = [json.loads(e.data) for e in itertools.islice((e for e in events if e.event != "missed"), 2)]
    # The message does not name the conversation: the run's is remembered.
    assert [(g["kind"], g["run_id"]) for g in got] == [("run.started", "r1"), ("message", "r1")]


def test_with_content_off_the_run_says_so() -> None:
    live = LiveServer(settings(content=False))
    try:
        post(
            live.url,
            [{"kind": "run.started"}, {"kind": "message", "text": "secret"}, {"kind": "run.finished"}],
            run_id="r",
        )
        bodies = strip(read_run(live.url + "/v1/stream?format=ag-ui&run_id=r"))
    finally:
        live.stop()
    assert bodies == [
        {"type": "RUN_STARTED", "threadId": "r", "runId": "r"},
        {
            "type": "CUSTOM",
            "name": "otel_bridge.content_not_captured",
            "value": {
                "message": "otel-bridge does not capture content (mapping.capture_content is off): "
                "messages, tool arguments and results are not shown"
            },
        },
        {"type": "CUSTOM", "name": "message", "value": ANY},  # the message is still shown to have been sent
        {"type": "RUN_FINISHED", "threadId": "r", "runId": "r"},
    ]
