"""ADK's function calls as tool executions, for both wires ADK speaks: its own ``/run_sse`` stream
(:mod:`.adk`: ``functionCall`` / ``functionResponse`` parts) and its A2A bridge (:mod:`.a2a`: ``data``
parts marked ``adk_type: function_call`` / ``function_response``).

Both carry the same Gemini objects, ``{id, name, args}`` and ``{id, name, response}``, so one
:class:`FunctionCalls` per run reads them: a call starts a tool span once (a repeated call, or one
without an id, starts none), its response ends it (completed, or failed when the tool returned only
``{"error": ...}``, the form ADK's tool-error callbacks use), and a call that never gets a response
fails when the run or the tool does. It says what each event is about (call id, tool name,
arguments, result, error); the decoder builds the event with its own fields (the frame, the time,
the model call that asked, event ids).
"""

from __future__ import annotations

from typing import Any

from otel_bridge.dialects._shapes import error_result, text
from otel_bridge.dialects.base import json_text
from otel_bridge.model import EventKind

Started = tuple[str, str | None, str | None]
"""A call that starts a tool span: ``(call id, tool name, arguments as JSON)``."""
Ended = tuple[EventKind, str | None, str | None, str | None, str | None]
"""A response: ``(tool.completed or tool.failed, call id, tool name, result as JSON, error)``."""


class FunctionCalls:
    """The function calls of one run (an ADK invocation, an A2A task) started and not yet ended."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: dict[str, str | None] = {}  # call id -> tool name

    def start(self, call: dict[str, Any]) -> Started | None:
        """A ``functionCall``: the tool span it starts, or ``None`` if it has no id or is open already."""
        call_id = text(call, "id")
        if call_id is None or call_id in self.open:
            return None
        name = self.open[call_id] = text(call, "name")
        return call_id, name, json_text(call.get("args"))

    def end(self, response: dict[str, Any]) -> Ended:
        """A ``functionResponse``: ``tool.completed``, or ``tool.failed`` for a result that is only an error."""
        call_id = text(response, "id")
        name = self.open.pop(call_id, None) if call_id is not None else None
        result = response.get("response")
        error = error_result(result)
        kind = EventKind.TOOL_FAILED if error is not None else EventKind.TOOL_COMPLETED
        return kind, call_id, text(response, "name") or name, json_text(result), error

    def fail_all(self) -> list[tuple[str, str | None]]:
        """Every open call, as ``(call id, tool name)``, forgotten: it will never get a response (it fails)."""
        failed = list(self.open.items())
        self.open.clear()
        return failed
