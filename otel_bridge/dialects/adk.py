"""Google ADK's ``/run_sse`` stream: one ADK ``Event`` per frame.

Data-only SSE, camelCase JSON: ``invocationId``, ``author`` (the agent),
``timestamp`` (epoch seconds), ``content {role, parts}`` with ``text``,
``functionCall {id, name, args}`` and ``functionResponse {id, name,
response}`` parts, ``partial`` (a streamed chunk), ``modelVersion``,
``usageMetadata``, ``finishReason``, ``errorCode``/``errorMessage``,
``actions {stateDelta, transferToAgent...}``, ``nodeInfo.path``.

Mapping:

* One invocation = one run (run id = ``invocationId``), named after the first
  author (the root agent). No end marker exists: the stream's end, or the next
  invocation, ends it.
* Each other author is an ``invoke_agent`` span, nested as ``nodeInfo.path``
  says (``root@1/sub@1``); without a path, an agent that another transferred
  to (``actions.transferToAgent``) is a child of that agent, and an author
  already open closes the agents opened under it.
* A model turn: ``partial`` events are chunks of one call (they share the
  final event's id); only the non-partial event ends it, with its usage,
  model and finish reason. A non-streamed answer reported only at its end
  starts at the previous event.
* ``functionCall`` parts of an answer start ``execute_tool`` spans (linked to
  the call that asked); the ``functionResponse`` ends each (a response that is
  only ``{"error": ...}`` fails it). :mod:`._adk_calls` reads them, as it does
  the same calls in ADK's A2A bridge.
* A raising tool aborts the run: an event with ``errorCode`` (the exception
  class) fails every open tool span with that code as ``error.type``, and the
  ``{"error", "error_details"}`` frame that follows fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Unpack

from otel_bridge.dialects._adk_calls import FunctionCalls
from otel_bridge.dialects._shapes import gemini_usage, obj, objects, text
from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    ProducerClock,
    StreamContext,
    make_event,
    opt_str,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind

NAME = "adk"
_MODEL_ROLE = "model"
_USER = "user"
_PATH_SEPARATOR = "/"


class AdkDialect:
    name = NAME

    def sniff(self, frame: Frame, obj_: Any) -> bool:
        return (
            isinstance(obj_, dict)
            and isinstance(obj_.get("invocationId"), str)
            and isinstance(obj_.get("author"), str)
            and ("content" in obj_ or "actions" in obj_)
        )

    def decoder(self, ctx: StreamContext) -> AdkDecoder:
        return AdkDecoder(ctx)


@dataclass
class _Agent:
    key: str  # the span's call id: its node path, or its author and a count
    author: str


@dataclass
class _Run:
    run_id: str
    root: str  # the root agent
    agents: list[_Agent] = field(default_factory=list)  # open sub-agent spans, outermost first
    llm: str | None = None  # the open model call (its event id)
    tools: FunctionCalls = field(default_factory=FunctionCalls)  # open tool calls
    error_code: str | None = None
    last_ns: int = 0
    previous_ns: int | None = None  # the time of the event before the current one
    ended: bool = False
    seq: int = 0


class AdkDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._run: _Run | None = None
        self._clock = ProducerClock(ctx)

    def _event(
        self,
        run: _Run,
        kind: EventKind,
        original_type: str,
        ts: tuple[int, bool],
        frame: Frame | None,
        **fields: Unpack[EventFields],
    ) -> AgentEvent:
        fields.setdefault("inferred", frame is None)
        return make_event(self._ctx, NAME, run.run_id, kind, original_type, ts[0], frame, ts[1], **fields)

    def close(self) -> list[AgentEvent]:
        """The end of the stream is the end of its invocation (ADK sends no end marker)."""
        run = self._run
        if run is None or run.ended:
            return []
        return self._finish(run, (run.last_ns, True), None)

    def feed(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        d = require_object(obj_, "adk event")
        invocation = text(d, "invocationId")
        if invocation is None:
            if "error" in d:
                return self._abort(frame, d)
            raise DecodeError("adk: an event needs an 'invocationId'")
        ts = self._clock.at(d.get("timestamp"))
        out: list[AgentEvent] = []
        run = self._run
        if run is None or run.run_id != invocation:
            if run is not None and not run.ended:
                out.extend(self._finish(run, (run.last_ns, True), None))
            author = text(d, "author") or _USER
            run = self._run = _Run(invocation, author)
            out.append(self._event(run, EventKind.RUN_STARTED, "invocation", ts, None, agent=author))
        run.previous_ns = run.last_ns or None
        run.last_ns = max(run.last_ns, ts[0])
        out.extend(self._place_author(run, d, ts))
        content = obj(d, "content")
        parts = objects(content, "parts")
        model = text(content, "role") == _MODEL_ROLE or "modelVersion" in d
        if model and not any("functionResponse" in p for p in parts):
            out.extend(self._model(run, d, parts, ts, frame))
        else:
            out.extend(self._responses(run, parts, ts, frame))
            says = "".join([p["text"] for p in parts if isinstance(p.get("text"), str)])
            if says:
                out.append(self._event(run, EventKind.MESSAGE, "event", ts, frame, text=says, agent=text(d, "author")))
        code = text(d, "errorCode")
        if code is not None:
            out.extend(self._error(run, code, text(d, "errorMessage"), ts, frame))
        delta = obj(obj(d, "actions"), "stateDelta")
        if delta:
            out.append(self._event(run, EventKind.STATE_CHANGED, "stateDelta", ts, frame))
        if not out:
            out.append(self._event(run, EventKind.CUSTOM, "event", ts, frame, name="event"))
        return out

    # -- agents ------------------------------------------------------------------
    def _place_author(self, run: _Run, d: dict[str, Any], ts: tuple[int, bool]) -> list[AgentEvent]:
        """Open and close sub-agent spans so that the innermost open one is this event's author."""
        author = text(d, "author")
        if author is None or author == _USER:
            return []
        path = text(obj(d, "nodeInfo"), "path")
        if path is not None:
            segments = path.split(_PATH_SEPARATOR)[1:]  # the first is the root: the run itself
            wanted = [(_PATH_SEPARATOR.join(path.split(_PATH_SEPARATOR)[: i + 2]), s) for i, s in enumerate(segments)]
            wanted_agents = [_Agent(key, segment.split("@", 1)[0]) for key, segment in wanted]
        else:
            wanted_agents = self._by_author(run, author)
        keep = 0
        while keep < min(len(run.agents), len(wanted_agents)) and run.agents[keep].key == wanted_agents[keep].key:
            keep += 1
        out = self._close_agents(run, keep, ts)
        # A sub-agent's first event is its model's answer: it began when the event before it ended.
        start = (min(self._prior(run, ts), ts[0]), ts[1])
        for agent in wanted_agents[keep:]:
            run.agents.append(agent)
            out.append(
                self._event(run, EventKind.AGENT_STARTED, "author", start, None, call_id=agent.key, agent=agent.author)
            )
        return out

    def _by_author(self, run: _Run, author: str) -> list[_Agent]:
        if author == run.root:
            return []
        for i, agent in enumerate(run.agents):
            if agent.author == author:
                return run.agents[: i + 1]
        run.seq += 1  # a new author: transferred to by the innermost agent
        return [*run.agents, _Agent(f"{author}#{run.seq}", author)]

    def _close_agents(self, run: _Run, keep: int, ts: tuple[int, bool]) -> list[AgentEvent]:
        out: list[AgentEvent] = []
        while len(run.agents) > keep:
            agent = run.agents.pop()
            out.append(self._event(run, EventKind.AGENT_FINISHED, "author", ts, None, call_id=agent.key))
        return out

    # -- model calls and tools -----------------------------------------------------
    def _model(
        self, run: _Run, d: dict[str, Any], parts: list[dict[str, Any]], ts: tuple[int, bool], frame: Frame
    ) -> list[AgentEvent]:
        out: list[AgentEvent] = []
        event_id = text(d, "id")
        model = text(d, "modelVersion")
        author = text(d, "author")
        said = "".join([p["text"] for p in parts if isinstance(p.get("text"), str) and p.get("thought") is not True])
        if run.llm is not None and event_id is not None and run.llm != event_id:
            out.extend(self._end_llm(run, ts, None, error="superseded"))
        if run.llm is None:
            run.llm = event_id or f"{run.run_id}/llm#{run.seq}"
            run.seq += 1
            partial = d.get("partial") is True
            # A streamed call starts at its first chunk; a whole answer, at the event before it.
            start = ts if partial else (min(self._prior(run, ts), ts[0]), ts[1])
            out.append(
                self._event(
                    run,
                    EventKind.LLM_STARTED,
                    "model",
                    start,
                    None,
                    call_id=run.llm,
                    model=model,
                    agent=author,
                    stream=partial or None,
                )
            )
        call_id = run.llm
        if d.get("partial") is True:
            out.append(self._event(run, EventKind.LLM_CHUNK, "partial", ts, frame, call_id=call_id, text=said or None))
            return out
        run.llm = None
        reason = text(d, "finishReason")
        out.append(
            self._event(
                run,
                EventKind.LLM_COMPLETED,
                "model",
                ts,
                frame,
                call_id=call_id,
                model=model,
                usage=gemini_usage(d.get("usageMetadata")),
                agent=author,
                text=said or None,
                finish_reasons=(reason.lower(),) if reason else None,
            )
        )
        for part in parts:
            call = obj(part, "functionCall")
            started = run.tools.start(call) if call else None
            if started is not None:
                tool_id, name, arguments = started
                out.append(
                    self._event(
                        run,
                        EventKind.TOOL_STARTED,
                        "functionCall",
                        ts,
                        None,
                        call_id=tool_id,
                        tool_name=name,
                        arguments=arguments,
                        parent_call_id=call_id,
                    )
                )
        return out

    def _prior(self, run: _Run, ts: tuple[int, bool]) -> int:
        return run.previous_ns if run.previous_ns is not None else ts[0]

    def _end_llm(self, run: _Run, ts: tuple[int, bool], frame: Frame | None, error: str) -> list[AgentEvent]:
        call_id, run.llm = run.llm, None
        return [self._event(run, EventKind.LLM_FAILED, "model", ts, frame, call_id=call_id, error=error)]

    def _responses(
        self, run: _Run, parts: list[dict[str, Any]], ts: tuple[int, bool], frame: Frame
    ) -> list[AgentEvent]:
        out: list[AgentEvent] = []
        for part in parts:
            response = obj(part, "functionResponse")
            if response:
                kind, tool_id, name, result, error = run.tools.end(response)
                out.append(
                    self._event(
                        run,
                        kind,
                        "functionResponse",
                        ts,
                        frame,
                        call_id=tool_id,
                        tool_name=name,
                        result=result,
                        error=error,
                    )
                )
        return out

    def _error(self, run: _Run, code: str, message: str | None, ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        """An ``errorCode`` event: the open tool calls (else the open model call) fail with it."""
        run.error_code = code
        error = message or code
        out = self._fail_open(run, code, error, ts)
        out.append(self._event(run, EventKind.ERROR, "errorCode", ts, frame, error=error, error_type=code))
        return out

    def _fail_open(self, run: _Run, code: str | None, error: str, ts: tuple[int, bool]) -> list[AgentEvent]:
        out = [
            self._event(
                run,
                EventKind.TOOL_FAILED,
                "errorCode",
                ts,
                None,
                call_id=tool_id,
                tool_name=name,
                error=error,
                error_type=code,
            )
            for tool_id, name in run.tools.fail_all()
        ]
        if not out and run.llm is not None:
            call_id, run.llm = run.llm, None
            out.append(
                self._event(
                    run, EventKind.LLM_FAILED, "errorCode", ts, None, call_id=call_id, error=error, error_type=code
                )
            )
        return out

    def _abort(self, frame: Frame, d: dict[str, Any]) -> list[AgentEvent]:
        """The ``{"error", "error_details"}`` frame ADK sends when a run raised: the run failed."""
        run = self._run
        message = opt_str(d, "error") or "error"
        details = obj(d, "error_details")
        code = text(details, "type") or text(details, "error_type") or text(details, "code")
        if run is None or run.ended:
            run = self._run = _Run(self._ctx.run_id or self._ctx.stream_key, _USER)
            ts = self._clock.at(None)
            return [self._event(run, EventKind.RUN_FAILED, "error", ts, frame, error=message, error_type=code)]
        ts = (run.last_ns, True)  # the abort follows the run's last event at once
        error_type = run.error_code or code
        out = self._fail_open(run, error_type, message, ts)
        out.extend(self._finish(run, ts, frame, error=message, error_type=error_type))
        return out

    def _finish(
        self,
        run: _Run,
        ts: tuple[int, bool],
        frame: Frame | None,
        *,
        error: str | None = None,
        error_type: str | None = None,
    ) -> list[AgentEvent]:
        run.ended = True
        out: list[AgentEvent] = []
        if run.llm is not None:
            out.extend(self._end_llm(run, ts, None, error="the stream ended before the model call did"))
        out.extend(self._close_agents(run, 0, ts))
        if error is not None:
            out.append(self._event(run, EventKind.RUN_FAILED, "error", ts, frame, error=error, error_type=error_type))
        else:
            out.append(self._event(run, EventKind.RUN_FINISHED, "end_of_stream", ts, frame))
        return out


DIALECT = AdkDialect()
