"""Anthropic Messages streaming.

``event: <type>`` + ``data:`` with the same ``type``: ``message_start{message{id,
model, usage}}`` → ``content_block_start{index, content_block: text | thinking |
tool_use{id, name}}`` → ``content_block_delta{text_delta | thinking_delta |
signature_delta | input_json_delta{partial_json}}`` → ``content_block_stop`` →
``message_delta{delta{stop_reason}, usage}`` → ``message_stop``; ``ping``
heartbeats; ``error{error{type, message}}``.

Usage: ``input_tokens`` excludes the cache reads and writes, so the input the
conventions count is the sum of the three. ``message_delta`` usage is
cumulative: each value replaces the one before. ``ping`` and
``signature_delta`` frames say nothing about the call and are absorbed.
See :mod:`._llm_stream` for how a response becomes a run and a chat span.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otel_bridge.dialects._llm_stream import LlmStream, error_fields
from otel_bridge.dialects.base import DecodeError, StreamContext, opt_int, opt_str, require_object
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

NAME = "anthropic"
PROVIDER = "anthropic"

_MESSAGE_EVENTS = frozenset(
    {
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
    }
)
_CONTENT_DELTAS = frozenset({"text_delta", "thinking_delta", "input_json_delta", "citations_delta"})
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class AnthropicDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        if not isinstance(obj, dict):
            return False
        kind = obj.get("type")
        if kind == "message_start":
            message = obj.get("message")
            return isinstance(message, dict) and message.get("type") == "message"
        if kind in ("content_block_start", "content_block_delta", "content_block_stop"):
            return "index" in obj
        if kind == "error" and frame.event == "error":
            error = obj.get("error")
            return isinstance(error, dict) and str(error.get("type", "")).endswith("_error")
        return False

    def decoder(self, ctx: StreamContext) -> AnthropicDecoder:
        return AnthropicDecoder(ctx)


@dataclass
class _ToolUse:
    id: str | None
    name: str | None
    json: list[str] = field(default_factory=list)


class AnthropicDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._llm = LlmStream(ctx, NAME, PROVIDER)
        self._reset()

    def _reset(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._usage: dict[str, int] = {}
        self._stop_reason: str | None = None
        self._tools: dict[int, _ToolUse] = {}

    def close(self) -> list[AgentEvent]:
        # A stream cut before message_stop leaves the span open: the mapper closes it as incomplete.
        return []

    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        data = require_object(obj, "anthropic event")
        kind = opt_str(data, "type") or frame.event
        if kind is None:
            raise DecodeError("anthropic: an event needs a 'type'")
        ts = self._llm.now()
        if kind == "ping":
            return []
        if kind == "error":
            message, error_type = error_fields(data.get("error"))
            failed = self._llm.fail(
                kind,
                ts,
                frame,
                error=message,
                error_type=error_type,
                usage=self._token_usage(),
                response_id=self._id,
                response_model=self._model,
            )
            self._reset()
            return failed
        if kind == "message_start":
            return self._start(ts, frame, data)
        if kind not in _MESSAGE_EVENTS:
            # Unknown (newer) event types are kept as span events.
            return [self._llm.event(EventKind.CUSTOM, kind, ts, frame, name=kind)]
        out: list[AgentEvent] = []
        if not self._llm.open:
            # Frames of a message whose start was not seen (a stream joined late): its span starts here.
            out.extend(self._llm.start(kind, ts, frame, call_id="message"))
        out.extend(self._in_message(kind, ts, frame, data))
        return out

    def _start(self, ts: int, frame: Frame, data: dict[str, Any]) -> list[AgentEvent]:
        message = data.get("message")
        m: dict[str, Any] = message if isinstance(message, dict) else {}
        out: list[AgentEvent] = []
        if self._llm.open:
            out.extend(self._complete(ts, None, inferred=True))
        self._reset()
        self._id = opt_str(m, "id")
        self._model = opt_str(m, "model")
        self._fold_usage(m.get("usage"))
        out.extend(self._llm.start("message_start", ts, frame, call_id=self._id or "message"))
        return out

    def _in_message(self, kind: str, ts: int, frame: Frame, data: dict[str, Any]) -> list[AgentEvent]:
        return _IN_MESSAGE[kind](self, kind, ts, frame, data)

    def _block_start(self, kind: str, ts: int, frame: Frame, data: dict[str, Any]) -> list[AgentEvent]:
        index = opt_int(data, "index")
        block = data.get("content_block")
        if isinstance(block, dict) and block.get("type") in ("tool_use", "server_tool_use") and index is not None:
            self._tools[index] = _ToolUse(opt_str(block, "id"), opt_str(block, "name"))
        return []

    def _block_delta(self, kind: str, ts: int, frame: Frame, data: dict[str, Any]) -> list[AgentEvent]:
        index = opt_int(data, "index")
        delta = data.get("delta")
        d: dict[str, Any] = delta if isinstance(delta, dict) else {}
        delta_type = opt_str(d, "type")  # a str, or None: `"type": {}` must not reach the set lookup
        if delta_type == "input_json_delta" and index in self._tools:
            partial = d.get("partial_json")
            if isinstance(partial, str):
                self._tools[index].json.append(partial)
            if not partial:
                return []  # an empty opening fragment is not content yet
        if delta_type in _CONTENT_DELTAS:
            text = d.get("text") if delta_type == "text_delta" else None
            return [self._llm.chunk(kind, ts, frame, text=text if isinstance(text, str) else None)]
        return []

    def _block_stop(self, kind: str, ts: int, frame: Frame, data: dict[str, Any]) -> list[AgentEvent]:
        index = opt_int(data, "index")
        tool = self._tools.pop(index, None) if index is not None else None
        if tool is None:
            return []
        return [self._llm.tool_requested(kind, ts, tool.id, tool.name, "".join(tool.json) or None)]

    def _message_delta(self, kind: str, ts: int, frame: Frame, data: dict[str, Any]) -> list[AgentEvent]:
        delta = data.get("delta")
        if isinstance(delta, dict):
            self._stop_reason = opt_str(delta, "stop_reason") or self._stop_reason
        self._fold_usage(data.get("usage"))
        return []

    def _message_stop(self, kind: str, ts: int, frame: Frame, data: dict[str, Any]) -> list[AgentEvent]:
        return self._complete(ts, frame)

    def _fold_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            for key in _USAGE_KEYS:
                value = opt_int(usage, key)
                if value is not None:
                    self._usage[key] = value

    def _token_usage(self) -> TokenUsage | None:
        u = self._usage
        if not u:
            return None
        parts = [u.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
        present = [p for p in parts if p is not None]
        return TokenUsage(
            input=sum(present) if present else None,
            output=u.get("output_tokens"),
            cache_read=u.get("cache_read_input_tokens"),
            cache_creation=u.get("cache_creation_input_tokens"),
        )

    def _complete(self, ts: int, frame: Frame | None, *, inferred: bool = False) -> list[AgentEvent]:
        out = [
            self._llm.tool_requested("content_block_stop", ts, tool.id, tool.name, "".join(tool.json) or None)
            for _, tool in sorted(self._tools.items())
        ]
        out.extend(
            self._llm.complete(
                "message_stop",
                ts,
                frame,
                usage=self._token_usage(),
                finish_reasons=(self._stop_reason,) if self._stop_reason else None,
                response_id=self._id,
                response_model=self._model,
                inferred=inferred,
            )
        )
        self._reset()
        return out


_Handler = Callable[[AnthropicDecoder, str, int, Frame, dict[str, Any]], list[AgentEvent]]

# The events inside a message, after message_start; every key is in _MESSAGE_EVENTS.
_IN_MESSAGE: dict[str, _Handler] = {
    "content_block_start": AnthropicDecoder._block_start,
    "content_block_delta": AnthropicDecoder._block_delta,
    "content_block_stop": AnthropicDecoder._block_stop,
    "message_delta": AnthropicDecoder._message_delta,
    "message_stop": AnthropicDecoder._message_stop,
}
assert _IN_MESSAGE.keys() == _MESSAGE_EVENTS - {"message_start"}

DIALECT = AnthropicDialect()
