"""``/v1/stream?format=ag-ui``: the feed as AG-UI 1.0 runs that a stock AG-UI client accepts.

An AG-UI client (``@ag-ui/client``: its schema check, ``verifyEvents`` and
``defaultApplyEvents``) takes one run per stream and rejects the whole stream at
the first event out of place. So each producer run is shown as AG-UI runs (one
per generation, :mod:`.runs`), kept at publish time in publish order:

* ``RUN_STARTED`` first: the producer's own, or one synthesised (with ``threadId``
  and ``runId``) before a run's first event; with content capture off, a ``CUSTOM``
  ``otel_bridge.content_not_captured`` notice follows it, so a UI can say why its
  bubbles stay empty.
* Every text message, tool call and step still open is closed before
  ``RUN_FINISHED`` / ``RUN_ERROR``, and nothing of a run follows its end (late
  events are held back and counted).
* Every event carries ``threadId`` and ``runId`` in its ``metadata``, with where it
  sits in the trace (``traceId``, ``spanId``, ``parentSpanId``, the feed ``seq``,
  the canonical ``kind``, the dialect and original type).
* Ids are unique per run: messages are named after their LLM span, tool calls
  after their span (or, for a tool the model asked for, its LLM span and the
  producer's call id), so producer ids that repeat across runs never collide.

| canonical | AG-UI |
|---|---|
| run.started / run.finished / run.failed | RUN_STARTED / RUN_FINISHED / RUN_ERROR |
| step.*, agent.* | STEP_STARTED / STEP_FINISHED (an agent's step is named after it; an open name gets the span id) |
| llm.chunk with text | TEXT_MESSAGE_START (first), TEXT_MESSAGE_CONTENT |
| llm.completed / .failed | TEXT_MESSAGE_END, or START + CONTENT + END with a text that was never streamed |
| tool.requested (raw provider streams) | TOOL_CALL_START (``parentMessageId``: the LLM's message) + ARGS + END |
| tool.started | TOOL_CALL_START (+ ARGS + END when the arguments are known) |
| tool.completed / .failed | (ARGS +) END when still open, then TOOL_CALL_RESULT (the result, or the error) |
| thinking with text | REASONING_START, REASONING_MESSAGE_START / _CONTENT / _END, REASONING_END |
| ag-ui STATE_SNAPSHOT / STATE_DELTA | passed through (content) |
| status.changed | STATE_DELTA ``add /status`` |
| message with text | TEXT_MESSAGE_START + _CONTENT + _END |
| anything else (and llm.failed besides its message) | CUSTOM, named by the kind, valued by the canonical record |

Tool arguments are JSON (a producer's non-JSON arguments become a JSON string).
Only the last frame of an event's group carries the SSE ``id:``, so a client's
Last-Event-ID never points into the middle of one. Feed notices (``missed``,
``lagged``) are SSE comments, which clients ignore, so a resumed stream still
opens with ``RUN_STARTED``. The names below are AG-UI's own (a foreign protocol,
like a dialect's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.model import EventKind
from otel_bridge.sinks.feed import FeedItem, FeedRecord, sse
from otel_bridge.sinks.feed.runs import END_OF_RUN, MAX_PENDING, MAX_RUNS, LazyRunFormat, RunState

NAME = "ag-ui"
CONTENT_NOT_CAPTURED = sc.FEED_CUSTOM_PREFIX + "content_not_captured"
"""The CUSTOM notice after RUN_STARTED when the sidecar does not capture content."""
CONTENT_NOT_CAPTURED_MESSAGE = (
    "otel-bridge does not capture content (mapping.capture_content is off): "
    "messages, tool arguments and results are not shown"
)

_STATE_TYPES = frozenset({"STATE_SNAPSHOT", "STATE_DELTA"})
_STEP_OPENERS = frozenset({EventKind.STEP_STARTED, EventKind.AGENT_STARTED})
_STEP_CLOSERS = frozenset({EventKind.STEP_FINISHED, EventKind.AGENT_FINISHED, EventKind.AGENT_FAILED})
_AGENT_KINDS = frozenset({EventKind.AGENT_STARTED, EventKind.AGENT_FINISHED, EventKind.AGENT_FAILED})

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

Event = dict[str, Any]


class _Tool:
    __slots__ = ("args_sent", "id", "open", "result_sent")

    def __init__(self, tool_call_id: str) -> None:
        self.id = tool_call_id
        self.open = True
        self.args_sent = False
        self.result_sent = False


class AguiRun(RunState):
    """One AG-UI run: what is open in it, so that its end can close it."""

    __slots__ = ("last_message", "open_texts", "steps", "streamed", "tools")

    def __init__(self, run_id: str, generation: int, thread_id: str, first_seq: int) -> None:
        super().__init__(run_id, generation, thread_id, first_seq)
        self.open_texts: dict[str, str] = {}  # LLM span id -> the open text message's id
        self.streamed: set[str] = set()  # LLM span ids whose text was shown
        self.tools: dict[str, _Tool] = {}  # producer call id (or span) -> the tool call shown
        self.steps: dict[str, str] = {}  # step/agent span id -> the open step's name, in opening order
        self.last_message: str | None = None


def metadata(record: FeedRecord, thread_id: str, run_id: str) -> dict[str, Any]:
    """Where the event sits: its run and thread, and the trace, in AG-UI's open ``metadata`` object."""
    meta: dict[str, Any] = {
        "threadId": thread_id,
        "runId": run_id,
        "traceId": record.trace_id,
        "spanId": record.span_id,
        "seq": record.seq,
        "kind": record.kind,
        "dialect": record.dialect,
        "originalType": record.original_type,
    }
    if record.parent_span_id is not None:
        meta["parentSpanId"] = record.parent_span_id
    if record.trace_url is not None:
        meta["traceUrl"] = record.trace_url
    if record.error is not None:
        meta["error"] = record.error
    if record.error_type is not None:
        meta["errorType"] = record.error_type
    return meta


def json_arguments(arguments: str) -> str:
    """Tool arguments as JSON text: as given when they parse, else as one JSON string."""
    try:
        _decoder.decode(arguments)
    except msgspec.DecodeError:
        return _encoder.encode(arguments).decode()
    return arguments


class AguiTranslator:
    """The AG-UI events of each feed event, given its run (the state machine of the module docstring)."""

    def __init__(self, content: bool) -> None:
        self._content = content

    def started(self, record: FeedRecord, kind: EventKind, run: AguiRun) -> list[Event]:
        started: Event = {"type": "RUN_STARTED", "threadId": run.thread_id, "runId": run.ui_run_id}
        if kind is EventKind.RUN_STARTED and record.parent_run_id is not None:
            started["parentRunId"] = record.parent_run_id
        out = [started]
        if not self._content:
            out.append(
                {"type": "CUSTOM", "name": CONTENT_NOT_CAPTURED, "value": {"message": CONTENT_NOT_CAPTURED_MESSAGE}}
            )
        return out

    def events(self, record: FeedRecord, kind: EventKind, run: AguiRun) -> list[Event]:
        """The events of one canonical event inside its (started) run; a run's end ends it."""
        if kind is EventKind.RUN_STARTED:
            return []  # the run was started already (synthesised before an earlier event)
        if kind is EventKind.RUN_FINISHED:
            return [*self.close(run), {"type": "RUN_FINISHED", "threadId": run.thread_id, "runId": run.ui_run_id}]
        if kind is EventKind.RUN_FAILED:
            failed: Event = {"type": "RUN_ERROR", "message": record.error or "run failed"}
            if record.error_type is not None:
                failed["code"] = record.error_type
            return [*self.close(run), failed]
        if kind in _STEP_OPENERS:
            return self._step_started(record, kind, run)
        if kind in _STEP_CLOSERS:
            name = run.steps.pop(record.span_id, None)
            if name is not None:
                return [{"type": "STEP_FINISHED", "stepName": name}]
            return [_custom(record)] if kind is EventKind.AGENT_FAILED else []
        if kind is EventKind.LLM_CHUNK:
            return self._text(record, run) if record.text else []
        if kind is EventKind.LLM_COMPLETED or kind is EventKind.LLM_FAILED:
            return self._completed(record, kind, run)
        if kind is EventKind.TOOL_REQUESTED:
            return self._requested(record, run)
        if kind is EventKind.TOOL_STARTED:
            return self._tool_started(record, run)
        if kind is EventKind.TOOL_COMPLETED or kind is EventKind.TOOL_FAILED:
            return self._tool_ended(record, kind, run)
        if kind is EventKind.THINKING:
            return _reasoning(record) if record.text else []
        if kind is EventKind.STATE_CHANGED:
            return [_state(record) or _custom(record)]
        if kind is EventKind.STATUS_CHANGED and record.status is not None:
            return [{"type": "STATE_DELTA", "delta": [{"op": "add", "path": "/status", "value": record.status}]}]
        if kind is EventKind.MESSAGE and record.text:
            return _whole_message(f"msg-{record.span_id}-{record.seq}", record.text)
        if kind is EventKind.LLM_STARTED:
            return []  # its message opens with its first text, so a call without text shows no empty bubble
        return [_custom(record)]

    def close(self, run: AguiRun) -> list[Event]:
        """End what is still open in ``run``: text messages, tool calls, then steps innermost first."""
        out: list[Event] = [{"type": "TEXT_MESSAGE_END", "messageId": mid} for mid in run.open_texts.values()]
        run.open_texts.clear()
        for tool in run.tools.values():
            if tool.open:
                tool.open = False
                out.append({"type": "TOOL_CALL_END", "toolCallId": tool.id})
        out.extend({"type": "STEP_FINISHED", "stepName": name} for name in reversed(run.steps.values()))
        run.steps.clear()
        return out

    def _step_started(self, record: FeedRecord, kind: EventKind, run: AguiRun) -> list[Event]:
        if record.span_id in run.steps:
            return []
        name = (record.agent or record.name or "agent") if kind in _AGENT_KINDS else (record.name or "step")
        if name in run.steps.values():  # AG-UI refuses a second open step of one name
            name = f"{name} [{record.span_id}]"
        run.steps[record.span_id] = name
        return [{"type": "STEP_STARTED", "stepName": name}]

    def _text(self, record: FeedRecord, run: AguiRun) -> list[Event]:
        key = record.span_id
        out: list[Event] = []
        message_id = run.open_texts.get(key)
        if message_id is None:
            message_id = f"msg-{key}" if key not in run.streamed else f"msg-{key}-{record.seq}"
            run.open_texts[key] = message_id
            run.streamed.add(key)
            run.last_message = message_id
            out.append({"type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant"})
        out.append({"type": "TEXT_MESSAGE_CONTENT", "messageId": message_id, "delta": record.text})
        return out

    def _completed(self, record: FeedRecord, kind: EventKind, run: AguiRun) -> list[Event]:
        key = record.span_id
        out: list[Event] = []
        message_id = run.open_texts.pop(key, None)
        if message_id is not None:
            out.append({"type": "TEXT_MESSAGE_END", "messageId": message_id})
        elif record.text and key not in run.streamed:  # a completion whose text was never streamed
            run.streamed.add(key)
            run.last_message = f"msg-{key}"
            out.extend(_whole_message(run.last_message, record.text))
        if kind is EventKind.LLM_FAILED:
            out.append(_custom(record))
        return out

    def _requested(self, record: FeedRecord, run: AguiRun) -> list[Event]:
        key = record.call_id or f"{record.span_id}:{record.seq}"
        if key in run.tools:
            return []
        tool = run.tools[key] = _Tool(f"call-{record.span_id}-{key}")
        start: Event = {
            "type": "TOOL_CALL_START",
            "toolCallId": tool.id,
            "toolCallName": record.tool_name or "tool",
            "parentMessageId": f"msg-{record.span_id}",
        }
        out = [start, *self._args(record, tool)]
        tool.open = False
        out.append({"type": "TOOL_CALL_END", "toolCallId": tool.id})
        return out

    def _tool_started(self, record: FeedRecord, run: AguiRun) -> list[Event]:
        key = record.call_id or record.span_id
        if key in run.tools:  # the model's request was shown already: its result follows
            tool = run.tools[key]
            return self._args(record, tool) if tool.open else []
        tool = run.tools[key] = _Tool(f"call-{record.span_id}")
        start: Event = {"type": "TOOL_CALL_START", "toolCallId": tool.id, "toolCallName": record.tool_name or "tool"}
        if run.last_message is not None:
            start["parentMessageId"] = run.last_message
        out = [start, *self._args(record, tool)]
        if tool.args_sent:  # the arguments are complete: the call is, as far as AG-UI is concerned
            tool.open = False
            out.append({"type": "TOOL_CALL_END", "toolCallId": tool.id})
        return out

    def _tool_ended(self, record: FeedRecord, kind: EventKind, run: AguiRun) -> list[Event]:
        key = record.call_id or record.span_id
        tool = run.tools.get(key)
        out: list[Event] = []
        if tool is None:
            out.extend(self._tool_started(record, run))
            tool = run.tools[key]
        if tool.open:
            out.extend(self._args(record, tool))
            tool.open = False
            out.append({"type": "TOOL_CALL_END", "toolCallId": tool.id})
        content = record.result if record.result is not None else record.error
        if content is None and kind is EventKind.TOOL_FAILED:
            content = "tool failed"
        if content is not None and not tool.result_sent:
            tool.result_sent = True
            out.append(
                {
                    "type": "TOOL_CALL_RESULT",
                    "messageId": f"result-{tool.id}",
                    "toolCallId": tool.id,
                    "content": content,
                    "role": "tool",
                }
            )
        return out

    @staticmethod
    def _args(record: FeedRecord, tool: _Tool) -> list[Event]:
        if not record.arguments or tool.args_sent:
            return []
        tool.args_sent = True
        return [{"type": "TOOL_CALL_ARGS", "toolCallId": tool.id, "delta": json_arguments(record.arguments)}]


def _whole_message(message_id: str, text: str) -> list[Event]:
    return [
        {"type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": message_id, "delta": text},
        {"type": "TEXT_MESSAGE_END", "messageId": message_id},
    ]


def _reasoning(record: FeedRecord) -> list[Event]:
    block = f"reasoning-{record.span_id}-{record.seq}"
    message = f"{block}-message"
    return [
        {"type": "REASONING_START", "messageId": block},
        {"type": "REASONING_MESSAGE_START", "messageId": message, "role": "reasoning"},
        {"type": "REASONING_MESSAGE_CONTENT", "messageId": message, "delta": record.text},
        {"type": "REASONING_MESSAGE_END", "messageId": message},
        {"type": "REASONING_END", "messageId": block},
    ]


def _state(record: FeedRecord) -> Event | None:
    """An AG-UI producer's own state snapshot or delta, passed on (``None``: not one, or not captured)."""
    if record.state is None or record.dialect != NAME or record.original_type not in _STATE_TYPES:
        return None
    try:
        payload = _decoder.decode(record.state)
    except msgspec.DecodeError:  # cut to the content limit: not passed on half
        return None
    if not isinstance(payload, dict):
        return None
    if record.original_type == "STATE_SNAPSHOT" and "snapshot" in payload:
        return {"type": "STATE_SNAPSHOT", "snapshot": payload["snapshot"]}
    delta = payload.get("delta")
    if isinstance(delta, list) and all(isinstance(op, dict) and "op" in op and "path" in op for op in delta):
        return {"type": "STATE_DELTA", "delta": delta}
    return None


_RECORD = object()
"""A CUSTOM event's value until it is framed: the canonical record, encoded then (only if a UI asks)."""


def _custom(record: FeedRecord) -> Event:
    return {"type": "CUSTOM", "name": record.kind, "value": _RECORD}


class AguiFormat(LazyRunFormat[AguiRun]):
    """The AG-UI form of the feed, plugged into :class:`otel_bridge.sinks.feed.Feed` as a :class:`FeedFormat`."""

    name = NAME
    media_headers: dict[str, str] = {}

    def __init__(self, *, content: bool = False, max_runs: int = MAX_RUNS, max_pending: int = MAX_PENDING) -> None:
        super().__init__(AguiRun, max_runs, max_pending)
        self._translator = AguiTranslator(content)

    def _translate(self, record: FeedRecord, kind: EventKind, run: AguiRun, new: bool) -> list[Event]:
        events = self._translator.started(record, kind, run) if new else []
        events.extend(self._translator.events(record, kind, run))
        return events

    def frame(self, item: FeedItem) -> bytes:
        found = self._noted(item)
        if found is None:
            return b""
        (noted_events, thread_id, ui_run_id), ends = found
        record = item.record
        meta = metadata(record, thread_id, ui_run_id)
        timestamp_ms = record.timestamp_ns // 1_000_000
        parts = []
        last = len(noted_events) - 1
        for n, event in enumerate(noted_events):
            if event.get("value") is _RECORD:
                event = {**event, "value": msgspec.Raw(_encoder.encode(record))}
            encoded = _encoder.encode({**event, "timestamp": timestamp_ms, "metadata": meta})
            parts.append(sse.frame(encoded, event_id=item.wire_id if n == last else None, split_lines=False))
        if ends:
            parts.append(END_OF_RUN)
        return b"".join(parts)

    def notice(self, event: str, body: Mapping[str, object]) -> bytes:
        """An SSE comment: an AG-UI client ignores it, so it never stands where an event would be refused."""
        return sse.comment(sc.FEED_CUSTOM_PREFIX + event + " " + _encoder.encode(dict(body)).decode())
