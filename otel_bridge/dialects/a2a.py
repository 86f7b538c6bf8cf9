"""A2A (Agent2Agent) streaming answers: protocol 1.0 and 0.3.

JSON-RPC 2.0 responses over SSE, one per frame: ``{"jsonrpc", "id", "result"}``.
In 1.0 (``SendStreamingMessage``, ``SubscribeToTask``) ``result`` holds exactly
one of ``task``, ``message``, ``statusUpdate``, ``artifactUpdate`` (protobuf
JSON: camelCase, ``TASK_STATE_*`` enums); in 0.3 (``message/stream``,
``tasks/resubscribe``) ``result.kind`` says which (``task``, ``message``,
``status-update``, ``artifact-update``; lowercase states). An error is
``{"error": {code, message}}``.

Mapping:

* One task = one run (run id = task id, ``contextId`` = the conversation). The
  stream itself is a span named by its method under the run's root
  (``SendStreamingMessage``, or ``SubscribeToTask`` when the stream opens on a
  snapshot of a task already under way), with ``a2a.method.name``,
  ``a2a.task.id`` and ``a2a.task.state``. The JSON-RPC id is a request id,
  not an event id: every frame of a stream carries the same one.
* A resubscription is another stream of the same task: it joins the same run,
  and the updates it repeats are mapped once (event ids are task id +
  message or artifact id). A task snapshot is a stream's first frame, so one
  that arrives while a stream of its task is open (a subscription that dropped
  and resubscribed, in one decoder) ends that stream's span and opens the next.
* The agent card, when the source read one (``StreamContext.agent``), names
  the agent and describes it on the run's root.
* The protocol carries no agent name, model, tokens or tool calls; real
  producers put them in ``metadata``. ADK's A2A bridge (the common one):
  ``adk_app_name`` names the agent, a message or artifact with
  ``adk_usage_metadata`` is a model answer (a ``chat`` span), ``data`` parts
  whose metadata say ``adk_type: function_call`` / ``function_response`` are
  tool executions, ``adk_error_code`` is an error (the failed call never gets
  a response: the task's failure closes it with that code as ``error.type``);
  :mod:`._adk_calls` reads them, as it does ADK's own stream.
* Other agent messages are message events; an artifact is a message event
  once complete (``lastChunk``), unless it bears usage (then it is the answer
  of a ``chat`` span from its first chunk).
* Terminal states end the run: ``completed`` and ``canceled`` finish it,
  ``failed`` and ``rejected`` fail it; ``input_required`` / ``auth_required``
  end the stream but not the task (the next message continues the run).

The wire readers are in :mod:`._a2a_wire`, the per-task state in
:mod:`._a2a_task`, the producer clock in :mod:`._a2a_clock`.
"""

from __future__ import annotations

from typing import Any, Unpack

from otel_bridge.dialects._a2a_clock import HoldingClock
from otel_bridge.dialects._a2a_task import Task
from otel_bridge.dialects._a2a_wire import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    message_parts,
    normalize_state,
    parts_text,
    result_kind,
    stream_method,
)
from otel_bridge.dialects._shapes import gemini_usage, obj, text
from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    StreamContext,
    make_event,
    opt_str,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

NAME = "a2a"


class A2aDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        return isinstance(obj, dict) and obj.get("jsonrpc") == "2.0" and result_kind(obj) is not None

    def decoder(self, ctx: StreamContext) -> A2aDecoder:
        return A2aDecoder(ctx)


class A2aDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._tasks: dict[str, Task] = {}
        self._current: Task | None = None
        self._v03 = False
        self._clock = HoldingClock(ctx.arrival_ns)

    def close(self) -> list[AgentEvent]:
        return self._clock.flush()

    def _event(
        self,
        task: Task,
        kind: EventKind,
        original_type: str,
        ts: tuple[int, bool],
        frame: Frame | None,
        **fields: Unpack[EventFields],
    ) -> AgentEvent:
        fields.setdefault("inferred", frame is None)
        fields.setdefault("conversation_id", task.context)
        return make_event(self._ctx, NAME, task.run_id, kind, original_type, ts[0], frame, ts[1], **fields)

    # -- frames ----------------------------------------------------------------
    def feed(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        return self._clock.release(self._feed(frame, obj_))

    def _feed(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        d = require_object(obj_, "a2a frame")
        if "error" in d and "result" not in d:
            return self._error(frame, d)
        found = result_kind(d)
        if found is None:
            raise DecodeError("a2a: a frame needs a 'result' holding a task, message, statusUpdate or artifactUpdate")
        kind, payload, v03 = found
        self._v03 = v03
        if kind == "task":
            return self._task_snapshot(frame, payload)
        if kind == "statusUpdate":
            return self._status_update(frame, payload)
        if kind == "artifactUpdate":
            return self._artifact_update(frame, payload)
        return self._message_result(frame, payload)

    def _task_for(
        self,
        task_id: str | None,
        context_id: str | None,
        metadata: dict[str, Any],
        ts: tuple[int, bool],
        frame: Frame,
        *,
        snapshot_state: str | None = None,
    ) -> tuple[Task, list[AgentEvent]]:
        """The task a frame is about; the events that open its run and this stream's span the first time."""
        run_id = task_id or (self._current.run_id if self._current is not None else None) or self._stream_run()
        task = self._tasks.get(run_id)
        out: list[AgentEvent] = []
        if task is None:
            task = self._tasks[run_id] = Task(run_id)
        self._current = task
        task.context = task.context or context_id
        agent = text(metadata, "adk_app_name")
        # A stream that opens on a task already under way is a resubscription.
        resubscribe = snapshot_state is not None and snapshot_state != "submitted"
        reopened = resubscribe and task.method is not None and not task.ended
        if reopened:
            # A task snapshot is a stream's first frame: the stream before it (here, in one decoder: a
            # subscription that dropped and resubscribed) ended without saying so.
            out.append(self._stream_end(task, ts, task.state))
        if task.method is None:
            task.method = stream_method(self._v03, resubscribe)
            task.agent = agent or task.agent or self._ctx.agent  # the wire names no agent; a card may
            task.ended = False
            if not reopened:
                description = self._ctx.agent_description
                out.append(
                    self._event(
                        task,
                        EventKind.RUN_STARTED,
                        "task",
                        ts,
                        frame,
                        agent=task.agent,
                        agent_description=description,
                        conversation_id=context_id,
                    )
                )
            out.append(
                self._event(
                    task,
                    EventKind.STEP_STARTED,
                    task.method,
                    ts,
                    None,
                    name=task.method,
                    status=snapshot_state,
                    conversation_id=context_id,
                )
            )
        elif agent is not None and task.agent is None:
            task.agent = agent  # the agent is named after the run opened: its root is renamed
            out.append(self._event(task, EventKind.RUN_STARTED, "task", ts, None, agent=agent))
        return task, out

    def _stream_end(self, task: Task, ts: tuple[int, bool], state: str | None) -> AgentEvent:
        method = task.method or stream_method(self._v03, False)
        task.method = None  # the next stream of this task is a new span
        return self._event(task, EventKind.STEP_FINISHED, method, ts, None, name=method, status=state)

    def _stream_run(self) -> str:
        return self._ctx.run_id or self._ctx.stream_key

    def _task_snapshot(self, frame: Frame, t: dict[str, Any]) -> list[AgentEvent]:
        status = obj(t, "status")
        state = normalize_state(status.get("state"))
        ts = self._clock.time(status.get("timestamp"))
        task, out = self._task_for(
            text(t, "id"), text(t, "contextId"), obj(t, "metadata"), ts, frame, snapshot_state=state or "submitted"
        )
        if state is not None and state != task.state and not out:  # a run that opened here has its state already
            out.append(self._event(task, EventKind.STATUS_CHANGED, "task", ts, frame, status=state))
        task.state = state or task.state
        if state is not None:
            out.extend(self._terminal(task, state, status, ts, frame))
        return out

    def _status_update(self, frame: Frame, u: dict[str, Any]) -> list[AgentEvent]:
        status = obj(u, "status")
        state = normalize_state(status.get("state"))
        ts = self._clock.time(status.get("timestamp"))
        metadata = obj(u, "metadata")
        task, out = self._task_for(text(u, "taskId"), text(u, "contextId"), metadata, ts, frame)
        message = obj(status, "message")
        if message:
            metadata = {**obj(message, "metadata"), **metadata}
            out.extend(self._agent_message(task, message, metadata, ts, frame))
        elif state is not None and state != task.state:
            out.append(self._event(task, EventKind.STATUS_CHANGED, "statusUpdate", ts, frame, status=state))
        if state is not None:
            task.state = state
            out.extend(self._terminal(task, state, status, ts, frame, final=u.get("final") is True))
        return out

    def _agent_message(
        self, task: Task, m: dict[str, Any], metadata: dict[str, Any], ts: tuple[int, bool], frame: Frame
    ) -> list[AgentEvent]:
        """A message in a status update: a model answer (usage), tool calls and results, text, an error."""
        message_id = text(m, "messageId")
        ident = f"{task.run_id}/{message_id}" if message_id is not None else None
        out: list[AgentEvent] = []
        n = 0

        def event_id() -> str | None:
            nonlocal n
            n += 1
            return f"{ident}#{n}" if ident is not None else None

        parts = message_parts(m, metadata)
        usage, author, joined = parts.usage, parts.author, parts.text
        chat_id: str | None = None
        if usage is not None:
            chat_id = message_id or f"{task.run_id}/chat"
            start = (self._prior_ns(ts), ts[1])
            ids = (event_id(), event_id())
            out.extend(self._answer(task, "statusUpdate", start, ts, frame, chat_id, usage, joined, author, ids))
        elif joined is not None:
            out.append(
                self._event(
                    task, EventKind.MESSAGE, "statusUpdate", ts, frame, text=joined, agent=author, event_id=event_id()
                )
            )
        for call in parts.calls:
            started = task.calls.start(call)
            if started is not None:
                call_id, name, arguments = started
                out.append(
                    self._event(
                        task,
                        EventKind.TOOL_STARTED,
                        "function_call",
                        ts,
                        frame,
                        call_id=call_id,
                        tool_name=name,
                        arguments=arguments,
                        parent_call_id=chat_id,
                        event_id=event_id(),
                    )
                )
        for response in parts.responses:
            kind, response_id, name, result, error = task.calls.end(response)
            out.append(
                self._event(
                    task,
                    kind,
                    "function_response",
                    ts,
                    frame,
                    call_id=response_id,
                    tool_name=name,
                    result=result,
                    error=error,
                    event_id=event_id(),
                )
            )
        code = parts.error_code
        if code is not None:
            task.error_code = code
            out.append(
                self._event(
                    task,
                    EventKind.ERROR,
                    "adk_error",
                    ts,
                    frame,
                    error_type=code,
                    error=parts.error_message or joined or code,
                    event_id=event_id(),
                )
            )
        return out

    def _answer(
        self,
        task: Task,
        original: str,
        start: tuple[int, bool],
        ts: tuple[int, bool],
        frame: Frame,
        call_id: str,
        usage: TokenUsage,
        said: str | None,
        author: str | None,
        ids: tuple[str | None, str | None],
    ) -> list[AgentEvent]:
        """A model answer reported whole (its usage says it was one): a ``chat`` span from ``start`` to ``ts``."""
        begin = self._event(
            task, EventKind.LLM_STARTED, original, start, None, call_id=call_id, agent=author, event_id=ids[0]
        )
        end = self._event(
            task,
            EventKind.LLM_COMPLETED,
            original,
            ts,
            frame,
            call_id=call_id,
            usage=usage,
            text=said,
            agent=author,
            event_id=ids[1],
        )
        return [begin, end]

    def _prior_ns(self, ts: tuple[int, bool]) -> int:
        """Where an answer reported only at its end began: the stream's previous frame, else its own time."""
        return min(self._clock.previous_ns, ts[0]) if self._clock.previous_ns is not None else ts[0]

    def _artifact_update(self, frame: Frame, u: dict[str, Any]) -> list[AgentEvent]:
        ts = self._clock.time(None)
        # Producers put their metadata on the update or on the artifact itself: both are read.
        metadata = {**obj(obj(u, "artifact"), "metadata"), **obj(u, "metadata")}
        task, out = self._task_for(text(u, "taskId"), text(u, "contextId"), metadata, ts, frame)
        artifact = task.artifact_chunk(u, ts[0])
        if artifact is None:
            return out
        ident = f"{task.run_id}/{artifact.artifact_id}"
        usage = gemini_usage(metadata.get("adk_usage_metadata"))
        author = text(metadata, "adk_author")
        if usage is None:
            out.append(
                self._event(
                    task,
                    EventKind.MESSAGE,
                    "artifactUpdate",
                    ts,
                    frame,
                    text=artifact.text,
                    name=artifact.name,
                    agent=author,
                    event_id=ident,
                )
            )
            return out
        start = (artifact.first_ns, ts[1])
        ids = (f"{ident}#start", ident)
        return out + self._answer(
            task, "artifactUpdate", start, ts, frame, artifact.artifact_id, usage, artifact.text, author, ids
        )

    def _message_result(self, frame: Frame, m: dict[str, Any]) -> list[AgentEvent]:
        """A message instead of a task: the agent's whole answer, and the end of its run."""
        ts = self._clock.time(None)
        metadata = obj(m, "metadata")
        task, out = self._task_for(text(m, "taskId"), text(m, "contextId"), metadata, ts, frame)
        out.extend(self._agent_message(task, m, metadata, ts, frame))
        out.extend(self._end(task, "completed", ts, None))
        return out

    def _terminal(
        self, task: Task, state: str, status: dict[str, Any], ts: tuple[int, bool], frame: Frame, *, final: bool = False
    ) -> list[AgentEvent]:
        if state in FINISHED or state in FAILED or state in INTERRUPTED or final:
            return self._end(task, state, ts, frame, error=parts_text(obj(status, "message")))
        return []

    def _end(
        self, task: Task, state: str, ts: tuple[int, bool], frame: Frame | None, error: str | None = None
    ) -> list[AgentEvent]:
        if task.ended:
            return []
        task.ended = True
        out: list[AgentEvent] = []
        failed = state in FAILED
        # A call still open when a task pauses or completes: its end is not known. When the task failed,
        # the call never gets a response: the task's failure is its end.
        for call_id, name in task.calls.fail_all() if failed else ():
            out.append(
                self._event(
                    task,
                    EventKind.TOOL_FAILED,
                    "statusUpdate",
                    ts,
                    None,
                    call_id=call_id,
                    tool_name=name,
                    error=error or state,
                    error_type=task.error_code or state,
                )
            )
        out.append(self._stream_end(task, ts, state))
        if state in INTERRUPTED:
            return out  # the task waits for the client: its run goes on with the next message
        fields: EventFields = {"status": state, "agent": task.agent}
        if failed:
            fields["error"], fields["error_type"] = error or state, task.error_code or state
        kind = EventKind.RUN_FAILED if failed else EventKind.RUN_FINISHED
        out.append(self._event(task, kind, "statusUpdate", ts, frame, **fields))
        return out

    def _error(self, frame: Frame, d: dict[str, Any]) -> list[AgentEvent]:
        """A JSON-RPC error: it fails the task of this stream, if there is one."""
        err = d.get("error")
        message = text(err, "message") if isinstance(err, dict) else opt_str(d, "error")
        code = opt_str(err, "code") if isinstance(err, dict) else None
        ts = self._clock.time(None)
        # Before any task, the error is the stream's: a run of its own, with no stream span to end.
        task = self._current or self._tasks.setdefault(self._stream_run(), Task(self._stream_run()))
        out = [self._event(task, EventKind.ERROR, "error", ts, frame, error=message or "error", error_type=code)]
        if not task.ended and task.method is not None:
            task.error_code = task.error_code or code
            out.extend(self._end(task, "failed", ts, None, error=message))
        return out


DIALECT = A2aDialect()
