"""Locus (``locus-sdk``) events as its ``SSEHandler``/``AsyncSSEHandler`` streams them.

Frames are ``event: <event_type>``, ``id: <prefix><n>`` and ``data:`` holding
the event's ``model_dump()``: ``event_type``, ``timestamp`` (ISO; a nested
subagent's may use a space for the ``T``), ``agent_name`` and the event's
fields. The handler closes the stream with ``done{status, total_events}`` or
``error{error, correlation_id}``, which carry no ``event_type``.

Mapping (one stream is one run; a stream that goes on after the handler's
``done``/``error`` starts the next run):

* ``model_chunk``: Locus has no model-call start event, so a model call
  starts at the first chunk of an iteration (the start is inferred: no time
  to first chunk) and ends at the chunk with ``done: true``, which carries
  usage, ``stop_reason`` and cost. The chunk's ``tool_calls`` are the tools
  the model asked for: ``tool.requested`` events on the chat span.
* ``model_complete`` (non-streamed calls) ends the open call, or is a call
  of its own.
* ``think`` → thinking; ``tool_start``/``tool_complete`` (with
  ``duration_ms``) → an ``execute_tool`` span linked to the model call that
  asked for it; ``tool_progress`` → progress.
* ``subagent{tool_call_id, event}``: the wrapped event is the child's own,
  decoded recursively inside an ``invoke_agent`` span nested under the
  delegating tool call; it ends at the child's ``terminate`` or at the
  delegating call's ``tool_complete``.
* ``specialist_start``/``specialist_complete`` → an ``invoke_agent`` span
  per specialist.
* ``terminate`` ends the run (failed when ``reason == "error"``) with the
  run's cumulative usage and cost; the handler's ``done``/``error`` closes it
  too when no ``terminate`` came.
* ``model_retry`` keeps its error; every other type (``reflect``,
  ``grounding``, ``compaction``, ``interrupt``, ``custom``,
  ``orchestrator_decision``, hooks, unknown ones) is a span event.

The AgentServer's data-only form (:mod:`.locus_agentserver`) is decoded by
the same :class:`LocusDecoder` with its own field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otel_bridge.dialects.base import (
    DecodeError,
    StreamContext,
    json_text,
    opt_float,
    opt_int,
    opt_str,
    parse_timestamp,
    raw,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

NAME = "locus"

# Every LocusEvent type of locus-sdk 3.0.1 (locus.core.events).
EVENT_TYPES = frozenset(
    {
        "think",
        "tool_start",
        "tool_complete",
        "tool_progress",
        "subagent",
        "reflect",
        "grounding",
        "final_answer_verification",
        "model_retry",
        "compaction",
        "terminate",
        "interrupt",
        "custom",
        "model_chunk",
        "model_complete",
        "specialist_start",
        "specialist_complete",
        "orchestrator_decision",
        "causal_node",
        "causal_edge",
        "before_invocation",
        "after_invocation",
        "before_tool_call",
        "after_tool_call",
    }
)
HANDLER_DONE = "done"
HANDLER_ERROR = "error"


@dataclass(frozen=True)
class Fields:
    """Where a Locus wire form keeps what the decoder reads."""

    type_key: str  # the key naming the event type
    tool_name: str
    think_text: str
    terminate: str  # the event type that ends the agent's run
    final_message: str
    timestamps: bool


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


@dataclass
class _Scope:
    """One agent's model calls: the run's own agent (path ``()``) or a subagent."""

    prefix: str
    calls: int = 0
    open_call: str | None = None
    last_call: str | None = None  # the call whose tool requests the next tool_start answers


def usage_from(u: object) -> TokenUsage | None:
    """Locus usage dicts: ``prompt/completion_tokens``; cache counts the Anthropic way (outside the
    prompt count: added to it) or the OpenAI way (``cached_tokens``, inside it)."""
    if not isinstance(u, dict):
        return None
    prompt = opt_int(u, "prompt_tokens")
    read_outside = opt_int(u, "cache_read_input_tokens")
    write_outside = opt_int(u, "cache_creation_input_tokens")
    if prompt is not None:
        prompt += (read_outside or 0) + (write_outside or 0)
    usage = TokenUsage(
        input=prompt,
        output=opt_int(u, "completion_tokens"),
        cache_read=read_outside if read_outside is not None else opt_int(u, "cached_tokens"),
        cache_creation=write_outside if write_outside is not None else opt_int(u, "cache_write_tokens"),
        reasoning=opt_int(u, "reasoning_tokens"),
    )
    return None if usage.is_empty() else usage


class LocusDecoder:
    """Decodes one Locus stream; ``fields`` says which wire form (SSEHandler or AgentServer)."""

    def __init__(self, ctx: StreamContext, dialect: str, fields: Fields) -> None:
        self._ctx = ctx
        self._dialect = dialect
        self._f = fields
        self._run_index = 0
        self._last_ts: int | None = None
        self._new_run()

    def _new_run(self) -> None:
        self._started = False
        self._ended = False  # the agent's terminate was seen
        self._scopes: dict[tuple[str, ...], _Scope] = {}
        self._subagents: dict[tuple[str, ...], str] = {}  # path -> invoke_agent call id

    @property
    def _run_id(self) -> str:
        base = self._ctx.run_id or self._ctx.stream_key
        return base if self._run_index == 0 else f"{base}#{self._run_index}"

    def close(self) -> list[AgentEvent]:
        return []

    # -- frames ----------------------------------------------------------------
    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        d = require_object(obj, f"{self._dialect} event")
        event_type = opt_str(d, self._f.type_key)
        if event_type is None:
            event_type = frame.event
        if event_type is None:
            raise DecodeError(f"{self._dialect}: an event needs '{self._f.type_key}' or an SSE event name")
        ts, from_source = self._time(d)
        ctx = _Frame(frame, ts, from_source)
        out: list[AgentEvent] = []
        if not self._started:
            self._started = True
            out.append(self._event(EventKind.RUN_STARTED, event_type, ctx, None, agent=opt_str(d, "agent_name")))
        if event_type in (HANDLER_DONE, HANDLER_ERROR) and not self._is_terminate(event_type):
            out.extend(self._handler_end(event_type, d, ctx))
            return out
        out.extend(self._translate(event_type, d, (), ctx))
        if self._is_terminate(event_type) and self._f.terminate == HANDLER_DONE:
            # The AgentServer's done is the agent's terminate and also the end of the stream's run.
            self._next_run()
        return out

    def _is_terminate(self, event_type: str) -> bool:
        return event_type == self._f.terminate

    def _time(self, d: dict[str, Any]) -> tuple[int, bool]:
        ts = parse_timestamp(d.get("timestamp")) if self._f.timestamps else None
        if ts is not None:
            self._last_ts = ts
            return ts, True
        # Handler frames carry no time: they follow the last event on the producer's clock.
        if self._last_ts is not None:
            return self._last_ts, False
        return self._ctx.arrival_ns(), False

    def _next_run(self) -> None:
        self._run_index += 1
        self._new_run()

    def _handler_end(self, event_type: str, d: dict[str, Any], ctx: _Frame) -> list[AgentEvent]:
        if event_type == HANDLER_ERROR:
            # The handler hides the exception; its correlation id is what finds it in the server's log.
            error = opt_str(d, "error") or "error"
            correlation = opt_str(d, "correlation_id")
            out = [
                self._event(
                    EventKind.RUN_FAILED,
                    event_type,
                    ctx,
                    ctx.frame,
                    error=f"{error} (correlation_id={correlation})" if correlation else error,
                    error_type=opt_str(d, "error_type"),
                )
            ]
        elif self._ended:
            out = [
                self._event(EventKind.CUSTOM, event_type, ctx, ctx.frame, name=event_type, status=opt_str(d, "status"))
            ]
        else:
            out = [self._event(EventKind.RUN_FINISHED, event_type, ctx, ctx.frame, status=opt_str(d, "status"))]
        self._next_run()
        return out

    # -- events ------------------------------------------------------------------
    def _event(
        self, kind: EventKind, original_type: str, ctx: _Frame, frame: Frame | None, **fields: Any
    ) -> AgentEvent:
        return AgentEvent(
            kind=kind,
            run_id=self._run_id,
            timestamp_ns=ctx.ts,
            timestamp_from_source=ctx.from_source,
            dialect=self._dialect,
            original_type=original_type,
            source=self._ctx.source,
            inferred=frame is None,
            event_id=ctx.frame.id if frame is not None else None,
            payload=raw(frame) if frame is not None else None,
            **fields,
        )

    def _scope(self, path: tuple[str, ...]) -> _Scope:
        scope = self._scopes.get(path)
        if scope is None:
            scope = self._scopes[path] = _Scope(prefix="".join(f"{p}/" for p in path))
        return scope

    def _translate(self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        f = self._f
        frame = ctx.frame
        agent = opt_str(d, "agent_name")
        if event_type == "model_chunk":
            return self._model_chunk(d, path, ctx)
        if event_type == "model_complete":
            return self._model_complete(d, path, ctx)
        if event_type == "subagent":
            return self._subagent(d, path, ctx)
        if event_type == f.terminate:
            return self._terminate(event_type, d, path, ctx)
        out = self._end_model_call(path, ctx) if event_type in ("think", "tool_start") else []
        if event_type == "think":
            out.append(
                self._event(EventKind.THINKING, event_type, ctx, frame, agent=agent, text=opt_str(d, f.think_text))
            )
        elif event_type == "tool_start":
            call_id = opt_str(d, "tool_call_id")
            out.append(
                self._event(
                    EventKind.TOOL_STARTED,
                    event_type,
                    ctx,
                    frame,
                    agent=agent,
                    tool_name=opt_str(d, f.tool_name),
                    call_id=call_id,
                    parent_call_id=self._scope(path).last_call,
                    arguments=json_text(d.get("arguments")),
                )
            )
        elif event_type == "tool_complete":
            call_id = opt_str(d, "tool_call_id")
            if call_id is not None:
                out.extend(self._end_subagent((*path, call_id), ctx, failed=False))
            error = opt_str(d, "error")
            out.append(
                self._event(
                    EventKind.TOOL_FAILED if error else EventKind.TOOL_COMPLETED,
                    event_type,
                    ctx,
                    frame,
                    agent=agent,
                    tool_name=opt_str(d, f.tool_name),
                    call_id=call_id,
                    duration_ms=opt_float(d, "duration_ms"),
                    error=error,
                    error_type="tool_error" if error else None,
                    result=json_text(d.get("result")),
                )
            )
        elif event_type == "tool_progress":
            out.append(
                self._event(
                    EventKind.PROGRESS,
                    event_type,
                    ctx,
                    frame,
                    tool_name=opt_str(d, f.tool_name),
                    call_id=opt_str(d, "tool_call_id"),
                    name=opt_str(d, f.tool_name),
                    status=opt_str(d, "message"),
                )
            )
        elif event_type == "specialist_start":
            out.append(
                self._event(
                    EventKind.AGENT_STARTED,
                    event_type,
                    ctx,
                    frame,
                    call_id=opt_str(d, "specialist_id"),
                    agent=opt_str(d, "specialist_type") or agent,
                    name=opt_str(d, "task"),
                )
            )
        elif event_type == "specialist_complete":
            out.append(
                self._event(
                    EventKind.AGENT_FINISHED,
                    event_type,
                    ctx,
                    frame,
                    call_id=opt_str(d, "specialist_id"),
                    agent=opt_str(d, "specialist_type") or agent,
                    duration_ms=opt_float(d, "duration_ms"),
                    result=json_text(d.get("result")),
                )
            )
        elif event_type == "model_retry":
            out.append(
                self._event(
                    EventKind.CUSTOM,
                    event_type,
                    ctx,
                    frame,
                    name=event_type,
                    error=opt_str(d, "error"),
                    error_type=opt_str(d, "reason"),
                )
            )
        elif event_type == "custom":
            out.append(self._event(EventKind.CUSTOM, event_type, ctx, frame, name=opt_str(d, "name") or event_type))
        else:
            # reflect, grounding, compaction, interrupt, orchestrator_decision, hooks, unknown: kept as span events.
            out.append(self._event(EventKind.CUSTOM, event_type, ctx, frame, name=event_type))
        return out

    # -- model calls -------------------------------------------------------------
    def _model_chunk(self, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        scope = self._scope(path)
        out: list[AgentEvent] = []
        model = opt_str(d, "model")
        if scope.open_call is None:
            scope.calls += 1
            scope.open_call = f"{scope.prefix}model-{scope.calls}"
            out.append(
                self._event(
                    EventKind.LLM_STARTED,
                    "model_chunk",
                    ctx,
                    None,
                    call_id=scope.open_call,
                    agent=opt_str(d, "agent_name"),
                    model=model,
                    stream=True,
                )
            )
        if d.get("content") or d.get("reasoning"):
            out.append(
                self._event(
                    EventKind.LLM_CHUNK,
                    "model_chunk",
                    ctx,
                    ctx.frame,
                    call_id=scope.open_call,
                    text=opt_str(d, "content"),
                )
            )
        out.extend(self._tool_requests(d.get("tool_calls"), scope, ctx))
        if d.get("done") is True:
            out.append(self._complete(scope, d, ctx, ctx.frame))
        return out

    def _model_complete(self, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        scope = self._scope(path)
        out: list[AgentEvent] = []
        if scope.open_call is None:
            # A call that was not streamed: it is known only by its end.
            scope.calls += 1
            scope.open_call = f"{scope.prefix}model-{scope.calls}"
            out.append(
                self._event(
                    EventKind.LLM_STARTED,
                    "model_complete",
                    ctx,
                    None,
                    call_id=scope.open_call,
                    agent=opt_str(d, "agent_name"),
                )
            )
        out.extend(self._tool_requests(d.get("tool_calls"), scope, ctx))
        out.append(self._complete(scope, d, ctx, ctx.frame, text=opt_str(d, "content")))
        return out

    def _tool_requests(self, calls: object, scope: _Scope, ctx: _Frame) -> list[AgentEvent]:
        if not isinstance(calls, list):
            return []
        return [
            self._event(
                EventKind.TOOL_REQUESTED,
                "model_chunk",
                ctx,
                None,
                call_id=opt_str(call, "id"),
                tool_name=opt_str(call, "name"),
                arguments=json_text(call.get("arguments")),
                parent_call_id=scope.open_call,
            )
            for call in calls
            if isinstance(call, dict)
        ]

    def _complete(
        self, scope: _Scope, d: dict[str, Any], ctx: _Frame, frame: Frame | None, text: str | None = None
    ) -> AgentEvent:
        stop = opt_str(d, "stop_reason")
        event = self._event(
            EventKind.LLM_COMPLETED,
            str(d.get(self._f.type_key) or "model_chunk"),
            ctx,
            frame,
            call_id=scope.open_call,
            agent=opt_str(d, "agent_name"),
            model=opt_str(d, "model"),
            usage=usage_from(d.get("usage")),
            finish_reasons=(stop,) if stop else None,
            cost_usd=opt_float(d, "cost_usd"),
            text=text,
        )
        scope.last_call, scope.open_call = scope.open_call, None
        return event

    def _end_model_call(self, path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        """An iteration moved on without a ``done`` chunk: its model call ends here."""
        scope = self._scope(path)
        if scope.open_call is None:
            return []
        return [self._complete(scope, {}, ctx, None)]

    # -- agents ------------------------------------------------------------------
    def _subagent(self, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        inner = d.get("event")
        if not isinstance(inner, dict):
            raise DecodeError(f"{self._dialect} subagent: 'event' must be an object")
        tool_call_id = opt_str(d, "tool_call_id") or "subagent"
        child = (*path, tool_call_id)
        inner_type = opt_str(inner, self._f.type_key) or "event"
        inner_ts = parse_timestamp(inner.get("timestamp")) if self._f.timestamps else None
        inner_ctx = _Frame(ctx.frame, inner_ts if inner_ts is not None else ctx.ts, ctx.from_source)
        out: list[AgentEvent] = []
        if child not in self._subagents:
            call_id = "subagent:" + "/".join(child)
            self._subagents[child] = call_id
            out.append(
                self._event(
                    EventKind.AGENT_STARTED,
                    "subagent",
                    inner_ctx,
                    None,
                    call_id=call_id,
                    agent=opt_str(inner, "agent_name") or opt_str(d, "tool_name"),
                    parent_call_id=tool_call_id,
                    name=opt_str(d, "task_id"),
                )
            )
        out.extend(self._translate(inner_type, inner, child, inner_ctx))
        return out

    def _end_subagent(self, path: tuple[str, ...], ctx: _Frame, *, failed: bool, **fields: Any) -> list[AgentEvent]:
        call_id = self._subagents.pop(path, None)
        if call_id is None:
            return []
        out = self._end_model_call(path, ctx)
        kind = EventKind.AGENT_FAILED if failed else EventKind.AGENT_FINISHED
        out.append(self._event(kind, "subagent", ctx, fields.pop("frame", None), call_id=call_id, **fields))
        return out

    def _terminate(self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        reason = opt_str(d, "reason")
        error = opt_str(d, "error")
        failed = reason == "error" or error is not None
        cost = opt_float(d, "reported_cost_usd")
        fields: dict[str, Any] = {
            "agent": opt_str(d, "agent_name"),
            "status": reason,
            "usage": usage_from(d.get("usage")),
            "cost_usd": cost if cost is not None else opt_float(d, "cost_usd"),
            "error": (error or "terminated with an error") if failed else None,
            # error.type comes from the message ("RuntimeError: ..."); the reason is only "error".
            "error_type": None,
            "text": opt_str(d, self._f.final_message),
        }
        if path:
            return self._end_subagent(path, ctx, failed=failed, frame=ctx.frame, **fields)
        out = self._end_model_call(path, ctx)
        self._ended = True
        kind = EventKind.RUN_FAILED if failed else EventKind.RUN_FINISHED
        out.append(self._event(kind, event_type, ctx, ctx.frame, **fields))
        return out


@dataclass(frozen=True)
class _Frame:
    """The frame being decoded and its time (nested events bring their own)."""

    frame: Frame
    ts: int
    from_source: bool


DIALECT = LocusDialect()
