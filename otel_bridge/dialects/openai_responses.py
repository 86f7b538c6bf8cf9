"""OpenAI Responses API streaming (``response.*`` events).

``event: <type>`` + ``data:`` with ``type`` and ``sequence_number``:
``response.created`` (id, model, echoed request parameters) →
``response.output_item.added/done`` (message | function_call{call_id, name,
arguments} | reasoning) → ``response.output_text.delta`` /
``response.function_call_arguments.delta`` / ``response.reasoning_*.delta`` →
``response.completed | incomplete | failed`` with ``response.usage``; ``error``.

Every usage field is optional. Finish reasons are given the chat completions
vocabulary so that backends compare them across APIs: ``tool_calls`` when the
model asked for a function, else ``stop``; an incomplete response gives its
``incomplete_details.reason`` (``max_output_tokens`` is reported as
``length``). Frames that only repeat what another frame says (``*.done``,
``content_part.*``, ``in_progress``) are absorbed; any other unknown type is
kept as a span event. See :mod:`._llm_stream`.
"""

from __future__ import annotations

from typing import Any

from otel_bridge.dialects._llm_stream import LlmStream, error_fields
from otel_bridge.dialects.base import (
    DecodeError,
    StreamContext,
    json_text,
    opt_float,
    opt_int,
    opt_str,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

NAME = "openai-responses"
PROVIDER = "openai"

_STARTS = frozenset({"response.created", "response.queued", "response.in_progress"})
_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_CONTENT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.custom_tool_call_input.delta",
        "response.audio.delta",
        "response.audio.transcript.delta",
    }
)
_ABSORBED = frozenset(
    {
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.done",
        "response.refusal.done",
        "response.function_call_arguments.done",
        "response.reasoning_text.done",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.output_item.added",
        "response.output_item.done",
    }
)
_FUNCTION_ITEMS = frozenset({"function_call", "custom_tool_call"})
_INCOMPLETE_REASONS = {"max_output_tokens": "length"}


class OpenAIResponsesDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        if not isinstance(obj, dict):
            return False
        kind = obj.get("type")
        if isinstance(kind, str) and kind.startswith("response.") and "sequence_number" in obj:
            return True
        # The bare error event: {type: error, code, message, param, sequence_number}.
        return kind == "error" and "sequence_number" in obj and "message" in obj

    def decoder(self, ctx: StreamContext) -> OpenAIResponsesDecoder:
        return OpenAIResponsesDecoder(ctx)


def usage_from(u: object) -> TokenUsage | None:
    """Responses usage: input includes cached tokens, output includes reasoning tokens."""
    if not isinstance(u, dict):
        return None
    inp = u.get("input_tokens_details")
    out = u.get("output_tokens_details")
    return TokenUsage(
        input=opt_int(u, "input_tokens"),
        output=opt_int(u, "output_tokens"),
        cache_read=opt_int(inp, "cached_tokens") if isinstance(inp, dict) else None,
        cache_creation=opt_int(inp, "cache_write_tokens") if isinstance(inp, dict) else None,
        reasoning=opt_int(out, "reasoning_tokens") if isinstance(out, dict) else None,
    )


class OpenAIResponsesDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._llm = LlmStream(ctx, NAME, PROVIDER)
        self._response_id: str | None = None
        self._model: str | None = None
        self._function_calls = 0

    def close(self) -> list[AgentEvent]:
        # A stream cut before its terminal event leaves the span open: the mapper closes it as incomplete.
        return []

    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        data = require_object(obj, "openai-responses event")
        kind = opt_str(data, "type") or frame.event
        if kind is None:
            raise DecodeError("openai-responses: an event needs a 'type'")
        ts = self._llm.now()
        event_id = self._event_id(data)
        if kind == "error":
            return self._fail(kind, ts, frame, opt_str(data, "message"), opt_str(data, "code"), None)
        response = data.get("response")
        r: dict[str, Any] = response if isinstance(response, dict) else {}
        if kind in _STARTS:
            return self._start(kind, ts, frame, r)
        out: list[AgentEvent] = []
        if not self._llm.open:
            # A stream joined after its response.created: the span starts at the first frame seen.
            out.extend(self._start(kind, ts, frame, r))
        if kind in _ENDS:
            out.extend(self._end(kind, ts, frame, r))
        elif kind in _CONTENT_DELTAS:
            text = data.get("delta") if kind == "response.output_text.delta" else None
            out.append(self._llm.chunk(kind, ts, frame, text=text if isinstance(text, str) else None))
        elif kind == "response.output_item.done":
            out.extend(self._item_done(ts, data.get("item")))
        elif kind not in _ABSORBED:
            out.append(self._llm.event(EventKind.CUSTOM, kind, ts, frame, name=kind, event_id=event_id))
        return out

    def _event_id(self, data: dict[str, Any]) -> str | None:
        seq = opt_int(data, "sequence_number")
        if seq is None or self._response_id is None:
            return None
        return f"{self._response_id}#{seq}"

    def _start(self, kind: str, ts: int, frame: Frame, r: dict[str, Any]) -> list[AgentEvent]:
        response_id = opt_str(r, "id")
        if self._llm.open and (response_id is None or response_id == self._response_id):
            return []  # response.in_progress after response.created: the same response
        self._response_id = response_id
        self._model = opt_str(r, "model")
        self._function_calls = 0
        # A new response on the same stream: start() completes the previous one first.
        return self._llm.start(
            kind,
            ts,
            frame,
            call_id=response_id or "response",
            temperature=opt_float(r, "temperature"),
            top_p=opt_float(r, "top_p"),
            max_tokens=opt_int(r, "max_output_tokens"),
        )

    def _item_done(self, ts: int, item: object) -> list[AgentEvent]:
        if not isinstance(item, dict) or opt_str(item, "type") not in _FUNCTION_ITEMS:
            return []
        self._function_calls += 1
        arguments = item.get("arguments", item.get("input"))
        return [
            self._llm.tool_requested(
                "response.output_item.done",
                ts,
                opt_str(item, "call_id") or opt_str(item, "id"),
                opt_str(item, "name"),
                json_text(arguments) if arguments not in (None, "") else None,
            )
        ]

    def _end(self, kind: str, ts: int, frame: Frame, r: dict[str, Any]) -> list[AgentEvent]:
        self._model = opt_str(r, "model") or self._model
        usage = usage_from(r.get("usage"))
        if kind == "response.failed":
            message, error_type = error_fields(r.get("error"))
            return self._fail(kind, ts, frame, message, error_type or "failed", usage)
        if kind == "response.incomplete":
            details = r.get("incomplete_details")
            reason = opt_str(details, "reason") if isinstance(details, dict) else None
            finish = _INCOMPLETE_REASONS.get(reason or "", reason or "incomplete")
        else:
            finish = "tool_calls" if self._function_calls else "stop"
        return self._llm.complete(
            kind,
            ts,
            frame,
            usage=usage,
            finish_reasons=(finish,),
            response_id=opt_str(r, "id") or self._response_id,
            response_model=self._model,
        )

    def _fail(
        self, kind: str, ts: int, frame: Frame, message: str | None, error_type: str | None, usage: TokenUsage | None
    ) -> list[AgentEvent]:
        return self._llm.fail(
            kind,
            ts,
            frame,
            error=message,
            error_type=error_type,
            usage=usage,
            response_id=self._response_id,
            response_model=self._model,
        )


DIALECT = OpenAIResponsesDialect()
