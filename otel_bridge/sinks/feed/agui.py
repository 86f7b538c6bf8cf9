"""``GET /v1/stream?format=ag-ui``: the feed re-expressed as AG-UI 1.0 events.

Each canonical event becomes one or more AG-UI events (camelCase JSON on
``data:`` lines, as AG-UI clients read them), every one carrying the trace in
``metadata`` (``traceId``, ``spanId``, ``parentSpanId``, the feed ``seq``, the
canonical ``kind``, the original dialect and type). Only the last frame of a
group carries the SSE ``id:``, so a client's Last-Event-ID never points into the
middle of one event's group.

| canonical | AG-UI |
|---|---|
| run.started / run.finished / run.failed | RUN_STARTED / RUN_FINISHED / RUN_ERROR |
| step.*, agent.* | STEP_STARTED / STEP_FINISHED (an agent's step is named after it) |
| llm.started, llm.chunk with text, llm.completed / .failed | TEXT_MESSAGE_START, _CONTENT, _END (id: the LLM span) |
| message with text | TEXT_MESSAGE_START + _CONTENT + _END |
| tool.started, tool.completed / tool.failed | TOOL_CALL_START (+ _ARGS), TOOL_CALL_END (+ TOOL_CALL_RESULT) |
| status.changed | STATE_DELTA ``add /status`` |
| anything else (and chunks without captured text) | CUSTOM, named by the kind, valued by the canonical record |

AG-UI clients reject an END without its START, so the format remembers which
messages and tool calls the feed has opened (bounded, oldest forgotten first):
an end whose start the feed never showed is preceded by a synthesised start.
The names below are AG-UI's own (a foreign protocol, like a dialect's).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.model import EventKind
from otel_bridge.sinks.feed import FeedItem, FeedRecord, sse

NAME = "ag-ui"
_MAX_OPEN = 10_000
"""Messages and tool calls remembered as open (for START synthesis); the oldest is forgotten first."""
_NEEDS_START = "needs_start"

_OPENERS = frozenset({EventKind.LLM_STARTED, EventKind.TOOL_STARTED})
_CLOSERS = frozenset({EventKind.LLM_COMPLETED, EventKind.LLM_FAILED, EventKind.TOOL_COMPLETED, EventKind.TOOL_FAILED})
_LLM = frozenset({EventKind.LLM_STARTED, EventKind.LLM_CHUNK, EventKind.LLM_COMPLETED, EventKind.LLM_FAILED})
_TOOLS = frozenset({EventKind.TOOL_STARTED, EventKind.TOOL_COMPLETED, EventKind.TOOL_FAILED})

_encoder = msgspec.json.Encoder()

Event = dict[str, Any]


def _message_id(record: FeedRecord) -> str:
    return record.span_id


def _tool_call_id(record: FeedRecord) -> str:
    return record.call_id or record.span_id


def _open_id(kind: EventKind, record: FeedRecord) -> str | None:
    if kind in _LLM:
        return "m:" + _message_id(record)
    if kind in _TOOLS:
        return "t:" + _tool_call_id(record)
    return None


def metadata(record: FeedRecord) -> dict[str, Any]:
    """Where the event sits in the trace, in AG-UI's open ``metadata`` object."""
    meta: dict[str, Any] = {
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


def translate(record: FeedRecord, kind: EventKind, needs_start: bool = False) -> list[Event]:
    """One canonical event as AG-UI events (without ``timestamp``/``metadata``, added by :func:`events_for`)."""
    thread_id = record.conversation_id or record.run_id
    if kind is EventKind.RUN_STARTED:
        started: Event = {"type": "RUN_STARTED", "threadId": thread_id, "runId": record.run_id}
        if record.parent_run_id is not None:
            started["parentRunId"] = record.parent_run_id
        return [started]
    if kind is EventKind.RUN_FINISHED:
        return [{"type": "RUN_FINISHED", "threadId": thread_id, "runId": record.run_id}]
    if kind is EventKind.RUN_FAILED:
        failed: Event = {"type": "RUN_ERROR", "message": record.error or "run failed"}
        if record.error_type is not None:
            failed["code"] = record.error_type
        return [failed]
    if kind in (EventKind.STEP_STARTED, EventKind.AGENT_STARTED):
        return [{"type": "STEP_STARTED", "stepName": _step_name(record, kind)}]
    if kind in (EventKind.STEP_FINISHED, EventKind.AGENT_FINISHED, EventKind.AGENT_FAILED):
        return [{"type": "STEP_FINISHED", "stepName": _step_name(record, kind)}]
    if kind in _LLM:
        return _text_message(record, kind, needs_start)
    if kind in _TOOLS:
        return _tool_call(record, kind, needs_start)
    if kind is EventKind.MESSAGE and record.text:
        message_id = f"{record.span_id}:{record.seq}"
        return [
            {"type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant"},
            {"type": "TEXT_MESSAGE_CONTENT", "messageId": message_id, "delta": record.text},
            {"type": "TEXT_MESSAGE_END", "messageId": message_id},
        ]
    if kind is EventKind.STATUS_CHANGED and record.status is not None:
        return [{"type": "STATE_DELTA", "delta": [{"op": "add", "path": "/status", "value": record.status}]}]
    return [_custom(record)]


def _step_name(record: FeedRecord, kind: EventKind) -> str:
    if kind in (EventKind.AGENT_STARTED, EventKind.AGENT_FINISHED, EventKind.AGENT_FAILED):
        return record.agent or record.name or "agent"
    return record.name or "step"


def _custom(record: FeedRecord) -> Event:
    return {"type": "CUSTOM", "name": record.kind, "value": msgspec.to_builtins(record)}


def _text_message(record: FeedRecord, kind: EventKind, needs_start: bool) -> list[Event]:
    message_id = _message_id(record)
    out: list[Event] = []
    if kind is EventKind.LLM_STARTED or needs_start:
        out.append({"type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant"})
    if kind is EventKind.LLM_CHUNK:
        if record.text:
            out.append({"type": "TEXT_MESSAGE_CONTENT", "messageId": message_id, "delta": record.text})
        elif not out:
            out.append(_custom(record))  # a chunk whose text is not captured
    elif kind in (EventKind.LLM_COMPLETED, EventKind.LLM_FAILED):
        if needs_start and record.text:  # the text was never streamed: say it now
            out.append({"type": "TEXT_MESSAGE_CONTENT", "messageId": message_id, "delta": record.text})
        out.append({"type": "TEXT_MESSAGE_END", "messageId": message_id})
    return out


def _tool_call(record: FeedRecord, kind: EventKind, needs_start: bool) -> list[Event]:
    call_id = _tool_call_id(record)
    out: list[Event] = []
    if kind is EventKind.TOOL_STARTED or needs_start:
        out.append({"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": record.tool_name or "tool"})
        if record.arguments:
            out.append({"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": record.arguments})
    if kind is not EventKind.TOOL_STARTED:
        out.append({"type": "TOOL_CALL_END", "toolCallId": call_id})
        content = record.result if record.result is not None else record.error
        if content is not None:
            out.append(
                {
                    "type": "TOOL_CALL_RESULT",
                    "messageId": f"{call_id}:result",
                    "toolCallId": call_id,
                    "content": content,
                    "role": "tool",
                }
            )
    return out


def events_for(record: FeedRecord, kind: EventKind, needs_start: bool = False) -> list[Event]:
    """:func:`translate`, each event stamped with the time (ms) and the trace metadata."""
    events = translate(record, kind, needs_start)
    meta = metadata(record)
    timestamp_ms = record.timestamp_ns // 1_000_000
    for event in events:
        event["timestamp"] = timestamp_ms
        event["metadata"] = meta
    return events


class AguiFormat:
    """The AG-UI form of the feed, plugged into :class:`otel_bridge.sinks.feed.Feed` as a :class:`FeedFormat`."""

    name = NAME

    def __init__(self, max_open: int = _MAX_OPEN) -> None:
        self._open: OrderedDict[str, None] = OrderedDict()
        self._max_open = max_open

    def observe(self, item: FeedItem) -> None:
        kind = item.kind
        if kind not in _LLM and kind not in _TOOLS:
            return
        key = _open_id(kind, item.record)
        assert key is not None
        if kind in _OPENERS:
            self._remember(key)
        elif kind in _CLOSERS:
            if key in self._open:
                del self._open[key]
            else:
                item.notes = {_NEEDS_START: True}
        elif key not in self._open:  # a chunk of a call whose start was not seen
            self._remember(key)
            item.notes = {_NEEDS_START: True}

    def _remember(self, key: str) -> None:
        self._open[key] = None
        if len(self._open) > self._max_open:
            self._open.popitem(last=False)

    def frame(self, item: FeedItem) -> bytes:
        needs_start = bool(item.notes and item.notes.get(_NEEDS_START))
        events = events_for(item.record, item.kind, needs_start)
        parts = [sse.frame(_encoder.encode(event), split_lines=False) for event in events[:-1]]
        parts.append(sse.frame(_encoder.encode(events[-1]), event_id=item.wire_id, split_lines=False))
        return b"".join(parts)

    def notice(self, event: str, body: Mapping[str, object]) -> bytes:
        custom = {"type": "CUSTOM", "name": sc.FEED_CUSTOM_PREFIX + event, "value": dict(body)}
        return sse.frame(_encoder.encode(custom), split_lines=False)
