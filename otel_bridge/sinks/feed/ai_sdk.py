"""``/v1/stream?format=ai-sdk``: the feed as the AI SDK's UI message stream (protocol ``v1``).

What a React ``useChat`` (or ``readUIMessageStream``) renders: one run is one
assistant message. Each chunk is one JSON object on a ``data:`` line, as the
``ai`` package's ``JsonToSseTransformStream`` writes them; a run ends with
``finish`` and ``data: [DONE]``. The response carries the header
``x-vercel-ai-ui-message-stream: v1``. Runs are kept as in AG-UI (:mod:`.runs`):
a start before a run's first event, everything open closed before its end,
nothing after it.

| canonical | UI message chunks |
|---|---|
| a run's first event | ``start`` (``messageId``: the run; ``messageMetadata``: trace, run, thread, agent) |
| llm.started (or its first text) | ``start-step`` |
| llm.chunk with text | ``text-start`` (first), ``text-delta`` |
| llm.completed / .failed | ``text-end`` (or the whole text, never streamed), ``data-otel``, ``finish-step`` |
| thinking with text | ``reasoning-start``, ``reasoning-delta``, ``reasoning-end`` |
| tool.requested, tool.started | ``tool-input-available``; without arguments, ``tool-input-start`` (tool.started) |
| tool.completed / tool.failed | ``tool-output-available`` / ``tool-output-error``, ``data-otel`` |
| message with text | a text part |
| run.finished / .failed | (``error``), ``data-otel`` (the run), ``finish`` (usage in ``messageMetadata``), ``[DONE]`` |

A tool started without its arguments shows at once (``tool-input-start``); its
input follows when known (at the latest with its output). Until then no step
begins or ends: the reader finds such a part only in its own step, so an LLM call
inside the tool (a sub-agent's) joins the tool's step.
Tool parts are ``dynamic`` (the UI does not declare the agent's tools). A
``data-otel`` part (``id``: the span) carries the trace and span ids, the
model, tokens, cost and duration; with content capture off, a ``data-otel``
part with ``id`` ``notice`` says so. Feed notices are SSE comments. The chunk
names are the AI SDK's own (a foreign protocol).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.model import EventKind, TokenUsage
from otel_bridge.sinks.feed import FeedItem, FeedRecord, sse
from otel_bridge.sinks.feed.agui import CONTENT_NOT_CAPTURED, CONTENT_NOT_CAPTURED_MESSAGE
from otel_bridge.sinks.feed.runs import END_OF_RUN, MAX_PENDING, MAX_RUNS, LazyRunFormat, RunState

NAME = "ai-sdk"
HEADERS = {"x-vercel-ai-ui-message-stream": "v1", "x-accel-buffering": "no"}
DONE = sse.frame(b"[DONE]", split_lines=False)
DATA_OTEL = "data-otel"

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

Chunk = dict[str, Any]


class _Tool:
    __slots__ = ("awaiting", "id", "input_sent", "output_sent")

    def __init__(self, tool_call_id: str) -> None:
        self.id = tool_call_id
        self.input_sent = False
        self.output_sent = False
        self.awaiting = False  # shown by ``tool-input-start``, its input not yet


class AiSdkRun(RunState):
    """One run as one assistant message: the open step and parts, and the totals for ``finish``."""

    __slots__ = ("awaiting_input", "cost_usd", "open_step", "open_texts", "streamed", "tools", "usage")

    def __init__(self, run_id: str, generation: int, thread_id: str, first_seq: int) -> None:
        super().__init__(run_id, generation, thread_id, first_seq)
        self.open_step: str | None = None  # the LLM span whose step is open
        # Tools shown by ``tool-input-start`` whose input is still to come: no step begins or ends meanwhile,
        # since the reader finds such a part only in the step it began in (an LLM call inside the tool,
        # a sub-agent's, joins the tool's step).
        self.awaiting_input = 0
        self.open_texts: dict[str, str] = {}  # LLM span id -> open text part id
        self.streamed: set[str] = set()
        self.tools: dict[str, _Tool] = {}
        self.usage = TokenUsage()
        self.cost_usd: float | None = None


def _json(text: str | None) -> object:
    """A JSON text as its value (a text that is not JSON stays a string)."""
    if text is None:
        return None
    try:
        value: object = _decoder.decode(text)
    except msgspec.DecodeError:
        return text
    return value


_OTEL = object()
"""A ``data-otel`` part's data until it is framed (built then, only if a UI asks)."""


def otel_data(record: FeedRecord, thread_id: str, run_id: str) -> dict[str, Any]:
    """The ``data`` of a ``data-otel`` part: where the event sits in the trace, and what it cost."""
    data: dict[str, Any] = {
        "traceId": record.trace_id,
        "spanId": record.span_id,
        "runId": run_id,
        "threadId": thread_id,
        "kind": record.kind,
    }
    optional = {
        "parentSpanId": record.parent_span_id,
        "traceUrl": record.trace_url,
        "name": record.tool_name or record.name,
        "provider": record.provider,
        "model": record.response_model or record.model,
        "durationMs": record.duration_ms,
        "costUsd": record.cost_usd,
        "error": record.error,
    }
    data.update((key, value) for key, value in optional.items() if value is not None)
    if record.usage is not None and not record.usage.is_empty():
        data["usage"] = _usage(record.usage)
    return data


def _usage(usage: TokenUsage) -> dict[str, int]:
    fields = {
        "inputTokens": usage.input,
        "outputTokens": usage.output,
        "reasoningTokens": usage.reasoning,
        "cachedInputTokens": usage.cache_read,
    }
    out = {key: value for key, value in fields.items() if value is not None}
    if usage.input is not None and usage.output is not None:
        out["totalTokens"] = usage.input + usage.output
    return out


class AiSdkTranslator:
    """The UI message chunks of each feed event, given its run."""

    def __init__(self, content: bool) -> None:
        self._content = content

    def started(self, record: FeedRecord, run: AiSdkRun) -> list[Chunk]:
        meta: dict[str, Any] = {"traceId": record.trace_id, "runId": run.ui_run_id, "threadId": run.thread_id}
        if record.agent is not None:
            meta["agent"] = record.agent
        out: list[Chunk] = [{"type": "start", "messageId": run.ui_run_id, "messageMetadata": meta}]
        if not self._content:
            out.append(
                {
                    "type": DATA_OTEL,
                    "id": "notice",
                    "data": {"notice": CONTENT_NOT_CAPTURED, "message": CONTENT_NOT_CAPTURED_MESSAGE},
                }
            )
        return out

    def chunks(self, record: FeedRecord, kind: EventKind, run: AiSdkRun) -> list[Chunk]:
        if kind is EventKind.RUN_FINISHED or kind is EventKind.RUN_FAILED:
            return self._end(record, kind, run)
        if kind is EventKind.LLM_STARTED:
            return self._step(record, run)
        if kind is EventKind.LLM_CHUNK:
            return self._text(record, run) if record.text else []
        if kind is EventKind.LLM_COMPLETED or kind is EventKind.LLM_FAILED:
            return self._completed(record, run)
        if kind is EventKind.TOOL_REQUESTED or kind is EventKind.TOOL_STARTED:
            return self._tool_input(record, kind, run)
        if kind is EventKind.TOOL_COMPLETED or kind is EventKind.TOOL_FAILED:
            return self._tool_output(record, kind, run)
        if kind is EventKind.THINKING and record.text:
            part = f"reasoning-{record.span_id}-{record.seq}"
            return [
                {"type": "reasoning-start", "id": part},
                {"type": "reasoning-delta", "id": part, "delta": record.text},
                {"type": "reasoning-end", "id": part},
            ]
        if kind is EventKind.MESSAGE and record.text:
            part = f"text-{record.span_id}-{record.seq}"
            return _whole_text(part, record.text)
        return []

    def _step(self, record: FeedRecord, run: AiSdkRun) -> list[Chunk]:
        if run.open_step == record.span_id or run.awaiting_input:
            return []
        out = self._finish_step(run)
        run.open_step = record.span_id
        out.append({"type": "start-step"})
        return out

    @staticmethod
    def _finish_step(run: AiSdkRun) -> list[Chunk]:
        if run.open_step is None:
            return []
        out: list[Chunk] = [{"type": "text-end", "id": part} for part in run.open_texts.values()]
        run.open_texts.clear()
        run.open_step = None
        out.append({"type": "finish-step"})
        return out

    def _text(self, record: FeedRecord, run: AiSdkRun) -> list[Chunk]:
        key = record.span_id
        out = self._step(record, run)
        part = run.open_texts.get(key)
        if part is None:
            part = f"text-{key}" if key not in run.streamed else f"text-{key}-{record.seq}"
            run.open_texts[key] = part
            run.streamed.add(key)
            out.append({"type": "text-start", "id": part})
        out.append({"type": "text-delta", "id": part, "delta": record.text})
        return out

    def _completed(self, record: FeedRecord, run: AiSdkRun) -> list[Chunk]:
        key = record.span_id
        out = self._step(record, run)
        part = run.open_texts.pop(key, None)
        if part is not None:
            out.append({"type": "text-end", "id": part})
        elif record.text and key not in run.streamed:
            run.streamed.add(key)
            out.extend(_whole_text(f"text-{key}", record.text))
        if record.usage is not None:
            run.usage = run.usage.plus(record.usage)
        if record.cost_usd is not None:
            run.cost_usd = (run.cost_usd or 0.0) + record.cost_usd
        out.append({"type": DATA_OTEL, "id": record.span_id, "data": _OTEL})
        if not run.awaiting_input:
            out.extend(self._finish_step(run))
        return out

    def _tool_input(self, record: FeedRecord, kind: EventKind, run: AiSdkRun) -> list[Chunk]:
        key = record.call_id or (record.span_id if kind is EventKind.TOOL_STARTED else f"{record.span_id}:{record.seq}")
        tool = run.tools.get(key)
        if tool is None:
            suffix = f"-{key}" if kind is EventKind.TOOL_REQUESTED else ""
            tool = run.tools[key] = _Tool(f"call-{record.span_id}{suffix}")
        if record.arguments is None:
            if kind is EventKind.TOOL_STARTED and not tool.awaiting and not tool.input_sent:
                # The call shows at once, its input still to come (a part in the ``input-streaming`` state).
                tool.awaiting = True
                run.awaiting_input += 1
                return [
                    {
                        "type": "tool-input-start",
                        "toolCallId": tool.id,
                        "toolName": record.tool_name or "tool",
                        "dynamic": True,
                    }
                ]
            return []
        return self._input_available(record, tool, run)

    @staticmethod
    def _input_available(record: FeedRecord, tool: _Tool, run: AiSdkRun) -> list[Chunk]:
        if tool.input_sent:
            return []
        tool.input_sent = True
        if tool.awaiting:
            tool.awaiting = False
            run.awaiting_input -= 1
        return [
            {
                "type": "tool-input-available",
                "toolCallId": tool.id,
                "toolName": record.tool_name or "tool",
                "input": _json(record.arguments),
                "dynamic": True,
            }
        ]

    def _tool_output(self, record: FeedRecord, kind: EventKind, run: AiSdkRun) -> list[Chunk]:
        key = record.call_id or record.span_id
        tool = run.tools.get(key)
        if tool is None:
            tool = run.tools[key] = _Tool(f"call-{record.span_id}")
        out = self._input_available(record, tool, run) if not tool.input_sent else []
        if tool.output_sent:
            return out
        tool.output_sent = True
        if kind is EventKind.TOOL_FAILED:
            out.append(
                {
                    "type": "tool-output-error",
                    "toolCallId": tool.id,
                    "errorText": record.error or "tool failed",
                    "dynamic": True,
                }
            )
        else:
            out.append(
                {
                    "type": "tool-output-available",
                    "toolCallId": tool.id,
                    "output": _json(record.result),
                    "dynamic": True,
                }
            )
        out.append({"type": DATA_OTEL, "id": record.span_id, "data": _OTEL})
        return out

    def _end(self, record: FeedRecord, kind: EventKind, run: AiSdkRun) -> list[Chunk]:
        out = self._finish_step(run)
        out.extend({"type": "text-end", "id": part} for part in run.open_texts.values())
        run.open_texts.clear()
        failed = kind is EventKind.RUN_FAILED
        if failed:
            out.append({"type": "error", "errorText": record.error or "run failed"})
        out.append({"type": DATA_OTEL, "id": record.span_id, "data": _OTEL})
        meta: dict[str, Any] = {"traceId": record.trace_id, "runId": run.ui_run_id, "threadId": run.thread_id}
        if run.usage.is_empty() and record.usage is not None:  # the run's own total (a producer that says only that)
            run.usage = record.usage
        if run.cost_usd is None:
            run.cost_usd = record.cost_usd
        if not run.usage.is_empty():
            meta["usage"] = _usage(run.usage)
        if run.cost_usd is not None:
            meta["costUsd"] = run.cost_usd
        out.append({"type": "finish", "finishReason": "error" if failed else "stop", "messageMetadata": meta})
        return out


def _whole_text(part: str, text: str) -> list[Chunk]:
    return [
        {"type": "text-start", "id": part},
        {"type": "text-delta", "id": part, "delta": text},
        {"type": "text-end", "id": part},
    ]


class AiSdkFormat(LazyRunFormat[AiSdkRun]):
    """The AI SDK UI message stream form of the feed (a :class:`FeedFormat`)."""

    name = NAME
    media_headers = HEADERS

    def __init__(self, *, content: bool = False, max_runs: int = MAX_RUNS, max_pending: int = MAX_PENDING) -> None:
        super().__init__(AiSdkRun, max_runs, max_pending)
        self._translator = AiSdkTranslator(content)

    def _translate(self, record: FeedRecord, kind: EventKind, run: AiSdkRun, new: bool) -> list[Chunk]:
        chunks = self._translator.started(record, run) if new else []
        chunks.extend(self._translator.chunks(record, kind, run))
        return chunks

    def frame(self, item: FeedItem) -> bytes:
        found = self._noted(item)
        if found is None:
            return b""
        (chunks, thread_id, ui_run_id), ends = found
        parts = []
        last = len(chunks) - 1
        for n, chunk in enumerate(chunks):
            if chunk.get("data") is _OTEL:
                chunk = {**chunk, "data": otel_data(item.record, thread_id, ui_run_id)}
            parts.append(
                sse.frame(_encoder.encode(chunk), event_id=item.wire_id if n == last else None, split_lines=False)
            )
        if ends:
            parts.append(DONE)
            parts.append(END_OF_RUN)
        return b"".join(parts)

    def notice(self, event: str, body: Mapping[str, object]) -> bytes:
        """An SSE comment (the AI SDK's reader would refuse an unknown chunk)."""
        return sse.comment(sc.FEED_CUSTOM_PREFIX + event + " " + _encoder.encode(dict(body)).decode())
