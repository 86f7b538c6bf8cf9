"""The Vercel AI SDK's UI message stream (``x-vercel-ai-ui-message-stream: v1``).

Data-only SSE, one part per frame, its kind in ``type`` (kebab-case), ending
with ``data: [DONE]``. No event ids, no timestamps.

Mapping:

* One response (``start`` … ``finish``) = one assistant message = one run
  (run id = its ``messageId`` when the app sends one, else the stream's).
* ``start-step`` … ``finish-step`` is exactly one LLM call: a ``chat`` span
  (streamed; ``text-delta`` parts are its chunks, its text the completion,
  ``reasoning-*`` a thinking event). An ``error`` inside a step fails it.
* ``tool-input-available`` starts an ``execute_tool`` span (the SDK runs the
  tool then, inside the step that asked for it, linked to that step's call);
  ``tool-output-available`` ends it, ``tool-output-error`` and
  ``tool-input-error`` fail it, ``tool-output-denied`` ends it as denied. A
  call with no output in the stream (a tool the client runs) ends with its
  run, awaiting its result.
* The protocol has no model, tokens or agent. Apps attach them as
  ``messageMetadata`` (on ``start``/``finish``, or a ``message-metadata``
  part) or as ``data-usage`` parts: usage that arrives inside a step or right
  after its ``finish-step`` is that call's; a total (``totalUsage``, or usage
  after the last step) is the run's, never spread over the calls.
* ``finish`` ends the run (``finishReason: "error"`` or an ``error`` part
  fails it), ``abort`` ends it as aborted. ``data-*``, ``source-*``,
  ``file`` and unknown parts are span events named by their type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Unpack

from otel_bridge.dialects._ag_ui_events import STATUS_AWAITING_RESULT
from otel_bridge.dialects._shapes import count, obj, text, usage_or_none
from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    StreamContext,
    json_text,
    make_event,
    opt_str,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

NAME = "vercel-ai"
HEADER = "x-vercel-ai-ui-message-stream"  # the response header that names this protocol

# Part types no other protocol sends: any one of them claims the stream.
_CLAIMING = frozenset(
    {
        "start-step",
        "finish-step",
        "text-start",
        "text-delta",
        "text-end",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "tool-input-error",
        "tool-output-available",
        "tool-output-error",
        "tool-output-denied",
        "message-metadata",
    }
)
_METADATA_PARTS = frozenset({"message-metadata", "data-usage"})
STATUS_DENIED = "denied"
STATUS_ABORTED = "aborted"
ERROR_ABORTED = "aborted"


def usage_from(u: object) -> TokenUsage | None:
    """The AI SDK's ``LanguageModelUsage`` (v5+ details objects, and the older flat fields)."""
    if not isinstance(u, dict):
        return None
    inputs = obj(u, "inputTokenDetails")
    outputs = obj(u, "outputTokenDetails")
    cache_read = count(inputs, "cacheReadTokens")
    reasoning = count(outputs, "reasoningTokens")
    return usage_or_none(
        TokenUsage(
            input=count(u, "inputTokens") if "inputTokens" in u else count(u, "promptTokens"),
            output=count(u, "outputTokens") if "outputTokens" in u else count(u, "completionTokens"),
            cache_read=cache_read if cache_read is not None else count(u, "cachedInputTokens"),
            cache_creation=count(inputs, "cacheWriteTokens"),
            reasoning=reasoning if reasoning is not None else count(u, "reasoningTokens"),
        )
    )


class VercelAiDialect:
    name = NAME

    def sniff(self, frame: Frame, obj_: Any) -> bool:
        return isinstance(obj_, dict) and obj_.get("type") in _CLAIMING and frame.event is None

    def decoder(self, ctx: StreamContext) -> VercelAiDecoder:
        return VercelAiDecoder(ctx)


@dataclass
class _Step:
    call_id: str
    text: list[str] = field(default_factory=list)
    model: str | None = None
    provider: str | None = None
    usage: TokenUsage | None = None
    error: str | None = None


@dataclass
class _Finished:
    """A step that has finished: its completion waits for the metadata that may follow its ``finish-step``."""

    step: _Step
    ts: int
    frame: Frame | None  # None: the bridge ended the step (the response was cut short)


@dataclass
class _Tool:
    name: str | None
    arguments: str | None
    ended: bool = False


class VercelAiDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._responses = 0
        self._run_id = ctx.run_id or ctx.stream_key
        self._started = False
        self._steps = 0
        self._step: _Step | None = None
        self._finished: _Finished | None = None
        self._tools: dict[str, _Tool] = {}
        self._reasoning: list[str] = []
        self._total: TokenUsage | None = None
        self._agent: str | None = None
        self._model: str | None = None
        self._error: str | None = None

    def _event(
        self, kind: EventKind, original_type: str, ts: int, frame: Frame | None, **fields: Unpack[EventFields]
    ) -> AgentEvent:
        fields.setdefault("inferred", frame is None)
        return make_event(self._ctx, NAME, self._run_id, kind, original_type, ts, frame, False, **fields)

    def close(self) -> list[AgentEvent]:
        return self._flush_step(self._ctx.arrival_ns())

    def feed(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        d = require_object(obj_, "vercel-ai part")
        kind = opt_str(d, "type")
        if kind is None:
            raise DecodeError("vercel-ai: a part needs a 'type'")
        ts = self._ctx.arrival_ns()
        out: list[AgentEvent] = []
        if self._finished is not None and kind not in _METADATA_PARTS:
            out.extend(self._flush_step(ts))
        if kind != "start" and not self._started:
            out.extend(self._start(ts, None, {}))
        handler = _HANDLERS.get(kind)
        if handler is not None:
            out.extend(handler(self, kind, d, ts, frame))
        else:
            out.append(self._event(EventKind.CUSTOM, kind, ts, frame, name=kind))
        return out

    # -- the response ----------------------------------------------------------------
    def _start(self, ts: int, frame: Frame | None, d: dict[str, Any]) -> list[AgentEvent]:
        self._responses += 1
        base = self._ctx.run_id or self._ctx.stream_key
        self._run_id = text(d, "messageId") or (base if self._responses == 1 else f"{base}#{self._responses}")
        self._started = True
        self._steps = 0
        self._total = None
        self._error = None
        self._read_metadata(obj(d, "messageMetadata"), in_step=False)
        return [self._event(EventKind.RUN_STARTED, "start", ts, frame, agent=self._agent, model=self._model)]

    def _on_start(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        out: list[AgentEvent] = []
        if self._started:
            out.extend(self._end_run(ts, None, {}))  # a response that never finished
        out.extend(self._start(ts, frame, d))
        return out

    def _read_metadata(self, md: dict[str, Any], *, in_step: bool) -> None:
        """Model, agent and usage from the app's message metadata (common spellings only)."""
        if not md:
            return
        model = text(md, "model") or text(md, "modelId") or text(obj(md, "model"), "id")
        agent = text(md, "agent") or text(md, "agentName")
        self._agent = agent or self._agent
        total = usage_from(md.get("totalUsage"))
        usage = usage_from(md.get("usage"))
        target = self._step or (self._finished.step if self._finished is not None else None)
        if target is not None and (in_step or self._finished is not None):
            target.model = model or target.model
            target.provider = text(md, "provider") or target.provider
            target.usage = usage or target.usage
        else:
            self._model = model or self._model
            self._total = usage or self._total
        self._total = total or self._total

    def _on_metadata(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        md = obj(d, "messageMetadata") if kind == "message-metadata" else obj(d, "data")
        if kind == "data-usage":
            md = {"usage": obj(md, "usage") or md} if "usage" in md or "inputTokens" in md else md
        self._read_metadata(md, in_step=self._step is not None)
        return [self._event(EventKind.CUSTOM, kind, ts, frame, name=kind)]

    def _on_finish(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        self._read_metadata(obj(d, "messageMetadata"), in_step=False)
        return self._end_run(ts, frame, d)

    def _end_run(self, ts: int, frame: Frame | None, d: dict[str, Any]) -> list[AgentEvent]:
        out = self._close_step(ts, None)
        out.extend(self._awaiting_tools(ts))
        reason = text(d, "finishReason")
        fields: EventFields = {
            "usage": self._total,
            "agent": self._agent,
            "model": self._model,
            "finish_reasons": (reason,) if reason else None,
        }
        self._started = False
        if reason == "error" or self._error is not None:
            fields["error"] = self._error or reason
            out.append(self._event(EventKind.RUN_FAILED, "finish", ts, frame, **fields))
        else:
            out.append(self._event(EventKind.RUN_FINISHED, "finish", ts, frame, **fields))
        return out

    def _on_abort(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        out = self._close_step(ts, ERROR_ABORTED)
        out.extend(self._awaiting_tools(ts))
        self._started = False
        out.append(self._event(EventKind.RUN_FINISHED, kind, ts, frame, status=STATUS_ABORTED))
        return out

    def _on_error(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        message = opt_str(d, "errorText") or "error"
        self._error = message
        if self._step is not None:
            self._step.error = message
        return [self._event(EventKind.ERROR, kind, ts, frame, error=message)]

    # -- steps ---------------------------------------------------------------------
    def _on_start_step(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        out = self._close_step(ts, None)
        self._steps += 1
        self._step = _Step(f"step-{self._steps}")
        out.append(self._event(EventKind.LLM_STARTED, kind, ts, frame, call_id=self._step.call_id, stream=True))
        return out

    def _on_finish_step(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        step, self._step = self._step, None
        if step is None:
            return [self._event(EventKind.CUSTOM, kind, ts, frame, name=kind)]
        self._finished = _Finished(step, ts, frame)
        return []

    def _close_step(self, ts: int, error: str | None) -> list[AgentEvent]:
        """End the open step (a response cut short) and flush a finished one."""
        out = self._flush_step(ts)
        step, self._step = self._step, None
        if step is not None:
            step.error = step.error or error
            self._finished = _Finished(step, ts, None)
            out.extend(self._flush_step(ts))
        return out

    def _flush_step(self, ts: int) -> list[AgentEvent]:
        finished, self._finished = self._finished, None
        if finished is None:
            return []
        step = finished.step
        frame = finished.frame
        fields: EventFields = {
            "call_id": step.call_id,
            "model": step.model,
            "provider": step.provider,
            "usage": step.usage,
            "text": "".join(step.text) or None,
            "stream": True,
        }
        if step.error is not None:
            fields["error"] = step.error
            fields["error_type"] = ERROR_ABORTED if step.error == ERROR_ABORTED else None
            return [self._event(EventKind.LLM_FAILED, "finish-step", finished.ts, frame, **fields)]
        return [self._event(EventKind.LLM_COMPLETED, "finish-step", finished.ts, frame, **fields)]

    def _on_text(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        delta = d.get("delta")
        if kind != "text-delta" or not isinstance(delta, str):
            return []
        if self._step is None:
            return [self._event(EventKind.MESSAGE, kind, ts, frame, text=delta)]
        self._step.text.append(delta)
        return [self._event(EventKind.LLM_CHUNK, kind, ts, frame, call_id=self._step.call_id, text=delta)]

    def _on_reasoning(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        delta = d.get("delta")
        if kind == "reasoning-start":
            self._reasoning = []
        elif kind == "reasoning-delta" and isinstance(delta, str):
            self._reasoning.append(delta)
        elif kind == "reasoning-end":
            said, self._reasoning = "".join(self._reasoning), []
            return [self._event(EventKind.THINKING, kind, ts, frame, text=said or None)]
        return []

    # -- tools ---------------------------------------------------------------------
    def _on_tool_input(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        call_id = text(d, "toolCallId")
        if kind != "tool-input-available" or call_id is None or call_id in self._tools:
            return []  # the model still streaming the call's input: its execution starts when it is whole
        tool = self._tools[call_id] = _Tool(text(d, "toolName"), json_text(d.get("input")))
        return [
            self._event(
                EventKind.TOOL_STARTED,
                kind,
                ts,
                frame,
                call_id=call_id,
                tool_name=tool.name,
                arguments=tool.arguments,
                parent_call_id=self._step.call_id if self._step else None,
            )
        ]

    def _on_tool_end(self, kind: str, d: dict[str, Any], ts: int, frame: Frame) -> list[AgentEvent]:
        call_id = text(d, "toolCallId")
        tool = self._tools.get(call_id or "")
        if tool is not None:
            tool.ended = True
        name = tool.name if tool is not None else text(d, "toolName")
        arguments = tool.arguments if tool is not None else json_text(d.get("input"))
        event_kind = EventKind.TOOL_COMPLETED
        fields: EventFields = {"call_id": call_id, "tool_name": name, "arguments": arguments}
        if kind == "tool-output-available":
            fields["result"] = json_text(d.get("output"))
        elif kind == "tool-output-denied":
            fields["status"] = STATUS_DENIED
        else:
            event_kind = EventKind.TOOL_FAILED
            fields["error"] = opt_str(d, "errorText") or kind
        return [self._event(event_kind, kind, ts, frame, **fields)]

    def _awaiting_tools(self, ts: int) -> list[AgentEvent]:
        """Calls with no output in this response: the client runs them, their result comes with the next."""
        out: list[AgentEvent] = []
        for call_id, tool in self._tools.items():
            if not tool.ended:
                out.append(
                    self._event(
                        EventKind.TOOL_COMPLETED,
                        "finish",
                        ts,
                        None,
                        call_id=call_id,
                        tool_name=tool.name,
                        arguments=tool.arguments,
                        status=STATUS_AWAITING_RESULT,
                    )
                )
        self._tools.clear()
        return out


_Handler = Callable[[VercelAiDecoder, str, dict[str, Any], int, Frame], list[AgentEvent]]
# One handler per part type; any other type is a span event named by its type.
_HANDLERS: dict[str, _Handler] = {
    "start": VercelAiDecoder._on_start,
    "finish": VercelAiDecoder._on_finish,
    "abort": VercelAiDecoder._on_abort,
    "error": VercelAiDecoder._on_error,
    "start-step": VercelAiDecoder._on_start_step,
    "finish-step": VercelAiDecoder._on_finish_step,
    "message-metadata": VercelAiDecoder._on_metadata,
    "data-usage": VercelAiDecoder._on_metadata,
    **dict.fromkeys(("text-start", "text-delta", "text-end"), VercelAiDecoder._on_text),
    **dict.fromkeys(("reasoning-start", "reasoning-delta", "reasoning-end"), VercelAiDecoder._on_reasoning),
    **dict.fromkeys(("tool-input-start", "tool-input-delta", "tool-input-available"), VercelAiDecoder._on_tool_input),
    **dict.fromkeys(
        ("tool-output-available", "tool-output-error", "tool-output-denied", "tool-input-error"),
        VercelAiDecoder._on_tool_end,
    ),
}


DIALECT = VercelAiDialect()
