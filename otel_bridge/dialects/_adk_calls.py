"""ADK's function calls as tool executions, for both wires ADK speaks: its own ``/run_sse`` stream
(:mod:`.adk`: ``functionCall`` / ``functionResponse`` parts) and its A2A bridge (:mod:`.a2a`: ``data``
parts marked ``adk_type: function_call`` / ``function_response``).

Both carry the same Gemini objects, ``{id, name, args}`` and ``{id, name, response}``, so one
:class:`FunctionCalls` per run reads them: a call starts a tool span once (a repeated call, or one
without an id, starts none), its response ends it (completed, or failed when the tool returned only
``{"error": ...}``, the form ADK's tool-error callbacks use), and a call that never gets a response
fails when the run or the tool does. It returns each event's kind and fields; the decoder adds its
own (the frame, the time, the model call that asked, event ids) and builds the event.
"""

from __future__ import annotations

from typing import Any

from otel_bridge.dialects._shapes import error_result, text
from otel_bridge.dialects.base import EventFields, json_text
from otel_bridge.model import EventKind


class FunctionCalls:
    """The function calls of one run (an ADK invocation, an A2A task) started and not yet ended."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: dict[str, str | None] = {}  # call id -> tool name

    def start(self, call: dict[str, Any]) -> EventFields | None:
        """A ``functionCall``: the fields of its ``tool.started``, or ``None`` if it has no id or is open already."""
        call_id = text(call, "id")
        if call_id is None or call_id in self.open:
            return None
        name = self.open[call_id] = text(call, "name")
        return {"call_id": call_id, "tool_name": name, "arguments": json_text(call.get("args"))}

    def end(self, response: dict[str, Any]) -> tuple[EventKind, EventFields]:
        """A ``functionResponse``: ``tool.completed``, or ``tool.failed`` for a result that is only an error."""
        call_id = text(response, "id")
        name = self.open.pop(call_id, None) if call_id is not None else None
        result = response.get("response")
        error = error_result(result)
        fields: EventFields = {
            "call_id": call_id,
            "tool_name": text(response, "name") or name,
            "result": json_text(result),
            "error": error,
        }
        return (EventKind.TOOL_FAILED if error is not None else EventKind.TOOL_COMPLETED), fields

    def fail_all(self, error: str, error_type: str | None) -> list[EventFields]:
        """Every open call fails (it will never get a response): the fields of each one's ``tool.failed``."""
        failed: list[EventFields] = [
            {"call_id": call_id, "tool_name": name, "error": error, "error_type": error_type}
            for call_id, name in self.open.items()
        ]
        self.open.clear()
        return failed
