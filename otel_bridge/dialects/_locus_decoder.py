"""The Locus decoder, shared by both Locus wire forms: events to runs, model calls, tools and agents.

:mod:`.locus` (the SDK's ``SSEHandler``) and :mod:`.locus_agentserver` (the
AgentServer's data-only JSON) carry the same events under different keys;
:class:`~._locus_events.Fields` says which, and one :class:`LocusDecoder`
decodes both. The decoder owns the state (runs, model calls, subagents): the
event types that move it have a handler in ``_HANDLERS``; every other event is
only read (:mod:`._locus_events`).

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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Unpack

from otel_bridge.dialects._locus_events import (
    HANDLER_DONE,
    HANDLER_ERROR,
    Fields,
    read_event,
    read_terminate,
    usage_from,
)
from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    StreamContext,
    json_text,
    make_event,
    opt_float,
    opt_str,
    parse_timestamp,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind


@dataclass
class _Scope:
    """One agent's model calls: the run's own agent (path ``()``) or a subagent."""

    prefix: str
    calls: int = 0
    open_call: str | None = None
    last_call: str | None = None  # the call whose tool requests the next tool_start answers


@dataclass(frozen=True)
class _Frame:
    """The frame being decoded and its time (nested events bring their own)."""

    frame: Frame
    ts: int
    from_source: bool


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
        return self._ctx.numbered_run(self._run_index)

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
        self, kind: EventKind, original_type: str, ctx: _Frame, frame: Frame | None, **fields: Unpack[EventFields]
    ) -> AgentEvent:
        """An event at ``ctx``'s time; without a ``frame`` it is inferred and has no id or payload."""
        fields["inferred"] = frame is None
        fields["event_id"] = ctx.frame.id if frame is not None else None
        return make_event(
            self._ctx, self._dialect, self._run_id, kind, original_type, ctx.ts, frame, ctx.from_source, **fields
        )

    def _scope(self, path: tuple[str, ...]) -> _Scope:
        scope = self._scopes.get(path)
        if scope is None:
            scope = self._scopes[path] = _Scope(prefix="".join(f"{p}/" for p in path))
        return scope

    def _translate(self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        if event_type == self._f.terminate:
            return self._terminate(event_type, d, path, ctx)
        handler = _HANDLERS.get(event_type)
        if handler is None:
            return [self._read(event_type, d, ctx)]
        return handler(self, event_type, d, path, ctx)

    def _read(self, event_type: str, d: dict[str, Any], ctx: _Frame, **extra: Unpack[EventFields]) -> AgentEvent:
        """The event as its reader says, plus what only the decoder's state knows (``extra``)."""
        kind, fields = read_event(event_type, d, self._f)
        fields.update(extra)
        return self._event(kind, event_type, ctx, ctx.frame, **fields)

    def _think(self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        out = self._end_model_call(path, ctx)
        out.append(self._read(event_type, d, ctx))
        return out

    def _tool_start(self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        out = self._end_model_call(path, ctx)  # sets the scope's last call: the one that asked for this tool
        out.append(self._read(event_type, d, ctx, parent_call_id=self._scope(path).last_call))
        return out

    def _tool_complete(
        self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame
    ) -> list[AgentEvent]:
        call_id = opt_str(d, "tool_call_id")
        out = self._end_subagent((*path, call_id), ctx, failed=False) if call_id is not None else []
        out.append(self._read(event_type, d, ctx))
        return out

    # -- model calls -------------------------------------------------------------
    def _model_chunk(self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        scope = self._scope(path)
        out: list[AgentEvent] = []
        if scope.open_call is None:
            out.append(self._open_call(scope, "model_chunk", d, ctx, model=opt_str(d, "model"), stream=True))
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

    def _model_complete(
        self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame
    ) -> list[AgentEvent]:
        scope = self._scope(path)
        out: list[AgentEvent] = []
        if scope.open_call is None:  # a call that was not streamed: it is known only by its end
            out.append(self._open_call(scope, "model_complete", d, ctx))
        out.extend(self._tool_requests(d.get("tool_calls"), scope, ctx))
        out.append(self._complete(scope, d, ctx, ctx.frame, text=opt_str(d, "content")))
        return out

    def _open_call(
        self, scope: _Scope, original_type: str, d: dict[str, Any], ctx: _Frame, **fields: Unpack[EventFields]
    ) -> AgentEvent:
        """Locus has no model-call start event: the call's start is inferred at its first event."""
        scope.calls += 1
        scope.open_call = f"{scope.prefix}model-{scope.calls}"
        fields["call_id"] = scope.open_call
        fields["agent"] = opt_str(d, "agent_name")
        return self._event(EventKind.LLM_STARTED, original_type, ctx, None, **fields)

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
    def _subagent(self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
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

    def _end_subagent(
        self,
        path: tuple[str, ...],
        ctx: _Frame,
        *,
        failed: bool,
        frame: Frame | None = None,
        **fields: Unpack[EventFields],
    ) -> list[AgentEvent]:
        call_id = self._subagents.pop(path, None)
        if call_id is None:
            return []
        out = self._end_model_call(path, ctx)
        kind = EventKind.AGENT_FAILED if failed else EventKind.AGENT_FINISHED
        fields["call_id"] = call_id
        out.append(self._event(kind, "subagent", ctx, frame, **fields))
        return out

    def _terminate(self, event_type: str, d: dict[str, Any], path: tuple[str, ...], ctx: _Frame) -> list[AgentEvent]:
        failed, fields = read_terminate(d, self._f)
        if path:
            return self._end_subagent(path, ctx, failed=failed, frame=ctx.frame, **fields)
        out = self._end_model_call(path, ctx)
        self._ended = True
        kind = EventKind.RUN_FAILED if failed else EventKind.RUN_FINISHED
        out.append(self._event(kind, event_type, ctx, ctx.frame, **fields))
        return out


_Handler = Callable[[LocusDecoder, str, dict[str, Any], tuple[str, ...], _Frame], list[AgentEvent]]

# The event types that move the decoder's state; every other type is only read (_locus_events).
# The agent's terminate is not here: its name depends on the wire form (Fields.terminate).
_HANDLERS: dict[str, _Handler] = {
    "model_chunk": LocusDecoder._model_chunk,
    "model_complete": LocusDecoder._model_complete,
    "subagent": LocusDecoder._subagent,
    "think": LocusDecoder._think,
    "tool_start": LocusDecoder._tool_start,
    "tool_complete": LocusDecoder._tool_complete,
}
