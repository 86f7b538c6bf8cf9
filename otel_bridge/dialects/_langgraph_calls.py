"""A LangGraph run's model calls: what a chat call's chunks and final message say.

A :class:`Call` gathers a chat call's text, usage, response model, finish reason
and the tool calls it asked for (:mod:`._langgraph_tools` starts those); usage is
counted once: the last report wins, never a sum of repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otel_bridge.dialects._langgraph_wire import usage_from
from otel_bridge.dialects._shapes import count, obj, objects, text
from otel_bridge.dialects.base import EventFields
from otel_bridge.model import TokenUsage


@dataclass
class Call:
    """An open chat call: what its chunks said so far."""

    model: str | None
    provider: str | None
    text: list[str] = field(default_factory=list)
    usage: TokenUsage | None = None
    response_model: str | None = None
    finish: str | None = None
    tool_calls: dict[str, str | None] = field(default_factory=dict)  # id -> name, from chunks

    def fold(self, message: dict[str, Any]) -> None:
        """What a chunk or a whole message says about this call; usage counted once (the last seen wins)."""
        self.usage = usage_from(message.get("usage_metadata")) or self.usage
        response = obj(message, "response_metadata")
        self.response_model = text(response, "model_name") or text(response, "model") or self.response_model
        self.finish = text(response, "finish_reason") or text(response, "stop_reason") or self.finish
        for tc in objects(message, "tool_calls"):
            ident = text(tc, "id")
            if ident is not None:
                self.tool_calls[ident] = text(tc, "name") or self.tool_calls.get(ident)

    def start_fields(self, key: str, metadata: dict[str, Any]) -> EventFields:
        """The request, as LangChain's ``ls_*`` metadata states it."""
        temperature = metadata.get("ls_temperature")
        return {
            "call_id": key,
            "model": self.model,
            "provider": self.provider,
            "max_tokens": count(metadata, "ls_max_tokens"),
            "temperature": float(temperature)
            if isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
            else None,
        }

    def end_fields(self, key: str) -> EventFields:
        """The response, as far as the call's chunks and message said."""
        return {
            "call_id": key,
            "model": self.model,
            "provider": self.provider,
            "response_model": self.response_model,
            "usage": self.usage,
            "finish_reasons": (self.finish,) if self.finish else None,
        }
