"""AG-UI (``ag-ui-protocol`` 1.0, and the ``THINKING_*`` events of 0.1.x).

Data-only SSE, camelCase JSON, the event name in ``type`` (UPPER_SNAKE).

Mapping:

* ``RUN_STARTED{threadId, runId, parentRunId}`` opens the run ``runId``
  (``threadId`` is the conversation). Events carry no run id: they belong to
  the open run. ``RUN_ERROR{message, code}`` has none either and fails the
  open run. ``RUN_FINISHED`` ends it; its ``usage[]`` (the only place AG-UI
  reports tokens) is the run's usage, with the model when a single model
  was used.
* ``STEP_STARTED/FINISHED{stepName}`` → a step span.
* An assistant ``TEXT_MESSAGE_START…END`` (or a run of
  ``TEXT_MESSAGE_CHUNK``) is the model's streamed answer: an inferred
  ``chat`` span keyed by ``messageId`` (AG-UI has no model-call events).
  Other roles' messages are message events.
* ``TOOL_CALL_START{toolCallId, toolCallName, parentMessageId}`` opens an
  ``execute_tool`` span linked to the message that asked for it; ``ARGS``
  deltas are its arguments; ``TOOL_CALL_RESULT`` ends it. A call that ended
  without a result in the stream (a tool the client runs: its result comes
  with the next run) is closed when its run ends, at its ``TOOL_CALL_END``.
* ``REASONING_*`` / ``THINKING_*`` messages → one thinking event each.
* ``SUBAGENT_STARTED/FINISHED/ERROR{subagentRunId}`` → an ``invoke_agent``
  span (under the tool call that spawned it, when ``parentToolCallId`` says).
* ``STATE_SNAPSHOT``, ``STATE_DELTA``, ``MESSAGES_SNAPSHOT`` → state changes;
  ``CUSTOM{name, value}``, ``RAW``, ``ACTIVITY_*`` and unknown types → span
  events.

``timestamp`` (epoch ms) is optional per event. Events without one are placed
on the producer's clock by the offset seen at the last event that had one
(arrival time until then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Unpack

from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    StreamContext,
    json_text,
    make_event,
    opt_int,
    opt_str,
    parse_timestamp,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

NAME = "ag-ui"

EVENT_TYPES = frozenset(
    {
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "TEXT_MESSAGE_CHUNK",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_CHUNK",
        "TOOL_CALL_RESULT",
        "STATE_SNAPSHOT",
        "STATE_DELTA",
        "MESSAGES_SNAPSHOT",
        "ACTIVITY_SNAPSHOT",
        "ACTIVITY_DELTA",
        "RAW",
        "CUSTOM",
        "RUN_STARTED",
        "RUN_FINISHED",
        "RUN_ERROR",
        "STEP_STARTED",
        "STEP_FINISHED",
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_END",
        "REASONING_MESSAGE_CHUNK",
        "REASONING_END",
        "REASONING_ENCRYPTED_VALUE",
        "SUBAGENT_STARTED",
        "SUBAGENT_FINISHED",
        "SUBAGENT_ERROR",
        # 0.1.x, replaced by REASONING_* in 1.0
        "THINKING_START",
        "THINKING_END",
        "THINKING_TEXT_MESSAGE_START",
        "THINKING_TEXT_MESSAGE_CONTENT",
        "THINKING_TEXT_MESSAGE_END",
    }
)
_STATE_TYPES = frozenset({"STATE_SNAPSHOT", "STATE_DELTA", "MESSAGES_SNAPSHOT"})
# Frames whose meaning is carried by the events around them (the message they open or close).
_ABSORBED = frozenset(
    {
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_END",
        "THINKING_START",
        "THINKING_END",
        "THINKING_TEXT_MESSAGE_START",
    }
)
_REASONING_CONTENT = frozenset({"REASONING_MESSAGE_CONTENT", "THINKING_TEXT_MESSAGE_CONTENT"})
_REASONING_END = frozenset({"REASONING_MESSAGE_END", "THINKING_TEXT_MESSAGE_END"})
_CHUNKS = frozenset({"TEXT_MESSAGE_CHUNK", "TOOL_CALL_CHUNK", "REASONING_MESSAGE_CHUNK"})
_MODEL_ROLES = frozenset({"assistant"})
STATUS_AWAITING_RESULT = "awaiting_result"


class AgUiDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        return isinstance(obj, dict) and obj.get("type") in EVENT_TYPES and frame.event in (None, obj.get("type"))

    def decoder(self, ctx: StreamContext) -> AgUiDecoder:
        return AgUiDecoder(ctx)


@dataclass
class _Tool:
    name: str | None
    args: list[str] = field(default_factory=list)
    ended_ns: int | None = None  # TOOL_CALL_END seen, no result yet


@dataclass
class _Message:
    model: bool  # an assistant message: a chat span
    text: list[str] = field(default_factory=list)


def usage_from(entries: object) -> tuple[TokenUsage | None, str | None, str | None]:
    """Summed ``TokenUsage[]`` and, when one model was used, its provider and model.

    AG-UI counts are totals or named parts of one: ``inputTokens`` already
    includes ``cachedInputTokens``, as the conventions want.
    """
    if not isinstance(entries, list):
        return None, None, None
    total: TokenUsage | None = None
    models: set[tuple[str | None, str | None]] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        models.add((opt_str(entry, "provider"), opt_str(entry, "model")))
        usage = TokenUsage(
            input=opt_int(entry, "inputTokens"),
            output=opt_int(entry, "outputTokens"),
            cache_read=opt_int(entry, "cachedInputTokens"),
            cache_creation=opt_int(entry, "cacheWriteInputTokens"),
            reasoning=opt_int(entry, "reasoningTokens"),
        )
        total = usage if total is None else total.plus(usage)
    provider, model = next(iter(models)) if len(models) == 1 else (None, None)
    return (None if total is None or total.is_empty() else total), provider, model


class AgUiDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._run_id = ctx.run_id or ctx.stream_key
        self._offset_ns: int | None = None  # producer clock minus arrival clock
        self._messages: dict[str, _Message] = {}
        self._reasoning: dict[str, list[str]] = {}
        self._tools: dict[str, _Tool] = {}
        self._chunk: tuple[str, str] | None = None  # (chunk event type, its message or call id)

    def close(self) -> list[AgentEvent]:
        return self._end_chunk(self._ctx.arrival_ns() + (self._offset_ns or 0))

    def _time(self, d: dict[str, Any]) -> tuple[int, bool]:
        arrival = self._ctx.arrival_ns()
        ts = parse_timestamp(d.get("timestamp"))
        if ts is not None:
            self._offset_ns = ts - arrival
            return ts, True
        return arrival + (self._offset_ns or 0), False

    def _event(
        self,
        kind: EventKind,
        original_type: str,
        ts: tuple[int, bool],
        frame: Frame | None,
        run_id: str | None = None,
        **fields: Unpack[EventFields],
    ) -> AgentEvent:
        fields.setdefault("inferred", frame is None)
        run = self._run_id if run_id is None else run_id
        return make_event(self._ctx, NAME, run, kind, original_type, ts[0], frame, ts[1], **fields)

    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        d = require_object(obj, "ag-ui event")
        kind = opt_str(d, "type")
        if kind is None:
            raise DecodeError("ag-ui: an event needs a 'type'")
        ts = self._time(d)
        out: list[AgentEvent] = []
        if self._chunk is not None and (
            kind != self._chunk[0] or self._chunk_id(kind, d) not in (None, self._chunk[1])
        ):
            out.extend(self._end_chunk(ts[0]))
        out.extend(self._translate(kind, d, ts, frame))
        return out

    def _chunk_id(self, kind: str, d: dict[str, Any]) -> str | None:
        return opt_str(d, "toolCallId" if kind == "TOOL_CALL_CHUNK" else "messageId")

    def _translate(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        if kind == "RUN_STARTED":
            self._run_id = opt_str(d, "runId") or self._run_id
            return [
                self._event(
                    EventKind.RUN_STARTED,
                    kind,
                    ts,
                    frame,
                    conversation_id=opt_str(d, "threadId"),
                    parent_run_id=opt_str(d, "parentRunId"),
                )
            ]
        if kind in ("RUN_FINISHED", "RUN_ERROR"):
            return self._run_end(kind, d, ts, frame)
        if kind in ("STEP_STARTED", "STEP_FINISHED"):
            step_kind = EventKind.STEP_STARTED if kind == "STEP_STARTED" else EventKind.STEP_FINISHED
            return [self._event(step_kind, kind, ts, frame, name=opt_str(d, "stepName"))]
        if kind.startswith("TEXT_MESSAGE_"):
            return self._text(kind, d, ts, frame)
        if kind.startswith("TOOL_CALL_"):
            return self._tool(kind, d, ts, frame)
        if kind in _ABSORBED:
            return []
        if kind in _REASONING_CONTENT or kind == "REASONING_MESSAGE_CHUNK":
            message_id = opt_str(d, "messageId") or "reasoning"
            delta = d.get("delta")
            self._reasoning.setdefault(message_id, []).append(delta if isinstance(delta, str) else "")
            if kind == "REASONING_MESSAGE_CHUNK":
                self._chunk = (kind, message_id)
            return []
        if kind in _REASONING_END:
            text = "".join(self._reasoning.pop(opt_str(d, "messageId") or "reasoning", []))
            return [self._event(EventKind.THINKING, kind, ts, frame, text=text or None)]
        if kind in _STATE_TYPES:
            return [self._event(EventKind.STATE_CHANGED, kind, ts, frame)]
        if kind.startswith("SUBAGENT_"):
            return self._subagent(kind, d, ts, frame)
        name = opt_str(d, "name") if kind == "CUSTOM" else opt_str(d, "source") if kind == "RAW" else None
        return [self._event(EventKind.CUSTOM, kind, ts, frame, name=name or kind)]

    def _run_end(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        out = self._awaiting_tools(ts)
        usage, provider, model = usage_from(d.get("usage"))
        run_id = opt_str(d, "runId") or self._run_id
        if kind == "RUN_ERROR":
            message = opt_str(d, "message")
            out.append(
                self._event(
                    EventKind.RUN_FAILED,
                    kind,
                    ts,
                    frame,
                    run_id=run_id,
                    usage=usage,
                    provider=provider,
                    model=model,
                    error=message or opt_str(d, "code") or "error",
                    error_type=opt_str(d, "code"),
                )
            )
            return out
        outcome = d.get("outcome")
        out.append(
            self._event(
                EventKind.RUN_FINISHED,
                kind,
                ts,
                frame,
                run_id=run_id,
                usage=usage,
                provider=provider,
                model=model,
                status=opt_str(outcome, "type") if isinstance(outcome, dict) else None,
                result=json_text(d.get("result")),
            )
        )
        return out

    def _awaiting_tools(self, ts: tuple[int, bool]) -> list[AgentEvent]:
        """Tool calls that ended without a result in this run: the client runs them."""
        out: list[AgentEvent] = []
        for call_id, tool in list(self._tools.items()):
            if tool.ended_ns is None:
                continue
            del self._tools[call_id]
            out.append(
                self._event(
                    EventKind.TOOL_COMPLETED,
                    "TOOL_CALL_END",
                    (tool.ended_ns, ts[1]),
                    None,
                    call_id=call_id,
                    tool_name=tool.name,
                    arguments="".join(tool.args) or None,
                    status=STATUS_AWAITING_RESULT,
                )
            )
        return out

    def _text(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        message_id = opt_str(d, "messageId") or "message"
        delta = d.get("delta")
        out: list[AgentEvent] = []
        message = self._messages.get(message_id)
        if kind in ("TEXT_MESSAGE_START", "TEXT_MESSAGE_CHUNK") and message is None:
            role = opt_str(d, "role") or "assistant"
            message = self._messages[message_id] = _Message(model=role in _MODEL_ROLES)
            if message.model:
                out.append(
                    self._event(
                        EventKind.LLM_STARTED,
                        kind,
                        ts,
                        None if kind == "TEXT_MESSAGE_CHUNK" else frame,
                        call_id=message_id,
                        stream=True,
                        inferred=True,
                    )
                )
        if kind == "TEXT_MESSAGE_CHUNK":
            self._chunk = (kind, message_id)
        if kind in ("TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_CHUNK") and isinstance(delta, str):
            if message is None:  # content of a message whose start was not seen
                message = self._messages[message_id] = _Message(model=False)
            message.text.append(delta)
            if message.model:
                out.append(self._event(EventKind.LLM_CHUNK, kind, ts, frame, call_id=message_id, text=delta))
        if kind == "TEXT_MESSAGE_END":
            out.extend(self._end_message(message_id, kind, ts, frame))
        return out

    def _end_message(self, message_id: str, kind: str, ts: tuple[int, bool], frame: Frame | None) -> list[AgentEvent]:
        message = self._messages.pop(message_id, None)
        text = "".join(message.text) if message is not None else None
        if message is not None and message.model:
            return [self._event(EventKind.LLM_COMPLETED, kind, ts, frame, call_id=message_id, text=text or None)]
        return [self._event(EventKind.MESSAGE, kind, ts, frame, text=text or None)]

    def _tool(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        call_id = opt_str(d, "toolCallId")
        if kind in ("TOOL_CALL_START", "TOOL_CALL_CHUNK") and call_id is not None and call_id not in self._tools:
            tool = self._tools[call_id] = _Tool(opt_str(d, "toolCallName"))
            started = self._event(
                EventKind.TOOL_STARTED,
                kind,
                ts,
                frame,
                call_id=call_id,
                tool_name=tool.name,
                parent_call_id=opt_str(d, "parentMessageId"),
            )
            if kind == "TOOL_CALL_CHUNK":
                self._chunk = (kind, call_id)
                self._fold_args(call_id, d)
            return [started]
        if kind in ("TOOL_CALL_ARGS", "TOOL_CALL_CHUNK"):
            if kind == "TOOL_CALL_CHUNK":
                call_id = call_id or (self._chunk[1] if self._chunk else None)
            self._fold_args(call_id, d)
            return []
        if kind == "TOOL_CALL_END":
            ended = self._tools.get(call_id or "")
            if ended is not None:
                ended.ended_ns = ts[0]
            return []
        if kind == "TOOL_CALL_RESULT":
            done = self._tools.pop(call_id or "", None)
            return [
                self._event(
                    EventKind.TOOL_COMPLETED,
                    kind,
                    ts,
                    frame,
                    call_id=call_id,
                    tool_name=done.name if done is not None else None,
                    arguments=("".join(done.args) or None) if done is not None else None,
                    result=json_text(d.get("content")),
                )
            ]
        return [self._event(EventKind.CUSTOM, kind, ts, frame, name=kind)]

    def _fold_args(self, call_id: str | None, d: dict[str, Any]) -> None:
        tool = self._tools.get(call_id or "")
        delta = d.get("delta")
        if tool is not None and isinstance(delta, str):
            tool.args.append(delta)

    def _end_chunk(self, ts_ns: int) -> list[AgentEvent]:
        """A run of ``*_CHUNK`` events ends at the first event of another kind."""
        if self._chunk is None:
            return []
        kind, ident = self._chunk
        self._chunk = None
        ts = (ts_ns, False)
        if kind == "TEXT_MESSAGE_CHUNK":
            return self._end_message(ident, kind, ts, None)
        if kind == "REASONING_MESSAGE_CHUNK":
            text = "".join(self._reasoning.pop(ident, []))
            return [self._event(EventKind.THINKING, kind, ts, None, text=text or None)]
        tool = self._tools.get(ident)
        if tool is not None:
            tool.ended_ns = ts_ns
        return []

    def _subagent(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        call_id = opt_str(d, "subagentRunId")
        if kind == "SUBAGENT_STARTED":
            return [
                self._event(
                    EventKind.AGENT_STARTED,
                    kind,
                    ts,
                    frame,
                    call_id=call_id,
                    agent=opt_str(d, "name"),
                    parent_call_id=opt_str(d, "parentToolCallId"),
                )
            ]
        if kind == "SUBAGENT_ERROR":
            return [
                self._event(
                    EventKind.AGENT_FAILED,
                    kind,
                    ts,
                    frame,
                    call_id=call_id,
                    error=opt_str(d, "message") or "error",
                    error_type=opt_str(d, "code"),
                )
            ]
        if kind == "SUBAGENT_FINISHED":
            outcome = d.get("outcome")
            status = opt_str(outcome, "type") if isinstance(outcome, dict) else None
            return [
                self._event(
                    EventKind.AGENT_FINISHED,
                    kind,
                    ts,
                    frame,
                    call_id=call_id,
                    status=status,
                    result=json_text(d.get("result")),
                )
            ]
        return [self._event(EventKind.CUSTOM, kind, ts, frame, name=kind)]


DIALECT = AgUiDialect()
