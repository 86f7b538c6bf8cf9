"""What the three raw LLM stream dialects share: one response is one run holding one chat span.

A provider's streaming response (OpenAI chat completions, OpenAI responses,
Anthropic messages) says nothing about agents: it is one model call. Each
response becomes a run (keyed by the stream, like every dialect without run
ids) that contains a single ``chat {model}`` span:

* the span starts at the response's first frame (the earliest moment the
  stream shows), so time to first chunk is measured from there to the first
  content delta (text, reasoning or tool-call arguments);
* the tool calls the model asked for are ``tool.requested`` events on that
  span (their arguments only when content capture is on);
* the completion carries usage, finish reasons, the response id and model;
  the run ends with it. A stream that goes on after a completion starts the
  next run (``<stream>#1``...).

Provider frames carry no usable per-event time (``created`` is whole seconds),
so every event is stamped on arrival.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

from otel_bridge.dialects.base import EventFields, StreamContext, make_event
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

MAX_RESPONSE_TEXT = 65_536
"""Response text kept per call (characters): what ``gen_ai.output.messages`` can show when content is captured."""


class RequestFields(TypedDict, total=False):
    """What a response's first frame says about the request that opened the chat span."""

    temperature: float | None
    top_p: float | None
    max_tokens: int | None


class LlmStream:
    """The run and chat-span state of one raw LLM stream; builds the canonical events."""

    def __init__(self, ctx: StreamContext, dialect: str, provider: str) -> None:
        self._ctx = ctx
        self._dialect = dialect
        self._provider = provider
        self._run_index = 0
        self.call_id: str | None = None  # the open call, if any
        self.chunks = 0  # content deltas of the open call
        self._text: list[str] = []  # the open call's response text, for gen_ai.output.messages
        self._text_chars = 0

    @property
    def run_id(self) -> str:
        return self._ctx.numbered_run(self._run_index)

    @property
    def open(self) -> bool:
        return self.call_id is not None

    def now(self) -> int:
        return self._ctx.arrival_ns()

    def event(
        self, kind: EventKind, original_type: str, ts: int, frame: Frame | None, **fields: Unpack[EventFields]
    ) -> AgentEvent:
        fields["provider"] = self._provider
        return make_event(self._ctx, self._dialect, self.run_id, kind, original_type, ts, frame, **fields)

    def start(
        self, original_type: str, ts: int, frame: Frame, call_id: str, **request: Unpack[RequestFields]
    ) -> list[AgentEvent]:
        """Open the chat span (closing a previous one that never completed first)."""
        out = self.complete(original_type, ts, None, inferred=True) if self.open else []
        self.call_id = call_id
        self.chunks = 0
        self._text, self._text_chars = [], 0
        out.append(self.event(EventKind.LLM_STARTED, original_type, ts, frame, call_id=call_id, stream=True, **request))
        return out

    def chunk(self, original_type: str, ts: int, frame: Frame, text: str | None = None) -> AgentEvent:
        """A content delta; ``text`` is response text (not reasoning or tool arguments), kept for the span."""
        self.chunks += 1
        if text and self._text_chars < MAX_RESPONSE_TEXT:
            # Bounded: the span attribute is cut shorter still (mapping.attribute_max_length).
            piece = text[: MAX_RESPONSE_TEXT - self._text_chars]
            self._text.append(piece)
            self._text_chars += len(piece)
        return self.event(EventKind.LLM_CHUNK, original_type, ts, frame, call_id=self.call_id, text=text)

    def tool_requested(
        self, original_type: str, ts: int, call_id: str | None, name: str | None, arguments: str | None
    ) -> AgentEvent:
        return self.event(
            EventKind.TOOL_REQUESTED,
            original_type,
            ts,
            None,
            call_id=call_id,
            tool_name=name,
            arguments=arguments,
            parent_call_id=self.call_id,
        )

    def complete(
        self,
        original_type: str,
        ts: int,
        frame: Frame | None,
        *,
        usage: TokenUsage | None = None,
        finish_reasons: tuple[str, ...] | None = None,
        response_id: str | None = None,
        response_model: str | None = None,
        inferred: bool = False,
    ) -> list[AgentEvent]:
        """End the chat span and its run. ``inferred``: the stream ended without a completion frame."""
        usage = None if usage is None or usage.is_empty() else usage
        call_id = self.call_id
        out = [
            self.event(
                EventKind.LLM_COMPLETED,
                original_type,
                ts,
                frame,
                call_id=call_id,
                usage=usage,
                finish_reasons=finish_reasons or None,
                response_id=response_id,
                response_model=response_model,
                stream=True,
                inferred=inferred,
                text="".join(self._text) or None,
            ),
            self.event(EventKind.RUN_FINISHED, original_type, ts, None, inferred=True),
        ]
        self._next_run()
        return out

    def fail(
        self,
        original_type: str,
        ts: int,
        frame: Frame,
        *,
        error: str | None,
        error_type: str | None,
        usage: TokenUsage | None = None,
        response_id: str | None = None,
        response_model: str | None = None,
    ) -> list[AgentEvent]:
        """The response failed: the chat span (rebuilt if none is open) and its run fail."""
        usage = None if usage is None or usage.is_empty() else usage
        call_id = self.call_id or f"error-{self._run_index}"
        message = error or error_type
        out = [
            self.event(
                EventKind.LLM_FAILED,
                original_type,
                ts,
                frame,
                call_id=call_id,
                usage=usage,
                response_id=response_id,
                response_model=response_model,
                error=message,
                error_type=error_type,
            ),
            self.event(
                EventKind.RUN_FAILED, original_type, ts, None, inferred=True, error=message, error_type=error_type
            ),
        ]
        self._next_run()
        return out

    def _next_run(self) -> None:
        self.call_id = None
        self.chunks = 0
        self._run_index += 1


def error_fields(error: object) -> tuple[str | None, str | None]:
    """``(message, type)`` of a provider error object (``{type|code, message}``)."""
    if not isinstance(error, dict):
        return (str(error) if error is not None else None), None
    message = error.get("message")
    kind = error.get("type") or error.get("code")
    return (str(message) if message is not None else None), (str(kind) if kind is not None else None)
