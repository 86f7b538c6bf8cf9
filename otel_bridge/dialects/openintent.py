"""OpenIntent: the server's event log JSON and its SSE frames.

Event JSON is ``{id, intent_id, event_type, actor, payload, created_at}`` with
naive-UTC ``created_at``. On SSE, ``state_patched``, ``status_changed`` and
``intent_created`` frames carry the whole Intent object instead (``data.id``
is then the intent id, not an event id). One intent is one run.
"""

from __future__ import annotations

from typing import Any

from otel_bridge.dialects.base import (
    DecodeError,
    StreamContext,
    json_text,
    opt_float,
    opt_int,
    opt_str,
    parse_timestamp,
    raw,
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
        fields: dict[str, Any] = {}
        if event_type == "status_changed" and status in _TERMINAL_STATUS:
            kind, fields = self._terminal(status)
        return AgentEvent(
            kind=kind,
            run_id=str(intent["id"]),
            timestamp_ns=ts,
            timestamp_from_source=from_source,
            dialect=NAME,
            original_type=event_type,
            source=self._ctx.source,
            agent=opt_str(intent, "created_by"),
            name=opt_str(intent, "title"),
            status=status,
            payload=raw(frame),
            **fields,
        )

    def _terminal(self, status: str | None) -> tuple[EventKind, dict[str, Any]]:
        if status is not None and _TERMINAL_STATUS.get(status):
            return EventKind.RUN_FAILED, {"error_type": status, "error": f"intent {status}"}
        return EventKind.RUN_FINISHED, {}

    def _event(self, frame: Frame, ev: dict[str, Any]) -> AgentEvent:
        event_type = str(ev["event_type"])
        payload = ev.get("payload")
        p: dict[str, Any] = payload if isinstance(payload, dict) else {}
        ts, from_source = self._timestamp(ev.get("created_at"))
        kind = _KINDS.get(event_type, EventKind.CUSTOM)
        fields: dict[str, Any] = {}
        if kind is EventKind.STATUS_CHANGED:
            status = opt_str(p, "status")
            fields["status"] = status
            if status in _TERMINAL_STATUS:
                kind, extra = self._terminal(status)
                fields.update(extra)
        elif kind in (EventKind.LLM_STARTED, EventKind.LLM_COMPLETED, EventKind.LLM_FAILED):
            fields.update(self._llm(p))
        elif kind in (EventKind.TOOL_STARTED, EventKind.TOOL_COMPLETED, EventKind.TOOL_FAILED):
            fields.update(self._tool(p))
        elif kind in (EventKind.STREAM_STARTED, EventKind.STREAM_ENDED, EventKind.LLM_CHUNK):
            fields["call_id"] = opt_str(p, "stream_id")
            fields["provider"] = opt_str(p, "provider")
            fields["model"] = opt_str(p, "model")
            fields["status"] = opt_str(p, "status")
        elif kind is EventKind.RUN_STARTED:
            fields["name"] = opt_str(p, "title")
        elif kind is EventKind.MESSAGE:
            fields["text"] = json_text(p.get("note") if "note" in p else p or None)
        elif kind is EventKind.CUSTOM:
            fields["name"] = event_type
        return AgentEvent(
            kind=kind,
            run_id=str(ev["intent_id"]),
            timestamp_ns=ts,
            timestamp_from_source=from_source,
            dialect=NAME,
            original_type=event_type,
            source=self._ctx.source,
            event_id=opt_str(ev, "id"),
            agent=opt_str(ev, "actor"),
            payload=raw(frame),
            **fields,
        )

    def _llm(self, p: dict[str, Any]) -> dict[str, Any]:
        usage = TokenUsage(input=opt_int(p, "prompt_tokens"), output=opt_int(p, "completion_tokens"))
        finish = opt_str(p, "finish_reason")
        return {
            "call_id": opt_str(p, "request_id"),
            "provider": opt_str(p, "provider"),
            "model": opt_str(p, "model"),
            "stream": p.get("stream") if isinstance(p.get("stream"), bool) else None,
            "temperature": opt_float(p, "temperature"),
            "max_tokens": opt_int(p, "max_tokens"),
            "finish_reasons": (finish,) if finish else None,
            "usage": None if usage.is_empty() else usage,
            "duration_ms": opt_float(p, "duration_ms"),
            "error": opt_str(p, "error"),
            "text": opt_str(p, "response_content"),
        }

    def _tool(self, p: dict[str, Any]) -> dict[str, Any]:
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


DIALECT = OpenIntentDialect()
