"""Locus (``locus-sdk``) AgentServer ``/stream``: data-only JSON keyed by ``type``.

The server rewrites four events and passes the rest through as
``{"type": <event_type>, ...model_dump}`` without their timestamps:
``think{content}``, ``tool_start{tool, tool_call_id, arguments}``,
``tool_complete{tool, tool_call_id, result, error}`` (no duration), and the
agent's ``terminate`` as ``done{message, reason}`` (its usage and cost are
dropped). Then ``data: [DONE]``. Failures are ``error{error,
correlation_id}``. No ids, no timestamps: events are stamped on arrival.

Decoded by :class:`otel_bridge.dialects._locus_decoder.LocusDecoder` (same mapping);
``done`` ends the run, and a stream that goes on starts the next one.
"""

from __future__ import annotations

from typing import Any

from otel_bridge.dialects._locus_decoder import LocusDecoder
from otel_bridge.dialects._locus_events import EVENT_TYPES, Fields
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame

NAME = "locus-agentserver"

AGENTSERVER_FIELDS = Fields("type", "tool", "content", "done", "message", timestamps=False)
# Keys a frame of each type always has on this server, and no other dialect's frame of that type does.
_SIGNATURES: dict[str, frozenset[str]] = {
    "model_chunk": frozenset({"done", "stop_reason", "tool_calls"}),
    "tool_start": frozenset({"tool", "tool_call_id", "arguments"}),
    "tool_complete": frozenset({"tool", "tool_call_id", "result", "error"}),
    "done": frozenset({"message", "reason"}),
    "specialist_start": frozenset({"specialist_id", "specialist_type"}),
    "specialist_complete": frozenset({"specialist_id", "specialist_type"}),
    "subagent": frozenset({"tool_call_id", "event"}),
    "terminate": frozenset({"iterations_used", "total_tool_calls"}),
}


class LocusAgentServerDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        if frame.event is not None or not isinstance(obj, dict) or "event_type" in obj:
            return False
        kind = obj.get("type")
        signature = _SIGNATURES.get(kind) if isinstance(kind, str) else None
        if signature is None:
            return False
        return signature <= obj.keys() and (kind != "done" or len(obj) == 3)

    def decoder(self, ctx: StreamContext) -> LocusDecoder:
        return LocusDecoder(ctx, NAME, AGENTSERVER_FIELDS)


assert set(_SIGNATURES) - {"done"} <= EVENT_TYPES
DIALECT = LocusAgentServerDialect()
