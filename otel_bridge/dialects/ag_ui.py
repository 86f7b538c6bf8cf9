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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Unpack

from otel_bridge.dialects._ag_ui_events import (
    ABSORBED,
    EVENT_TYPES,
    MODEL_ROLES,
    REASONING_CONTENT,
    REASONING_END,
    STATE_TYPES,
    STATUS_AWAITING_RESULT,
    usage_from,
)
from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    ProducerClock,
    StreamContext,
    json_text,
    make_event,
    opt_str,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind

NAME = "ag-ui"


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


class AgUiDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._run_id = ctx.run_id or ctx.stream_key
        self._clock = ProducerClock(ctx)
        self._messages: dict[str, _Message] = {}
        self._reasoning_text: dict[str, list[str]] = {}
        self._tools: dict[str, _Tool] = {}
        self._chunk: tuple[str, str] | None = None  # (chunk event type, its message or call id)

    def close(self) -> list[AgentEvent]:
        return self._end_chunk(self._clock.now_ns())

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
        ts = self._clock.at(d.get("timestamp"))
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
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(self, kind, d, ts, frame)
        if kind.startswith("TEXT_MESSAGE_"):
            return []  # a message event of a newer version: its message is read from the ones we know
        return [self._event(EventKind.CUSTOM, kind, ts, frame, name=kind)]

    def _run_started(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
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

    def _step(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        step_kind = EventKind.STEP_STARTED if kind == "STEP_STARTED" else EventKind.STEP_FINISHED
        return [self._event(step_kind, kind, ts, frame, name=opt_str(d, "stepName"))]

    def _absorbed(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        return []

    def _reasoning(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        message_id = opt_str(d, "messageId") or "reasoning"
        delta = d.get("delta")
        self._reasoning_text.setdefault(message_id, []).append(delta if isinstance(delta, str) else "")
        if kind == "REASONING_MESSAGE_CHUNK":
            self._chunk = (kind, message_id)
        return []

    def _reasoning_end(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        text = "".join(self._reasoning_text.pop(opt_str(d, "messageId") or "reasoning", []))
        return [self._event(EventKind.THINKING, kind, ts, frame, text=text or None)]

    def _state(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        return [self._event(EventKind.STATE_CHANGED, kind, ts, frame)]

    def _named(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        """``CUSTOM{name}`` and ``RAW{source}``: span events named by the producer."""
        name = opt_str(d, "name") if kind == "CUSTOM" else opt_str(d, "source")
        return [self._event(EventKind.CUSTOM, kind, ts, frame, name=name or kind)]

    def _run_end(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        out = self._awaiting_tools(ts)
        usage, provider, model = usage_from(d.get("usage"))
        fields: EventFields = {"usage": usage, "provider": provider, "model": model}
        if kind == "RUN_ERROR":
            end = EventKind.RUN_FAILED
            fields["error"] = opt_str(d, "message") or opt_str(d, "code") or "error"
            fields["error_type"] = opt_str(d, "code")
        else:
            end = EventKind.RUN_FINISHED
            outcome = d.get("outcome")
            fields["status"] = opt_str(outcome, "type") if isinstance(outcome, dict) else None
            fields["result"] = json_text(d.get("result"))
        out.append(self._event(end, kind, ts, frame, run_id=opt_str(d, "runId") or self._run_id, **fields))
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
            message = self._messages[message_id] = _Message(model=role in MODEL_ROLES)
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

    def _tool_start(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        call_id = opt_str(d, "toolCallId")
        if call_id is None or call_id in self._tools:
            return [self._event(EventKind.CUSTOM, kind, ts, frame, name=kind)]
        return [self._open_tool(call_id, kind, d, ts, frame)]

    def _tool_chunk(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        call_id = opt_str(d, "toolCallId")
        if call_id is not None and call_id not in self._tools:
            started = self._open_tool(call_id, kind, d, ts, frame)
            self._chunk = (kind, call_id)
            self._fold_args(call_id, d)
            return [started]
        self._fold_args(call_id or (self._chunk[1] if self._chunk else None), d)
        return []

    def _open_tool(self, call_id: str, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> AgentEvent:
        tool = self._tools[call_id] = _Tool(opt_str(d, "toolCallName"))
        return self._event(
            EventKind.TOOL_STARTED,
            kind,
            ts,
            frame,
            call_id=call_id,
            tool_name=tool.name,
            parent_call_id=opt_str(d, "parentMessageId"),
        )

    def _tool_args(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        self._fold_args(opt_str(d, "toolCallId"), d)
        return []

    def _tool_end(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        ended = self._tools.get(opt_str(d, "toolCallId") or "")
        if ended is not None:
            ended.ended_ns = ts[0]
        return []

    def _tool_result(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        call_id = opt_str(d, "toolCallId")
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
            text = "".join(self._reasoning_text.pop(ident, []))
            return [self._event(EventKind.THINKING, kind, ts, None, text=text or None)]
        tool = self._tools.get(ident)
        if tool is not None:
            tool.ended_ns = ts_ns
        return []

    def _subagent_started(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        return [
            self._event(
                EventKind.AGENT_STARTED,
                kind,
                ts,
                frame,
                call_id=opt_str(d, "subagentRunId"),
                agent=opt_str(d, "name"),
                parent_call_id=opt_str(d, "parentToolCallId"),
            )
        ]

    def _subagent_error(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        return [
            self._event(
                EventKind.AGENT_FAILED,
                kind,
                ts,
                frame,
                call_id=opt_str(d, "subagentRunId"),
                error=opt_str(d, "message") or "error",
                error_type=opt_str(d, "code"),
            )
        ]

    def _subagent_finished(self, kind: str, d: dict[str, Any], ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        outcome = d.get("outcome")
        return [
            self._event(
                EventKind.AGENT_FINISHED,
                kind,
                ts,
                frame,
                call_id=opt_str(d, "subagentRunId"),
                status=opt_str(outcome, "type") if isinstance(outcome, dict) else None,
                result=json_text(d.get("result")),
            )
        ]


_Handler = Callable[[AgUiDecoder, str, dict[str, Any], tuple[int, bool], Frame], list[AgentEvent]]

# One handler per event type; any other type is a span event named by its type.
_HANDLERS: dict[str, _Handler] = {
    "RUN_STARTED": AgUiDecoder._run_started,
    "RUN_FINISHED": AgUiDecoder._run_end,
    "RUN_ERROR": AgUiDecoder._run_end,
    "STEP_STARTED": AgUiDecoder._step,
    "STEP_FINISHED": AgUiDecoder._step,
    "TEXT_MESSAGE_START": AgUiDecoder._text,
    "TEXT_MESSAGE_CONTENT": AgUiDecoder._text,
    "TEXT_MESSAGE_END": AgUiDecoder._text,
    "TEXT_MESSAGE_CHUNK": AgUiDecoder._text,
    "TOOL_CALL_START": AgUiDecoder._tool_start,
    "TOOL_CALL_CHUNK": AgUiDecoder._tool_chunk,
    "TOOL_CALL_ARGS": AgUiDecoder._tool_args,
    "TOOL_CALL_END": AgUiDecoder._tool_end,
    "TOOL_CALL_RESULT": AgUiDecoder._tool_result,
    **dict.fromkeys(ABSORBED, AgUiDecoder._absorbed),
    **dict.fromkeys(REASONING_CONTENT | {"REASONING_MESSAGE_CHUNK"}, AgUiDecoder._reasoning),
    **dict.fromkeys(REASONING_END, AgUiDecoder._reasoning_end),
    **dict.fromkeys(STATE_TYPES, AgUiDecoder._state),
    "SUBAGENT_STARTED": AgUiDecoder._subagent_started,
    "SUBAGENT_FINISHED": AgUiDecoder._subagent_finished,
    "SUBAGENT_ERROR": AgUiDecoder._subagent_error,
    "CUSTOM": AgUiDecoder._named,
    "RAW": AgUiDecoder._named,
}


DIALECT = AgUiDialect()
