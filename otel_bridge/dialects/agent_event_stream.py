"""agent-event-stream (PyPI ``agent-event-stream``, module ``agent_stream``).

``event: <type>`` + ``data: <json>``; no ids, no run start, no token counts;
``done`` is always last and carries the model and cost. One stream is one run
until ``done``; a stream that goes on after ``done`` starts the next run.

``token`` events are the model's text arriving: a burst of tokens between two
other events is one model call, recorded as an inferred ``chat`` span (it has
``otel_bridge.inferred=true``) with its chunk count; it has no time to first
chunk, because the request time is not on the wire.
Outside SSE, an event is ``{"type": <type>, ...fields}`` or
``{"event": <type>, "data": {...}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    StreamContext,
    json_text,
    make_event,
    opt_float,
    opt_str,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind

NAME = "agent-event-stream"

EVENT_NAMES = frozenset(
    {"token", "thinking", "tool_use", "tool_result", "turn", "progress", "creation", "error", "done"}
)
# Keys that only this dialect uses, for frames without an SSE event name.
_SIGNATURE_KEYS = ("tool_use_id", "turn_number", "input_summary", "output_summary", "num_turns", "creation_type")


def _name_and_data(frame: Frame, obj: Any) -> tuple[str | None, Any]:
    if frame.event is not None:
        return frame.event, obj
    if isinstance(obj, dict):
        if isinstance(obj.get("event"), str) and isinstance(obj.get("data"), dict):
            return obj["event"], obj["data"]
        if isinstance(obj.get("type"), str):
            return obj["type"], obj
    return None, obj


class AgentEventStreamDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        name, data = _name_and_data(frame, obj)
        if name not in EVENT_NAMES or not isinstance(data, dict):
            return False
        if name == "error":
            return "error_type" in data
        if name == "token" or name == "thinking":
            return set(data) <= {"text", "type"} and "text" in data
        if name == "done":
            return "num_turns" in data or "message_id" in data
        return any(key in data for key in _SIGNATURE_KEYS) or (name == "progress" and "percentage" in data)

    def decoder(self, ctx: StreamContext) -> AgentEventStreamDecoder:
        return AgentEventStreamDecoder(ctx)


class AgentEventStreamDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._run_index = 0
        self._generation = 0
        self._in_generation = False

    @property
    def _run_id(self) -> str:
        return self._ctx.numbered_run(self._run_index)

    def close(self) -> list[AgentEvent]:
        return self._end_generation(self._ctx.arrival_ns())

    def _event(
        self, kind: EventKind, original_type: str, ts: int, frame: Frame | None, **fields: Unpack[EventFields]
    ) -> AgentEvent:
        return make_event(self._ctx, NAME, self._run_id, kind, original_type, ts, frame, **fields)

    def _end_generation(self, ts: int) -> list[AgentEvent]:
        if not self._in_generation:
            return []
        self._in_generation = False
        return [self._event(EventKind.LLM_COMPLETED, "token", ts, None, call_id=self._call_id(), inferred=True)]

    def _call_id(self) -> str:
        return f"generation-{self._generation}"

    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        name, data = _name_and_data(frame, obj)
        if name is None:
            raise DecodeError("agent-event-stream: no event name (SSE event:, or a 'type' field)")
        d = require_object(data, f"agent-event-stream {name}")
        ts = self._ctx.arrival_ns()
        if name == "token":
            out: list[AgentEvent] = []
            if not self._in_generation:
                self._in_generation = True
                self._generation += 1
                out.append(
                    self._event(
                        EventKind.LLM_STARTED, name, ts, None, call_id=self._call_id(), stream=True, inferred=True
                    )
                )
            out.append(
                self._event(EventKind.LLM_CHUNK, name, ts, frame, call_id=self._call_id(), text=opt_str(d, "text"))
            )
            return out
        out = self._end_generation(ts)
        out.append(self._translate(name, d, ts, frame))
        if name == "done":
            self._run_index += 1
            self._generation = 0
        return out

    def _translate(self, name: str, d: dict[str, Any], ts: int, frame: Frame) -> AgentEvent:
        read = _READERS.get(name)
        kind, fields = read(d) if read is not None else (EventKind.CUSTOM, EventFields(name=name))
        return self._event(kind, name, ts, frame, **fields)


# What each event type says; any other type is a span event named by its type.
def _thinking(d: dict[str, Any]) -> tuple[EventKind, EventFields]:
    return EventKind.THINKING, {"text": opt_str(d, "text")}


def _tool_use(d: dict[str, Any]) -> tuple[EventKind, EventFields]:
    return EventKind.TOOL_STARTED, {
        "tool_name": opt_str(d, "tool_name"),
        "call_id": opt_str(d, "tool_use_id"),
        "arguments": json_text(d.get("input_summary")),
        "status": opt_str(d, "status"),
    }


def _tool_result(d: dict[str, Any]) -> tuple[EventKind, EventFields]:
    failed = d.get("status") == "error"
    return EventKind.TOOL_FAILED if failed else EventKind.TOOL_COMPLETED, {
        "tool_name": opt_str(d, "tool_name"),
        "call_id": opt_str(d, "tool_use_id"),
        "result": json_text(d.get("output_summary")),
        "error": opt_str(d, "output_summary") if failed else None,
        "error_type": "tool_error" if failed else None,
        "duration_ms": opt_float(d, "duration_ms"),
        "status": opt_str(d, "status"),
    }


def _progress(d: dict[str, Any]) -> tuple[EventKind, EventFields]:
    return EventKind.PROGRESS, {"name": opt_str(d, "step")}


def _error(d: dict[str, Any]) -> tuple[EventKind, EventFields]:
    return EventKind.ERROR, {"error": opt_str(d, "message"), "error_type": opt_str(d, "error_type")}


def _done(d: dict[str, Any]) -> tuple[EventKind, EventFields]:
    return EventKind.RUN_FINISHED, {
        "model": opt_str(d, "model") or None,
        "cost_usd": opt_float(d, "total_cost_usd"),
        "duration_ms": opt_float(d, "duration_ms"),
        "response_id": opt_str(d, "message_id") or None,
    }


_READERS: dict[str, Callable[[dict[str, Any]], tuple[EventKind, EventFields]]] = {
    "thinking": _thinking,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "progress": _progress,
    "error": _error,
    "done": _done,
}


DIALECT = AgentEventStreamDialect()
