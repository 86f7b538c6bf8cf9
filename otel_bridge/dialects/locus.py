"""Locus (``locus-sdk``) events as its ``SSEHandler``/``AsyncSSEHandler`` streams them.

Frames are ``event: <event_type>``, ``id: <prefix><n>`` and ``data:`` holding
the event's ``model_dump()``: ``event_type``, ``timestamp`` (ISO; a nested
subagent's may use a space for the ``T``), ``agent_name`` and the event's
fields. The handler closes the stream with ``done{status, total_events}`` or
``error{error, correlation_id}``, which carry no ``event_type``.


One stream is one run; a stream that goes on after the handler's
``done``/``error`` starts the next run. The mapping to spans is the shared
Locus decoder's (:mod:`._locus_decoder`), which also decodes the AgentServer's
data-only form (:mod:`.locus_agentserver`) with its own field names.
"""

from __future__ import annotations

from typing import Any

from otel_bridge.dialects._locus_decoder import LocusDecoder
from otel_bridge.dialects._locus_events import EVENT_TYPES, HANDLER_DONE, HANDLER_ERROR, Fields
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame

NAME = "locus"

SSE_FIELDS = Fields("event_type", "tool_name", "reasoning", "terminate", "final_message", timestamps=True)


class LocusDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        if not isinstance(obj, dict):
            return False
        if obj.get("event_type") in EVENT_TYPES:
            # OpenIntent events also carry event_type, always with an intent_id.
            return "intent_id" not in obj and ("timestamp" in obj or "agent_name" in obj)
        if frame.event == HANDLER_DONE:
            return set(obj) == {"status", "total_events"}
        if frame.event == HANDLER_ERROR:
            return "correlation_id" in obj and "error" in obj
        return False

    def decoder(self, ctx: StreamContext) -> LocusDecoder:
        return LocusDecoder(ctx, NAME, SSE_FIELDS)


DIALECT = LocusDialect()
