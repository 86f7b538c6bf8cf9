"""A LangGraph run's tool calls: which model request a tool run answers, and the tool events they make.

The ``events`` mode starts a tool by name and arguments, and its LangChain run id
is not the tool call id: :class:`ToolCalls` matches the start to the calls the
model asked for (its output, or a tools node's input). The ``messages`` and
``updates`` modes never say a tool started, so the calls a finished answer asked
for start with it. A tool call ends once, however often the stream repeats its
result (the parent graph's ``updates`` repeat a subgraph's): an ``on_tool_end`` or
``on_tool_error``, or a ToolMessage (``status: "error"`` fails it).

The builders return each event as a :data:`ToolEvent` (kind, original type,
frame, fields); the decoder (:mod:`.langgraph`) places it in its run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otel_bridge.dialects._langgraph_wire import TOOL_ERROR, error_of, message_text, tool_output
from otel_bridge.dialects._shapes import obj, text
from otel_bridge.dialects.base import EventFields, json_text
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import EventKind

Request = tuple[str, str | None, str | None, str | None]
"""A tool call the model asked for, not yet started: (call id, name, arguments as JSON, chat call id)."""


ToolEvent = tuple[EventKind, str, Frame | None, EventFields]
"""An event to make: its kind, its original type, its frame (``None``: inferred) and its fields."""


@dataclass
class ToolCalls:
    """The tool calls of one run: asked for, started (by LangChain run id), open and ended."""

    requested: list[Request] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)  # LangChain run id of a tool -> its tool call id
    open: set[str] = field(default_factory=set)  # tool call ids started and not yet ended
    done: set[str] = field(default_factory=set)

    def note(self, calls: object, chat: str | None) -> None:
        """Tool calls the model asked for (its output, or a tools node's input): tool starts match them."""
        if not isinstance(calls, list):
            return
        for tc in calls:
            ident = text(tc, "id")
            if ident is None or ident in self.open or ident in self.done:
                continue
            entry = (ident, text(tc, "name"), json_text(obj(tc, "args") or tc.get("args")), chat)
            for i, known in enumerate(self.requested):
                if known[0] == ident:
                    self.requested[i] = (ident, entry[1] or known[1], entry[2] or known[2], known[3] or chat)
                    break
            else:
                self.requested.append(entry)

    def note_streamed(self, tool_calls: dict[str, str | None], chat: str) -> None:
        """The tool calls a chat call's chunks named (id -> name), where no whole message listed them."""
        for ident, name in tool_calls.items():
            if not any(r[0] == ident for r in self.requested) and ident not in self.open | self.done:
                self.requested.append((ident, name, None, chat))

    def start(self, run_key: str, name: str | None, arguments: str | None) -> tuple[str, str | None]:
        """A tool run started (``events`` mode): ``(its tool call id, the chat call that asked for it)``."""
        match = next((r for r in self.requested if r[1] == name and r[2] == arguments), None)
        match = match or next((r for r in self.requested if r[1] == name), None)
        if match is not None:
            self.requested.remove(match)
        call_id = match[0] if match is not None else run_key
        self.runs[run_key] = call_id
        self.open.add(call_id)
        return call_id, match[3] if match is not None else None

    def run_ended(self, run_key: str) -> str | None:
        """The tool call id of a tool run that ended, if its start was seen."""
        return self.runs.pop(run_key, None)

    def end(self, call_id: str) -> bool:
        """A tool call ended: ``False`` if it had already (a repeated result)."""
        if call_id in self.done:
            return False
        self.open.discard(call_id)
        self.done.add(call_id)
        return True

    def start_requested(self, chat: str) -> list[Request]:
        """The calls a finished answer asked for, started now (the modes that carry no tool start)."""
        started = [r for r in self.requested if r[3] == chat]
        for entry in started:
            self.requested.remove(entry)
            self.open.add(entry[0])
        return started

    # -- the events ---------------------------------------------------------------------
    def tool_started(self, run_key: str, name: str | None, args: object, frame: Frame) -> list[ToolEvent]:
        """``on_tool_start``: the tool call it runs starts, under the chat call that asked for it."""
        arguments = json_text(args)
        call_id, chat = self.start(run_key, name, arguments)
        fields: EventFields = {"call_id": call_id, "tool_name": name, "arguments": arguments, "parent_call_id": chat}
        return [(EventKind.TOOL_STARTED, "on_tool_start", frame, fields)]

    def tool_ended(self, run_key: str, event: str, d: dict[str, Any], frame: Frame) -> list[ToolEvent]:
        """``on_tool_end`` / ``on_tool_error``: its tool call ends (a ToolMessage with an error status fails it)."""
        data = obj(d, "data")
        call_id = self.run_ended(run_key) or text(data, "tool_call_id") or run_key
        if event == "on_tool_error":
            error, error_type = error_of(data.get("error"))
            return self._done(call_id, text(d, "name"), None, frame, event, error, error_type)
        result, failed = tool_output(data.get("output"))
        return self._done(call_id, text(d, "name"), result, frame, event, result if failed else None, None)

    def tool_message(self, message: dict[str, Any], frame: Frame) -> list[ToolEvent]:
        """A ToolMessage (``messages``, ``updates`` modes): the end of its tool call, or a message if it names none."""
        call_id = text(message, "tool_call_id")
        said = message_text(message)
        if call_id is None:
            return [(EventKind.MESSAGE, "tool", frame, {"text": said})]
        failed = text(message, "status") == TOOL_ERROR
        return self._done(call_id, text(message, "name"), said, frame, "tool", said if failed else None, None)

    def requested_started(self, chat: str) -> list[ToolEvent]:
        """The tools a finished answer asked for start now (messages and updates modes carry no tool start)."""
        return [
            (
                EventKind.TOOL_STARTED,
                "tool_calls",
                None,
                {"call_id": ident, "tool_name": name, "arguments": arguments, "parent_call_id": chat},
            )
            for ident, name, arguments, _ in self.start_requested(chat)
        ]

    def _done(
        self,
        call_id: str,
        name: str | None,
        result: str | None,
        frame: Frame,
        original: str,
        error: str | None,
        error_type: str | None,
    ) -> list[ToolEvent]:
        if not self.end(call_id):
            return []
        kind = EventKind.TOOL_FAILED if error is not None else EventKind.TOOL_COMPLETED
        fields: EventFields = {
            "call_id": call_id,
            "tool_name": name,
            "result": result,
            "error": error,
            "error_type": error_type,
        }
        return [(kind, original, frame, fields)]
