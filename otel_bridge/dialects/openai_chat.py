"""OpenAI chat completions streaming (``chat.completion.chunk``), and every server that copies it.

Data-only SSE ending ``data: [DONE]``. Each chunk is ``{id, object, created,
model, choices[{index, delta{role, content, refusal, reasoning_content,
tool_calls[{index, id, function{name, arguments}}]}, finish_reason}], usage}``.
Tool calls are keyed by ``index``; their id and name come only on the first
fragment, the arguments arrive in pieces. Usage (only with
``stream_options.include_usage``) comes in a last chunk with ``choices: []``;
an error is ``{"error": {...}}``.

The response ends at its usage chunk, or else at the end of the stream
(the ``[DONE]`` marker never reaches a dialect). See :mod:`._llm_stream`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otel_bridge.dialects._llm_stream import LlmStream, error_fields
from otel_bridge.dialects.base import DecodeError, StreamContext, opt_int, opt_str, require_object
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, TokenUsage

NAME = "openai-chat"
PROVIDER = "openai"
_OBJECT = "chat.completion.chunk"
_CONTENT_KEYS = ("content", "refusal", "reasoning_content", "reasoning")


class OpenAIChatDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        return isinstance(obj, dict) and obj.get("object") == _OBJECT and isinstance(obj.get("choices"), list)

    def decoder(self, ctx: StreamContext) -> OpenAIChatDecoder:
        return OpenAIChatDecoder(ctx)


@dataclass
class _ToolCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


def usage_from(u: object) -> TokenUsage | None:
    """OpenAI usage: prompt tokens already include the cached ones; completion tokens the reasoning ones."""
    if not isinstance(u, dict):
        return None
    prompt_details = u.get("prompt_tokens_details")
    completion_details = u.get("completion_tokens_details")
    return TokenUsage(
        input=opt_int(u, "prompt_tokens"),
        output=opt_int(u, "completion_tokens"),
        cache_read=opt_int(prompt_details, "cached_tokens") if isinstance(prompt_details, dict) else None,
        reasoning=opt_int(completion_details, "reasoning_tokens") if isinstance(completion_details, dict) else None,
    )


class OpenAIChatDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._llm = LlmStream(ctx, NAME, PROVIDER)
        self._reset()

    def _reset(self) -> None:
        self._response_id: str | None = None
        self._model: str | None = None
        self._finish: dict[int, str] = {}
        self._tools: dict[tuple[int, int], _ToolCall] = {}

    def close(self) -> list[AgentEvent]:
        if not self._llm.open:
            return []
        return self._complete(self._llm.now(), None, None)

    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        chunk = require_object(obj, "openai-chat chunk")
        ts = self._llm.now()
        if "error" in chunk and chunk.get("object") != _OBJECT:
            message, kind = error_fields(chunk["error"])
            failed = self._llm.fail(
                "error",
                ts,
                frame,
                error=message,
                error_type=kind,
                response_id=self._response_id,
                response_model=self._model,
            )
            self._reset()
            return failed
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise DecodeError("openai-chat: a chunk needs a 'choices' list")
        out: list[AgentEvent] = []
        response_id = opt_str(chunk, "id")
        if self._llm.open and response_id is not None and response_id != self._response_id:
            out.extend(self._complete(ts, None, None))  # a new response on the same stream
        if not self._llm.open:
            self._response_id = response_id
            out.extend(self._llm.start(_OBJECT, ts, frame, call_id=response_id or "chat"))
        self._model = opt_str(chunk, "model") or self._model
        has_content = False
        finished: list[int] = []
        text: list[str] = []
        for choice in choices:
            if isinstance(choice, dict):
                has_content |= self._choice(choice, finished)
                delta = choice.get("delta")
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    text.append(delta["content"])
        if has_content:
            out.append(self._llm.chunk(_OBJECT, ts, frame, text="".join(text) or None))
        for index in finished:
            out.extend(self._tool_requests(ts, index))
        usage = usage_from(chunk.get("usage"))
        if usage is not None and not choices:
            out.extend(self._complete(ts, frame, usage))
        return out

    def _choice(self, choice: dict[str, Any], finished: list[int]) -> bool:
        """Fold one choice delta in; True if it carried content. A finished choice's index goes to ``finished``."""
        index = opt_int(choice, "index") or 0
        delta = choice.get("delta")
        has_content = False
        if isinstance(delta, dict):
            has_content = any(isinstance(delta.get(k), str) and delta[k] for k in _CONTENT_KEYS)
            for fragment in delta.get("tool_calls") or ():
                if not isinstance(fragment, dict):
                    continue
                call = self._tools.setdefault((index, opt_int(fragment, "index") or 0), _ToolCall())
                call.id = call.id or opt_str(fragment, "id")
                function = fragment.get("function")
                if isinstance(function, dict):
                    call.name = call.name or opt_str(function, "name")
                    arguments = function.get("arguments")
                    if isinstance(arguments, str):
                        call.arguments.append(arguments)
                has_content = True
        finish = opt_str(choice, "finish_reason")
        if finish:
            self._finish[index] = finish
            finished.append(index)
        return has_content

    def _tool_requests(self, ts: int, choice: int | None) -> list[AgentEvent]:
        """The tool calls of one choice (all, if ``None``) the model has finished asking for."""
        keys = sorted(k for k in self._tools if choice is None or k[0] == choice)
        calls = [self._tools.pop(k) for k in keys]
        return [
            self._llm.tool_requested("tool_calls", ts, call.id, call.name, "".join(call.arguments) or None)
            for call in calls
        ]

    def _complete(self, ts: int, frame: Frame | None, usage: TokenUsage | None) -> list[AgentEvent]:
        out = self._tool_requests(ts, None)
        finish = tuple(reason for _, reason in sorted(self._finish.items()))
        out.extend(
            self._llm.complete(
                _OBJECT,
                ts,
                frame,
                usage=usage,
                finish_reasons=finish,
                response_id=self._response_id,
                response_model=self._model,
                inferred=frame is None,
            )
        )
        self._reset()
        return out


DIALECT = OpenAIChatDialect()
