"""The LangGraph Platform API's run streams (``runs/stream``, ``langgraph dev``).

SSE with the stream mode as the event name: ``metadata {run_id}`` first,
then ``events`` (astream_events v2: ``{event, name, run_id, parent_ids,
metadata, data}``), ``messages`` (messages-tuple: ``[message chunk,
metadata]``), ``updates`` (``{node: {messages: [...]}}``), ``values``,
``custom``…, and ``error {error, message}`` when the run fails. No
timestamps.

Mapping:

* One platform run = one run (run id from ``metadata``, else the root
  chain's ``run_id``), named after the graph (the root chain's name, else
  ``lc_agent_name`` / ``graph_id``); ``thread_id`` is the conversation.
* ``events`` mode: ``on_chat_model_start/end`` (and ``on_llm_*``) are a
  ``chat`` span (model from ``ls_model_name``, provider from ``ls_provider``,
  response model, finish reason and usage from the output message; usage
  that also appeared on a stream chunk is counted once);
  ``on_chat_model_stream`` its chunks; ``on_tool_start/end/error`` an
  ``execute_tool`` span, its call id matched to the model's ``tool_calls``
  by name and arguments (a ToolMessage with ``status: "error"`` fails it).
  Node chains (``metadata.langgraph_node``) are not GenAI operations: they
  open no span. The root chain's end ends the run, its error fails it.
* ``messages`` + ``updates`` modes: a message's chunks are one ``chat`` span
  (keyed by message id, started at its first chunk); the full AI message in
  ``updates`` (or the chunk marked ``chunk_position: last``) ends it, once,
  and starts the tool calls it asked for; ToolMessages end them.
* ``values`` is a state change; other modes are span events.
* Nested graphs (subgraphs; ``stream_subgraphs`` names their frames
  ``mode|node:<task id>``, and every frame's ``langgraph_checkpoint_ns`` says
  the path): each subgraph invocation is a nested ``invoke_agent`` span under
  the agent of the graph that ran it (:mod:`._langgraph_nesting` says when it
  opens and ends); its model and tool calls nest under it. The run stays named
  after the root graph, and the messages the parent's ``updates`` repeat are
  mapped once (usage counted once).

The wire readers are in :mod:`._langgraph_wire`, the model calls in
:mod:`._langgraph_calls`, the tool calls and their events in :mod:`._langgraph_tools`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Unpack

from otel_bridge import semconv as sc
from otel_bridge.dialects._langgraph_calls import Call
from otel_bridge.dialects._langgraph_nesting import AgentChange, NestedGraphs
from otel_bridge.dialects._langgraph_tools import ToolCalls, ToolEvent
from otel_bridge.dialects._langgraph_wire import (
    AI_TYPES,
    CHAT_END,
    CHAT_ERROR,
    CHAT_START,
    CHAT_STREAM,
    MODES,
    TOOL_TYPES,
    claims,
    error_of,
    message_text,
    namespace_of,
    provider_from,
    split_mode,
)
from otel_bridge.dialects._shapes import obj, objects, text
from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    StreamContext,
    make_event,
    opt_str,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind

NAME = "langgraph"


class LangGraphDialect:
    name = NAME

    def sniff(self, frame: Frame, obj_: Any) -> bool:
        return claims(frame.event, obj_)

    def decoder(self, ctx: StreamContext) -> LangGraphDecoder:
        return LangGraphDecoder(ctx)


@dataclass
class _Run:
    run_id: str
    ended: bool = False
    agent: str | None = None
    conversation: str | None = None
    calls: dict[str, Call] = field(default_factory=dict)  # open chat calls by run id or message id
    done_calls: set[str] = field(default_factory=set)  # chat calls already ended (updates repeat them)
    tools: ToolCalls = field(default_factory=ToolCalls)
    root: str | None = None  # the root chain's LangChain run id
    graphs: NestedGraphs = field(default_factory=NestedGraphs)  # subgraphs open and ended
    saw_updates: bool = False  # the updates mode says when a node (and a subgraph it ran) is done


class LangGraphDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._run: _Run | None = None
        self._namespace: tuple[str, ...] = ()  # the subgraph the current frame's SSE event name says

    def _event(
        self, run: _Run, kind: EventKind, original_type: str, frame: Frame | None, **fields: Unpack[EventFields]
    ) -> AgentEvent:
        fields.setdefault("inferred", frame is None)
        fields.setdefault("conversation_id", run.conversation)
        ts = self._ctx.arrival_ns()
        return make_event(self._ctx, NAME, run.run_id, kind, original_type, ts, frame, False, **fields)

    def close(self) -> list[AgentEvent]:
        """A stream that ends without an error ends its run (the messages and updates modes say no more)."""
        run = self._run
        if run is None or run.ended:
            return []
        return self._finish(run, None, None)

    def feed(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        mode, self._namespace = split_mode(frame.event)
        if mode is None and isinstance(obj_, dict) and isinstance(obj_.get("event"), str):
            mode = "events"  # astream_events output without the platform's SSE names
        handler = _HANDLERS.get(mode or "")
        if handler is None:
            if mode is not None and (mode in MODES or "/" in mode):
                return [self._event(self._ensure_run(None, frame, []), EventKind.CUSTOM, mode, frame, name=mode)]
            raise DecodeError(f"langgraph: unknown stream mode {mode!r}")
        return handler(self, frame, obj_)

    # -- runs ------------------------------------------------------------------
    def _ensure_run(
        self, run_id: str | None, frame: Frame | None, out: list[AgentEvent], metadata: dict[str, Any] | None = None
    ) -> _Run:
        """The run this frame belongs to; a new one is started (and an ended one finished) when it changes."""
        run = self._run
        if run is None or (run_id is not None and run_id != run.run_id and run.ended):
            if run is not None and not run.ended:
                out.extend(self._finish(run, None, None))
            run = self._run = _Run(run_id or self._ctx.run_id or self._ctx.stream_key)
            out.append(self._event(run, EventKind.RUN_STARTED, "metadata", frame))
        if metadata:
            # A subgraph's frames name the subgraph's agent: the run is the root graph's.
            named = text(metadata, "lc_agent_name") if not namespace_of(metadata) else None
            agent = named or text(metadata, "graph_id")
            conversation = text(metadata, "thread_id")
            if (agent and run.agent is None) or (conversation and run.conversation is None):
                run.agent = run.agent or agent
                run.conversation = run.conversation or conversation
                out.append(self._event(run, EventKind.RUN_STARTED, "metadata", None, agent=run.agent))
        return run

    def _on_metadata(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        d = require_object(obj_, "langgraph metadata")
        out: list[AgentEvent] = []
        run_id = text(d, "run_id")
        if self._run is not None and run_id is not None and run_id != self._run.run_id and not self._run.ended:
            out.extend(self._finish(self._run, None, None))
        if self._run is None or self._run.ended or (run_id is not None and run_id != self._run.run_id):
            self._run = _Run(run_id or self._ctx.run_id or self._ctx.stream_key)
            out.append(self._event(self._run, EventKind.RUN_STARTED, "metadata", frame))
        return out

    def _finish(self, run: _Run, frame: Frame | None, error: tuple[str, str | None] | None) -> list[AgentEvent]:
        run.ended = True
        out: list[AgentEvent] = []
        for key, call in list(run.calls.items()):
            failure = error or ("the run ended before the model call did", sc.ERROR_INCOMPLETE)
            out.append(self._end_call(run, key, call, None, None, error=failure[0], error_type=failure[1]))
        out.extend(self._agents(run, run.graphs.leave_all(), None, error))
        if error is not None:
            out.append(
                self._event(
                    run, EventKind.RUN_FAILED, "error", frame, agent=run.agent, error=error[0], error_type=error[1]
                )
            )
        else:
            out.append(self._event(run, EventKind.RUN_FINISHED, "end", frame, agent=run.agent))
        return out

    def _on_error(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        d = obj_ if isinstance(obj_, dict) else {"message": obj_}
        out: list[AgentEvent] = []
        run = self._ensure_run(None, frame, out)
        message = opt_str(d, "message") or opt_str(d, "error") or "error"
        if run.ended:
            out.append(self._event(run, EventKind.ERROR, "error", frame, error=message, error_type=text(d, "error")))
            return out
        out.extend(self._finish(run, frame, (message, text(d, "error"))))
        return out

    def _on_end(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        run = self._run
        if run is None or run.ended:
            return []
        return self._finish(run, frame, None)

    # -- events mode ---------------------------------------------------------------
    def _on_events(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        d = require_object(obj_, "langgraph event")
        event = opt_str(d, "event")
        if event is None:
            raise DecodeError("langgraph: an event needs an 'event'")
        metadata = obj(d, "metadata")
        lc_run = text(d, "run_id")
        parents = d.get("parent_ids")
        out: list[AgentEvent] = []
        is_root = parents == [] and event.startswith("on_chain_")
        run_id = text(metadata, "run_id") or (lc_run if is_root else None)
        if is_root and self._run is not None and not self._run.ended and self._run.root is None:
            run_id = self._run.run_id  # the platform's run: its root chain is the graph
        run = self._ensure_run(run_id, frame, out, metadata)
        if is_root:
            return out + self._root_chain(run, event, d, lc_run, frame)
        node_ns = text(metadata, "langgraph_checkpoint_ns")
        if event in ("on_chain_end", "on_chain_error") and node_ns in run.graphs.open:
            # The chain of the node that ran a subgraph (or the subgraph's own root chain) ended: so did it.
            failure = error_of(obj(d, "data").get("error")) if event == "on_chain_error" else None
            return out + self._agents(run, run.graphs.leave(node_ns), frame, failure)
        out.extend(self._enter(run, namespace_of(metadata), metadata, frame))
        key = lc_run or "call"
        if event in CHAT_START:
            out.extend(self._start_call(run, key, metadata, frame, "events"))
        elif event in CHAT_STREAM:
            out.extend(self._chunk(run, key, obj(obj(d, "data"), "chunk"), metadata, frame))
        elif event in CHAT_END:
            output = obj(obj(d, "data"), "output")
            call = run.calls.get(key) or Call(text(metadata, "ls_model_name"), provider_from(metadata))
            call.fold(output)
            out.append(self._end_call(run, key, call, frame, output))
        elif event in CHAT_ERROR:
            call = run.calls.get(key) or Call(text(metadata, "ls_model_name"), provider_from(metadata))
            error, error_type = error_of(obj(d, "data").get("error"))
            out.append(self._end_call(run, key, call, frame, None, error=error, error_type=error_type))
        elif event == "on_tool_start":
            out.extend(
                self._emit(run, run.tools.tool_started(key, text(d, "name"), obj(d, "data").get("input"), frame))
            )
        elif event in ("on_tool_end", "on_tool_error"):
            out.extend(self._emit(run, run.tools.tool_ended(key, event, d, frame)))
        elif event == "on_chain_error":
            error, error_type = error_of(obj(d, "data").get("error"))
            out.append(
                self._event(
                    run,
                    EventKind.ERROR,
                    event,
                    frame,
                    error=error,
                    error_type=error_type,
                    name=text(metadata, "langgraph_node"),
                )
            )
        elif event == "on_chain_start":
            run.tools.note(obj(d, "data").get("input"), None)
        elif event == "on_custom_event":
            out.append(self._event(run, EventKind.CUSTOM, event, frame, name=text(d, "name") or event))
        # Node chains' other events (on_chain_stream/end) and retriever/prompt events open no span.
        return out

    def _root_chain(
        self, run: _Run, event: str, d: dict[str, Any], lc_run: str | None, frame: Frame
    ) -> list[AgentEvent]:
        if event == "on_chain_start":
            run.root = lc_run
            name = text(d, "name")
            run.agent = name or run.agent
            return [self._event(run, EventKind.RUN_STARTED, event, frame, agent=run.agent)]
        if event == "on_chain_end":
            return [] if run.ended else self._finish(run, frame, None)
        if event == "on_chain_error":
            error, error_type = error_of(obj(d, "data").get("error"))
            return [] if run.ended else self._finish(run, frame, (error, error_type))
        return []

    # -- chat calls ----------------------------------------------------------------
    def _start_call(
        self, run: _Run, key: str, metadata: dict[str, Any], frame: Frame | None, original: str
    ) -> list[AgentEvent]:
        if key in run.calls or key in run.done_calls:
            return []
        call = run.calls[key] = Call(text(metadata, "ls_model_name"), provider_from(metadata))
        return [self._event(run, EventKind.LLM_STARTED, original, frame, **call.start_fields(key, metadata))]

    def _chunk(
        self, run: _Run, key: str, chunk: dict[str, Any], metadata: dict[str, Any], frame: Frame
    ) -> list[AgentEvent]:
        out = self._start_call(run, key, metadata, None, "messages") if key not in run.calls else []
        call = run.calls.get(key)
        if call is None:
            return out  # a chunk of a call already ended
        call.fold(chunk)
        said = message_text(chunk)
        if said is not None:
            call.text.append(said)
        out.append(self._event(run, EventKind.LLM_CHUNK, "chunk", frame, call_id=key, text=said))
        return out

    def _end_call(
        self,
        run: _Run,
        key: str,
        call: Call,
        frame: Frame | None,
        output: dict[str, Any] | None,
        *,
        error: str | None = None,
        error_type: str | None = None,
    ) -> AgentEvent:
        run.calls.pop(key, None)
        run.done_calls.add(key)
        fields = call.end_fields(key)
        if error is not None:
            fields["error"], fields["error_type"] = error, error_type
            return self._event(run, EventKind.LLM_FAILED, "end", frame, **fields)
        said = (message_text(output) if output else None) or "".join(call.text) or None
        if output:
            run.tools.note(output.get("tool_calls"), key)
        run.tools.note_streamed(call.tool_calls, key)
        fields["text"] = said
        return self._event(run, EventKind.LLM_COMPLETED, "end", frame, **fields)

    def _emit(self, run: _Run, events: list[ToolEvent]) -> list[AgentEvent]:
        """The tool events :class:`ToolCalls` built, made in ``run``."""
        return [self._event(run, kind, original, frame, **fields) for kind, original, frame, fields in events]

    # -- messages and updates modes -------------------------------------------------
    def _on_messages(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        if not isinstance(obj_, list) or not obj_ or not isinstance(obj_[0], dict):
            raise DecodeError("langgraph: a messages frame is [message, metadata]")
        message = obj_[0]
        metadata = obj_[1] if len(obj_) > 1 and isinstance(obj_[1], dict) else {}
        out: list[AgentEvent] = []
        run = self._ensure_run(text(metadata, "run_id") if self._run is None else None, frame, out, metadata)
        namespace = namespace_of(metadata) if "langgraph_checkpoint_ns" in metadata else self._namespace
        if not run.saw_updates:
            out.extend(self._agents(run, run.graphs.leave_outside(namespace), None, None))
        out.extend(self._enter(run, namespace, metadata, frame))
        kind = text(message, "type")
        if kind in TOOL_TYPES:
            return out + self._emit(run, run.tools.tool_message(message, frame))
        if kind not in AI_TYPES:
            return [*out, self._event(run, EventKind.MESSAGE, "messages", frame, text=message_text(message))]
        key = text(message, "id") or "message"
        if key in run.done_calls:
            return out
        out.extend(self._chunk(run, key, message, metadata, frame))
        if message.get("chunk_position") == "last" or kind != "AIMessageChunk":
            call = run.calls.get(key)
            if call is not None:
                out.append(self._end_call(run, key, call, None, None))
                out.extend(self._emit(run, run.tools.requested_started(key)))
        return out

    def _on_updates(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        d = require_object(obj_, "langgraph updates")
        out: list[AgentEvent] = []
        run = self._ensure_run(None, frame, out)
        run.saw_updates = True
        out.extend(self._enter(run, self._namespace, {}, frame))
        mapped = len(out)
        for node, update in d.items():
            updates = update if isinstance(update, list) else [update]
            for u in updates:
                for message in objects(u, "messages"):
                    out.extend(self._full_message(run, message, frame))
            if node == "__interrupt__":
                out.append(self._event(run, EventKind.STATUS_CHANGED, "updates", frame, status="interrupted"))
        nothing = len(out) == mapped
        for node in d:  # the parent's update of a node that ran a subgraph: the subgraph is done
            out.extend(self._agents(run, run.graphs.node_done(self._namespace, str(node)), frame, None))
        if nothing:
            out.append(self._event(run, EventKind.STATE_CHANGED, "updates", frame, name=",".join(map(str, d))))
        return out

    def _full_message(self, run: _Run, message: dict[str, Any], frame: Frame) -> list[AgentEvent]:
        kind = text(message, "type")
        if kind in TOOL_TYPES:
            return self._emit(run, run.tools.tool_message(message, frame))
        if kind not in AI_TYPES:
            return []
        key = text(message, "id") or "message"
        out: list[AgentEvent] = []
        if key not in run.done_calls:
            if key not in run.calls:
                # Only the updates mode: the whole answer is all there is of the call.
                out.extend(self._start_call(run, key, {}, None, "updates"))
            call = run.calls[key]
            call.fold(message)
            out.append(self._end_call(run, key, call, frame, message))
        else:
            run.tools.note(message.get("tool_calls"), key)
        out.extend(self._emit(run, run.tools.requested_started(key)))
        return out

    # -- nested graphs -------------------------------------------------------------------
    def _enter(self, run: _Run, namespace: tuple[str, ...], metadata: dict[str, Any], frame: Frame) -> list[AgentEvent]:
        changes = run.graphs.enter(namespace, text(metadata, "lc_agent_name")) if namespace else []
        return self._agents(run, changes, frame, None)

    def _agents(
        self, run: _Run, changes: list[AgentChange], frame: Frame | None, error: tuple[str, str | None] | None
    ) -> list[AgentEvent]:
        """Nested agent spans opening and ending (a subgraph's failure fails the agents it ends)."""
        out: list[AgentEvent] = []
        for change in changes:
            if change.started:
                kind = EventKind.AGENT_STARTED
            else:
                kind = EventKind.AGENT_FAILED if error is not None else EventKind.AGENT_FINISHED
            fields: EventFields = {"call_id": change.key, "agent": change.agent, "name": change.node}
            if error is not None and not change.started:
                fields["error"], fields["error_type"] = error
            out.append(self._event(run, kind, "subgraph", frame if change.started else None, **fields))
        return out

    def _on_values(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        out: list[AgentEvent] = []
        run = self._ensure_run(None, frame, out)
        out.append(self._event(run, EventKind.STATE_CHANGED, "values", frame))
        return out


_Handler = Callable[[LangGraphDecoder, Frame, Any], list[AgentEvent]]
# One handler per stream mode (the SSE event name); other known modes are span events.
_HANDLERS: dict[str, _Handler] = {
    "metadata": LangGraphDecoder._on_metadata,
    "events": LangGraphDecoder._on_events,
    "messages": LangGraphDecoder._on_messages,
    "updates": LangGraphDecoder._on_updates,
    "values": LangGraphDecoder._on_values,
    "error": LangGraphDecoder._on_error,
    "end": LangGraphDecoder._on_end,
}


DIALECT = LangGraphDialect()
