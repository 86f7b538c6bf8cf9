"""ADK's function calls as tool executions: one reader (``_adk_calls.FunctionCalls``) for both wires
ADK speaks, its own ``/run_sse`` stream and its A2A bridge, so the same calls make the same tools."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from otel_bridge.dialects import registry
from otel_bridge.dialects._adk_calls import FunctionCalls
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind

CALLS = [
    {"id": "c1", "name": "lookup", "args": {"sku": "A-1"}},
    {"id": "c1", "name": "lookup", "args": {"sku": "A-1"}},  # repeated: one tool span
    {"id": "c2", "name": "reserve", "args": {}},
    {"name": "no_id", "args": {}},  # no id: nothing to pair its response with
]
RESPONSES = [
    {"id": "c1", "name": "lookup", "response": {"stock": 3}},
    {"id": "c2", "name": "reserve", "response": {"error": "out of stock"}},
]


def test_a_call_starts_once_and_its_response_ends_it_failed_when_it_is_only_an_error() -> None:
    calls = FunctionCalls()
    assert [calls.start(c) for c in CALLS] == [
        ("c1", "lookup", '{"sku":"A-1"}'),
        None,
        ("c2", "reserve", "{}"),
        None,
    ]
    assert calls.end(RESPONSES[0]) == (EventKind.TOOL_COMPLETED, "c1", "lookup", '{"stock":3}', None)
    # The name the call gave, where the response gives none.
    failed = (EventKind.TOOL_FAILED, "c2", "reserve", '{"error":"out of stock"}', "out of stock")
    assert calls.end({"id": "c2", "response": {"error": "out of stock"}}) == failed
    assert calls.open == {}


def test_the_calls_still_open_fail_together_once() -> None:
    calls = FunctionCalls()
    calls.start(CALLS[0])
    calls.start(CALLS[2])
    assert calls.fail_all() == [("c1", "lookup"), ("c2", "reserve")]
    assert calls.fail_all() == []


def _decode(dialect: str, objs: list[dict[str, Any]]) -> list[AgentEvent]:
    counter = itertools.count()
    ctx = StreamContext(source="test", stream_key="k", clock_ns=lambda: 1_800_000_000_000_000_000 + next(counter))
    decoder = registry.get(dialect).decoder(ctx)
    events: list[AgentEvent] = []
    for o in objs:
        events.extend(decoder.feed(Frame(None, msgspec.json.encode(o)), o))
    return events + decoder.close()


def _tools(events: list[AgentEvent]) -> list[tuple[Any, ...]]:
    kinds = {EventKind.TOOL_STARTED, EventKind.TOOL_COMPLETED, EventKind.TOOL_FAILED}
    return [(e.kind, e.call_id, e.tool_name, e.arguments, e.result, e.error) for e in events if e.kind in kinds]


def test_adk_and_its_a2a_bridge_make_the_same_tools_of_the_same_calls() -> None:
    adk = _decode(
        "adk",
        [
            {
                "invocationId": "inv",
                "author": "agent",
                "id": "e1",
                "timestamp": 1.0,
                "content": {"role": "model", "parts": [{"functionCall": c} for c in CALLS]},
            },
            {
                "invocationId": "inv",
                "author": "agent",
                "id": "e2",
                "timestamp": 2.0,
                "content": {"role": "user", "parts": [{"functionResponse": r} for r in RESPONSES]},
            },
        ],
    )

    def update(n: int, key: str, objs: list[dict[str, Any]]) -> dict[str, Any]:
        parts = [{"kind": "data", "data": o, "metadata": {"adk_type": key}} for o in objs]
        message = {"kind": "message", "messageId": f"m{n}", "role": "agent", "parts": parts}
        status = {"state": "working", "timestamp": f"2027-01-01T00:00:0{n}Z", "message": message}
        result = {"kind": "status-update", "taskId": "t", "contextId": "c", "final": False, "status": status}
        return {"jsonrpc": "2.0", "id": 1, "result": result}

    a2a = _decode("a2a", [update(1, "function_call", CALLS), update(2, "function_response", RESPONSES)])
    assert _tools(adk) == _tools(a2a)
    assert [t[0] for t in _tools(adk)] == [
        EventKind.TOOL_STARTED,
        EventKind.TOOL_STARTED,
        EventKind.TOOL_COMPLETED,
        EventKind.TOOL_FAILED,
    ]
