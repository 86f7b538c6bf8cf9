"""Agentlang's SSE event stream (the PR #610 format).

The stream opens with ``: connected`` and sends ``: keepalive`` comments;
events are ``event: <name>`` + ``data: <json>`` with no ids, no timestamps
and no model names, so events are stamped on arrival and paired by nesting
order:

* ``agent_start{step}`` / ``agent_complete{step}`` (monitoring on) and
  ``flow_step_start{step, agent}`` / ``flow_step_complete{step, result}`` →
  step spans;
* ``agent_start{agent}`` / ``agent_complete{agent}`` → an ``invoke_agent``
  span (the innermost open one of that name ends);
* ``llm_response{agent, content, tokens{input, output, total}}`` → a chat
  span inside that agent, from the agent's previous event (its start, or its
  previous model call) to the response: the start is inferred;
* ``error{agent, error}`` is a failed model call (the run goes on);
  ``error{step, error}`` a step error; the terminal ``error{error,
  statusCode}`` fails the run, and ``result`` (any JSON) ends it.

A stream that goes on after its terminal event starts the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Unpack

from otel_bridge.dialects.base import DecodeError, EventFields, StreamContext, json_text, make_event, opt_int, opt_str
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

NAME = "agentlang"

_NESTING = frozenset({"agent_start", "agent_complete", "llm_response", "flow_step_start", "flow_step_complete"})
EVENT_NAMES = _NESTING | {"error", "result"}


class AgentlangDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        if not isinstance(obj, dict):
            return False
        if frame.event in _NESTING:
            return "agent" in obj or "step" in obj
        # The terminal error is the one agentlang frame without agent or step.
        return frame.event == "error" and "statusCode" in obj and "error" in obj

    def decoder(self, ctx: StreamContext) -> AgentlangDecoder:
        return AgentlangDecoder(ctx)


@dataclass
class _Agent:
    name: str
    call_id: str
    last_ns: int  # the agent's latest event: where its next model call starts


class AgentlangDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._run_index = 0
        self._agents: list[_Agent] = []  # open agents, innermost last
        self._seq = 0

    @property
    def _run_id(self) -> str:
        return self._ctx.numbered_run(self._run_index)

    def close(self) -> list[AgentEvent]:
        return []

    def _event(
        self, kind: EventKind, original_type: str, ts: int, frame: Frame | None, **fields: Unpack[EventFields]
    ) -> AgentEvent:
        fields.setdefault("inferred", frame is None)  # agentlang: an event without a frame is inferred
        return make_event(self._ctx, NAME, self._run_id, kind, original_type, ts, frame, **fields)

    def _next_id(self, what: str) -> str:
        self._seq += 1
        return f"{what}-{self._seq}"

    def _agent(self, name: str | None) -> _Agent | None:
        """The innermost open agent of that name (else the innermost one)."""
        for agent in reversed(self._agents):
            if name is None or agent.name == name:
                return agent
        return None

    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        name = frame.event
        if name is None:
            raise DecodeError("agentlang: every event has an SSE event name")
        ts = self._ctx.arrival_ns()
        d: dict[str, Any] = obj if isinstance(obj, dict) else {}
        if name == "result":
            return self._end_run(
                self._event(EventKind.RUN_FINISHED, name, ts, frame, result=json_text(obj) if obj is not None else None)
            )
        if not isinstance(obj, dict):
            return [self._event(EventKind.CUSTOM, name, ts, frame, name=name)]
        step = opt_str(d, "step")
        agent_name = opt_str(d, "agent")
        if name in ("agent_start", "flow_step_start") and step is not None:
            return [self._event(EventKind.STEP_STARTED, name, ts, frame, name=step, agent=agent_name)]
        if name in ("agent_complete", "flow_step_complete") and step is not None:
            return [self._event(EventKind.STEP_FINISHED, name, ts, frame, name=step, result=json_text(d.get("result")))]
        if name == "agent_start" and agent_name is not None:
            agent = _Agent(agent_name, self._next_id("agent"), ts)
            self._agents.append(agent)
            return [self._event(EventKind.AGENT_STARTED, name, ts, frame, agent=agent_name, call_id=agent.call_id)]
        if name == "agent_complete" and agent_name is not None:
            ending = self._agent(agent_name)
            if ending is not None:
                self._agents.remove(ending)
            call_id = ending.call_id if ending is not None else None
            return [self._event(EventKind.AGENT_FINISHED, name, ts, frame, agent=agent_name, call_id=call_id)]
        if name == "llm_response":
            return self._model_call(name, d, ts, frame, agent_name, failed=False)
        if name == "error":
            if agent_name is not None:
                return self._model_call(name, d, ts, frame, agent_name, failed=True)
            if step is not None:
                return [self._event(EventKind.ERROR, name, ts, frame, name=step, error=opt_str(d, "error"))]
            status = d.get("statusCode")
            return self._end_run(
                self._event(
                    EventKind.RUN_FAILED,
                    name,
                    ts,
                    frame,
                    error=opt_str(d, "error") or "error",
                    error_type=str(status) if status is not None else None,
                )
            )
        return [self._event(EventKind.CUSTOM, name, ts, frame, name=name)]

    def _model_call(
        self, name: str, d: dict[str, Any], ts: int, frame: Frame, agent_name: str | None, *, failed: bool
    ) -> list[AgentEvent]:
        agent = self._agent(agent_name)
        start_ns = agent.last_ns if agent is not None else ts
        if agent is not None:
            agent.last_ns = ts
        call_id = self._next_id("llm")
        tokens = d.get("tokens")
        usage = (
            TokenUsage(input=opt_int(tokens, "input"), output=opt_int(tokens, "output"))
            if isinstance(tokens, dict)
            else None
        )
        started = self._event(EventKind.LLM_STARTED, name, start_ns, None, call_id=call_id, agent=agent_name)
        if failed:
            ended = self._event(
                EventKind.LLM_FAILED, name, ts, frame, call_id=call_id, agent=agent_name, error=opt_str(d, "error")
            )
        else:
            ended = self._event(
                EventKind.LLM_COMPLETED,
                name,
                ts,
                frame,
                call_id=call_id,
                agent=agent_name,
                usage=None if usage is None or usage.is_empty() else usage,
                text=opt_str(d, "content"),
            )
        return [started, ended]

    def _end_run(self, event: AgentEvent) -> list[AgentEvent]:
        self._run_index += 1
        self._agents.clear()
        self._seq = 0
        return [event]


DIALECT = AgentlangDialect()
