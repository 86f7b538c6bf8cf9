"""LangGraph's tool calls (``_langgraph_tools.ToolCalls``): which request a tool run answers, and a
tool call that ends once however often the stream repeats its result."""

from __future__ import annotations

from otel_bridge.dialects._langgraph_tools import ToolCalls
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import EventKind

FRAME = Frame(None, b"{}")
ASKED = [
    {"id": "call_a", "name": "weather", "args": {"city": "Oslo"}},
    {"id": "call_b", "name": "weather", "args": {"city": "Lima"}},
]


def test_a_tool_run_takes_the_call_id_of_the_request_with_its_name_and_arguments() -> None:
    tools = ToolCalls()
    tools.note(ASKED, "chat-1")
    [(kind, original, frame, fields)] = tools.tool_started("lc-run-1", "weather", {"city": "Lima"}, FRAME)
    assert (kind, original, frame) == (EventKind.TOOL_STARTED, "on_tool_start", FRAME)
    assert fields == {
        "call_id": "call_b",
        "tool_name": "weather",
        "arguments": '{"city":"Lima"}',
        "parent_call_id": "chat-1",
    }
    end = {"name": "weather", "data": {"output": {"type": "tool", "content": "rain", "status": "error"}}}
    [(kind, _, _, fields)] = tools.tool_ended("lc-run-1", "on_tool_end", end, FRAME)
    assert kind is EventKind.TOOL_FAILED
    assert (fields["call_id"], fields["result"], fields["error"]) == ("call_b", "rain", "rain")


def test_the_calls_a_finished_answer_asked_for_start_with_it_and_end_once() -> None:
    tools = ToolCalls()
    tools.note(ASKED, "chat-1")
    started = tools.requested_started("chat-1")
    assert [(k, o, f, fields["call_id"]) for k, o, f, fields in started] == [
        (EventKind.TOOL_STARTED, "tool_calls", None, "call_a"),
        (EventKind.TOOL_STARTED, "tool_calls", None, "call_b"),
    ]
    assert tools.requested_started("chat-1") == []
    message = {"type": "tool", "tool_call_id": "call_a", "name": "weather", "content": "sun"}
    [(kind, original, _, fields)] = tools.tool_message(message, FRAME)
    assert (kind, original, fields["result"], fields["error"]) == (EventKind.TOOL_COMPLETED, "tool", "sun", None)
    assert tools.tool_message(message, FRAME) == []  # the parent graph's updates repeat it
    tools.note(ASKED, "chat-2")  # a repeat of the answer asks for nothing again
    assert [f["call_id"] for _, _, _, f in tools.requested_started("chat-2")] == []


def test_a_tool_message_that_names_no_call_is_a_message() -> None:
    [(kind, original, _, fields)] = ToolCalls().tool_message({"type": "tool", "content": "hi"}, FRAME)
    assert (kind, original, fields) == (EventKind.MESSAGE, "tool", {"text": "hi"})
