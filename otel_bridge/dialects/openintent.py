"""OpenIntent: the server's event log JSON and its SSE frames.

Event JSON is ``{id, intent_id, event_type, actor, payload, created_at}`` with
naive-UTC ``created_at``. On SSE, ``state_patched``, ``status_changed`` and
``intent_created`` frames carry the whole Intent object instead (``data.id``
is then the intent id, not an event id). One intent is one run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    StreamContext,
    json_text,
    make_event,
    opt_float,
    opt_int,
    opt_str,
    parse_timestamp,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

NAME = "openintent"

_KINDS: dict[str, EventKind] = {
    "intent_created": EventKind.RUN_STARTED,
    "state_patched": EventKind.STATE_CHANGED,
    "status_changed": EventKind.STATUS_CHANGED,
    "llm_request_started": EventKind.LLM_STARTED,
    "llm_request_completed": EventKind.LLM_COMPLETED,
    "llm_request_failed": EventKind.LLM_FAILED,
    "tool_call_started": EventKind.TOOL_STARTED,
    "tool_call_completed": EventKind.TOOL_COMPLETED,
    "tool_call_failed": EventKind.TOOL_FAILED,
    "stream_started": EventKind.STREAM_STARTED,
    "stream_chunk": EventKind.LLM_CHUNK,
    "stream_completed": EventKind.STREAM_ENDED,
    "stream_cancelled": EventKind.STREAM_ENDED,
    "comment": EventKind.MESSAGE,
}
# Intent statuses that end the intent, and whether that is a failure.
_TERMINAL_STATUS = {"completed": False, "failed": True, "abandoned": True, "cancelled": True}
_INTENT_OBJECT_FRAMES = frozenset({"state_patched", "status_changed", "intent_created"})


class OpenIntentDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        if not isinstance(obj, dict):
            return False
        if "event_type" in obj and "intent_id" in obj:
            return True
        # An Intent object on an SSE frame.
        return frame.event in _INTENT_OBJECT_FRAMES and "version" in obj and "status" in obj and "id" in obj

    def decoder(self, ctx: StreamContext) -> OpenIntentDecoder:
        return OpenIntentDecoder(ctx)


class OpenIntentDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx

    def close(self) -> list[AgentEvent]:
        return []

    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        data = require_object(obj, "openintent event")
        if "event_type" in data and "intent_id" in data:
            return [self._event(frame, data)]
        if frame.event in _INTENT_OBJECT_FRAMES and "id" in data:
            return [self._intent_frame(frame, data)]
        raise DecodeError("openintent: neither an event (event_type, intent_id) nor an Intent frame")

    def _timestamp(self, value: object) -> tuple[int, bool]:
        ts = parse_timestamp(value)
        if ts is None:
            return self._ctx.arrival_ns(), False
        return ts, True

    def _intent_frame(self, frame: Frame, intent: dict[str, Any]) -> AgentEvent:
        """An SSE frame carrying the Intent object: the log has the real event."""
        event_type = frame.event or "intent"
        ts, from_source = self._timestamp(intent.get("updated_at") or intent.get("created_at"))
        status = opt_str(intent, "status")
        kind = _KINDS.get(event_type, EventKind.CUSTOM)
        fields: EventFields = {
            "agent": opt_str(intent, "created_by"),
            "name": opt_str(intent, "title"),
            "status": status,
        }
        if event_type == "status_changed" and status in _TERMINAL_STATUS:
            kind, terminal = _terminal(status)
            fields.update(terminal)
        return make_event(self._ctx, NAME, str(intent["id"]), kind, event_type, ts, frame, from_source, **fields)

    def _event(self, frame: Frame, ev: dict[str, Any]) -> AgentEvent:
        event_type = str(ev["event_type"])
        payload = ev.get("payload")
        p: dict[str, Any] = payload if isinstance(payload, dict) else {}
        ts, from_source = self._timestamp(ev.get("created_at"))
        kind = _KINDS.get(event_type, EventKind.CUSTOM)
        read = _FIELDS.get(kind)
        fields: EventFields = read(p, event_type) if read is not None else {}
        if kind is EventKind.STATUS_CHANGED and fields.get("status") in _TERMINAL_STATUS:
            kind, terminal = _terminal(fields.get("status"))
            fields.update(terminal)
        fields["event_id"] = opt_str(ev, "id")
        fields["agent"] = opt_str(ev, "actor")
        return make_event(self._ctx, NAME, str(ev["intent_id"]), kind, event_type, ts, frame, from_source, **fields)


def _terminal(status: str | None) -> tuple[EventKind, EventFields]:
    if status is not None and _TERMINAL_STATUS.get(status):
        return EventKind.RUN_FAILED, {"error_type": status, "error": f"intent {status}"}
    return EventKind.RUN_FINISHED, {}


# What each kind of log event carries, read from its payload ``p`` (``event_type`` names it).
def _status(p: dict[str, Any], event_type: str) -> EventFields:
    return {"status": opt_str(p, "status")}


def _llm(p: dict[str, Any], event_type: str) -> EventFields:
    usage = TokenUsage(input=opt_int(p, "prompt_tokens"), output=opt_int(p, "completion_tokens"))
    finish = opt_str(p, "finish_reason")
    stream = p.get("stream")
    return {
        "call_id": opt_str(p, "request_id"),
        "provider": opt_str(p, "provider"),
        "model": opt_str(p, "model"),
        "stream": stream if isinstance(stream, bool) else None,
        "temperature": opt_float(p, "temperature"),
        "max_tokens": opt_int(p, "max_tokens"),
        "finish_reasons": (finish,) if finish else None,
        "usage": None if usage.is_empty() else usage,
        "duration_ms": opt_float(p, "duration_ms"),
        "error": opt_str(p, "error"),
        "text": opt_str(p, "response_content"),
    }


def _tool(p: dict[str, Any], event_type: str) -> EventFields:
    return {
        "tool_name": opt_str(p, "tool_name"),
        "call_id": opt_str(p, "tool_id"),
        "parent_call_id": opt_str(p, "parent_request_id"),
        "provider": opt_str(p, "provider"),
        "model": opt_str(p, "model"),
        "duration_ms": opt_float(p, "duration_ms"),
        "error": opt_str(p, "error"),
        "arguments": json_text(p.get("arguments")),
        "result": json_text(p.get("result")),
    }


def _stream(p: dict[str, Any], event_type: str) -> EventFields:
    return {
        "call_id": opt_str(p, "stream_id"),
        "provider": opt_str(p, "provider"),
        "model": opt_str(p, "model"),
        "status": opt_str(p, "status"),
    }


def _run_started(p: dict[str, Any], event_type: str) -> EventFields:
    return {"name": opt_str(p, "title")}


def _message(p: dict[str, Any], event_type: str) -> EventFields:
    return {"text": json_text(p.get("note") if "note" in p else p or None)}


def _custom(p: dict[str, Any], event_type: str) -> EventFields:
    return {"name": event_type}


_FIELDS: dict[EventKind, Callable[[dict[str, Any], str], EventFields]] = {
    EventKind.STATUS_CHANGED: _status,
    EventKind.LLM_STARTED: _llm,
    EventKind.LLM_COMPLETED: _llm,
    EventKind.LLM_FAILED: _llm,
    EventKind.TOOL_STARTED: _tool,
    EventKind.TOOL_COMPLETED: _tool,
    EventKind.TOOL_FAILED: _tool,
    EventKind.STREAM_STARTED: _stream,
    EventKind.STREAM_ENDED: _stream,
    EventKind.LLM_CHUNK: _stream,
    EventKind.RUN_STARTED: _run_started,
    EventKind.MESSAGE: _message,
    EventKind.CUSTOM: _custom,
}

DIALECT = OpenIntentDialect()
