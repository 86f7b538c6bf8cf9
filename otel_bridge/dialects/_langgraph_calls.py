"""A LangGraph run's model calls and the tool calls they ask for.

A :class:`Call` gathers what a chat call's chunks and final message say (text,
usage, response model, finish reason, the tool calls it asked for); usage is
counted once: the last report wins, never a sum of repeats. :class:`ToolCalls`
matches tool runs to the model's requests: the ``events`` mode starts a tool by
name and arguments (its LangChain run id is not the tool call id), the
``messages`` and ``updates`` modes never say a tool started, so the calls a
finished answer asked for start with it. A tool call ends once, however often the
stream repeats its result (the parent graph's ``updates`` repeat a subgraph's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otel_bridge.dialects._langgraph_wire import usage_from
from otel_bridge.dialects._shapes import count, obj, objects, text
from otel_bridge.dialects.base import EventFields, json_text
from otel_bridge.model import TokenUsage

Request = tuple[str, str | None, str | None, str | None]
"""A tool call the model asked for, not yet started: (call id, name, arguments as JSON, chat call id)."""


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


@dataclass
class ToolCalls:
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

    def note_streamed(self, call: Call, chat: str) -> None:
        """The tool calls a call's chunks named, where no whole message listed them."""
        for ident, name in call.tool_calls.items():
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
