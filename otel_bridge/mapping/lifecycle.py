"""Span lifecycle: the table of open runs and open spans, keyed by external ids.

This is the only place spans are opened and closed. Every other module either
produces :class:`AgentEvent` (dialects) or consumes :class:`SpanRecord` (sinks).

Concurrency: the mapper is synchronous and owned by one asyncio task at a time
(the bridge calls it from the event loop only), so it takes no locks.

Bounds (each a setting in :class:`otel_bridge.config.MappingSettings`; what a
bound drops is counted in :class:`otel_bridge.stats.Stats`):

* ``max_open_runs``: runs kept open at once. Past it the least recently active
  run is closed early (``close_reason=evicted``): memory must not grow with the
  number of agents that forget to finish.
* ``max_open_spans_per_run``: open LLM/tool/step spans per run. Past it the
  oldest open span is closed (``evicted``) to bound a run that starts calls
  and never ends them.
* ``max_events_per_span``: span events per span (the SDK default is 128).
  Past it events are counted in the span's ``dropped_events_count``.
* ``run_idle_timeout_s``: a run with no event for this long is closed.
* ``span_timeout_s``: a span with no event of its own for this long is closed
  with status ERROR: a start that never completes must still be seen.
* ``run_end_grace_s``: after a terminal event the run stays open this long, so
  that events which arrive a little out of order still join it.
* ``max_finished_runs``: finished runs remembered so that a late event joins
  the same trace (as a continuation span) instead of starting a new one.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from otel_bridge import semconv as sc
from otel_bridge.config import MappingSettings
from otel_bridge.mapping import attributes as attrs
from otel_bridge.mapping.ids import parse_traceparent, span_id_for, trace_id_for_run
from otel_bridge.model import (
    TERMINAL_RUN_KINDS,
    AgentEvent,
    Attributes,
    EventKind,
    Placement,
    SpanEventRecord,
    SpanKind,
    SpanLinkRecord,
    SpanRecord,
    StatusCode,
    TokenUsage,
)
from otel_bridge.pipeline import SpanSink
from otel_bridge.stats import Stats

Pricer = Callable[[str | None, str | None, TokenUsage], float | None]
"""``(provider, model, usage) -> cost in USD``, or ``None`` when the model has no price."""

_OP_LLM = sc.OP_CHAT
_OP_TOOL = sc.OP_EXECUTE_TOOL
_OP_AGENT = sc.OP_INVOKE_AGENT
_OP_STEP = sc.SPAN_STEP

_START_KINDS = {
    EventKind.LLM_STARTED: _OP_LLM,
    EventKind.TOOL_STARTED: _OP_TOOL,
    EventKind.AGENT_STARTED: _OP_AGENT,
    EventKind.STEP_STARTED: _OP_STEP,
}
_END_KINDS = {
    EventKind.LLM_COMPLETED: _OP_LLM,
    EventKind.LLM_FAILED: _OP_LLM,
    EventKind.TOOL_COMPLETED: _OP_TOOL,
    EventKind.TOOL_FAILED: _OP_TOOL,
    EventKind.AGENT_FINISHED: _OP_AGENT,
    EventKind.AGENT_FAILED: _OP_AGENT,
    EventKind.STEP_FINISHED: _OP_STEP,
}
_FAILURE_KINDS = frozenset({EventKind.LLM_FAILED, EventKind.TOOL_FAILED, EventKind.AGENT_FAILED, EventKind.RUN_FAILED})
# LLM and tool spans are leaves: new spans nest under the innermost agent or step.
_CONTAINER_OPS = frozenset({_OP_AGENT, _OP_STEP})


@dataclass(eq=False, slots=True)
class _Span:
    key: str
    op: str
    span_id: bytes
    parent_span_id: bytes | None
    start_ns: int
    last_ns: int
    last_active: float
    attributes: Attributes = field(default_factory=dict)
    events: list[SpanEventRecord] = field(default_factory=list)
    links: list[SpanLinkRecord] = field(default_factory=list)
    dropped_events: int = 0
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    first_chunk_ns: int | None = None
    chunk_count: int = 0
    streaming: bool = False
    inferred: bool = False
    stream_paired: bool = False
    usage: TokenUsage | None = None
    provider: str | None = None
    model: str | None = None

    def name(self) -> str:
        if self.op == _OP_LLM:
            model = self.attributes.get(sc.GEN_AI_REQUEST_MODEL) or self.attributes.get(sc.GEN_AI_RESPONSE_MODEL)
            return f"{_OP_LLM} {model}" if model else _OP_LLM
        if self.op == _OP_TOOL:
            tool = self.attributes.get(sc.GEN_AI_TOOL_NAME)
            return f"{_OP_TOOL} {tool}" if tool else _OP_TOOL
        if self.op == _OP_AGENT:
            agent = self.attributes.get(sc.GEN_AI_AGENT_NAME)
            return f"{_OP_AGENT} {agent}" if agent else _OP_AGENT
        step = self.attributes.get(sc.BRIDGE_STEP_NAME)
        return f"{_OP_STEP} {step}" if step else _OP_STEP

    def kind(self) -> SpanKind:
        return SpanKind.CLIENT if self.op == _OP_LLM else SpanKind.INTERNAL


@dataclass(eq=False, slots=True)
class _Run:
    run_id: str
    trace_id: bytes
    root: _Span
    open: dict[str, _Span] = field(default_factory=dict)  # insertion order = start order
    key_uses: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    stream_spans: dict[str, str] = field(default_factory=dict)  # stream id -> span key
    end_ns: int | None = None
    ending_deadline: float | None = None
    failed: bool = False
    usage: TokenUsage | None = None
    cost: float | None = None
    seen_event_ids: set[str] = field(default_factory=set)
    created_by: AgentEvent | None = None  # the event that opened the run


@dataclass(frozen=True)
class _Finished:
    trace_id: bytes
    root_span_id: bytes
    agent: str | None
    continuations: int


class SpanMapper:
    """Turns canonical events into finished span records, one run at a time."""

    def __init__(
        self,
        settings: MappingSettings,
        sink: SpanSink,
        stats: Stats,
        *,
        clock: Callable[[], float] = time.monotonic,
        pricer: Pricer | None = None,
    ) -> None:
        self._s = settings
        self._sink = sink
        self._stats = stats
        self._clock = clock
        self._pricer = pricer
        self._runs: OrderedDict[str, _Run] = OrderedDict()  # LRU: least recently active first
        self._ending: deque[tuple[float, str]] = deque()
        self._finished: OrderedDict[str, _Finished] = OrderedDict()
        self._out: list[SpanRecord] = []

    # -- public API ---------------------------------------------------------
    @property
    def open_runs(self) -> int:
        return len(self._runs)

    def process(self, events: Iterable[AgentEvent]) -> list[Placement]:
        """Map a batch of events; emits finished spans to the sink once per batch."""
        placements = [self._process_one(event) for event in events]
        self._flush_out()
        return placements

    def sweep(self) -> None:
        """Close what timed out: ended runs past their grace, idle runs, stale spans."""
        now = self._clock()
        while self._ending and self._ending[0][0] <= now:
            _, run_id = self._ending.popleft()
            run = self._runs.get(run_id)
            if run is not None and run.ending_deadline is not None and run.ending_deadline <= now:
                self._finish_run(run, sc.CLOSE_RUN_ENDED)
        idle = self._s.run_idle_timeout_s
        while self._runs:
            run = next(iter(self._runs.values()))
            if now - run.root.last_active < idle:
                break
            self._finish_run(run, sc.CLOSE_IDLE)
        span_timeout = self._s.span_timeout_s
        for run in list(self._runs.values()):
            for span in [s for s in run.open.values() if now - s.last_active >= span_timeout]:
                self._close_incomplete(run, span, sc.CLOSE_SPAN_TIMEOUT, span.last_ns)
        self._flush_out()

    def close_all(self, reason: str = sc.CLOSE_SHUTDOWN) -> None:
        """Close every open run now (shutdown, or the end of a replayed file)."""
        for run in list(self._runs.values()):
            self._finish_run(run, reason)
        self._ending.clear()
        self._flush_out()

    # -- dispatch ------------------------------------------------------------
    def _process_one(self, event: AgentEvent) -> Placement:
        run = self._run_for(event)
        if event.event_id is not None:
            # At-least-once producers (reconnects, a log read beside its live
            # stream) re-send events: one id is mapped once per run.
            if event.event_id in run.seen_event_ids:
                self._stats.drop("duplicate_event")
                return Placement(run.trace_id, run.root.span_id, run.root.parent_span_id)
            if len(run.seen_event_ids) < self._s.max_event_ids_per_run:
                run.seen_event_ids.add(event.event_id)
        now = self._clock()
        run.root.last_active = now
        self._runs.move_to_end(run.run_id)
        kind = event.kind
        if kind is EventKind.RUN_STARTED:
            return self._on_run_started(run, event)
        if kind in TERMINAL_RUN_KINDS:
            return self._on_run_ended(run, event)
        op = _START_KINDS.get(kind)
        if op is not None:
            return self._on_span_start(run, event, op, now)
        op = _END_KINDS.get(kind)
        if op is not None:
            return self._on_span_end(run, event, op, now)
        if kind is EventKind.LLM_CHUNK:
            return self._on_chunk(run, event, now)
        if kind is EventKind.STREAM_STARTED or kind is EventKind.STREAM_ENDED:
            return self._on_stream(run, event, now)
        if kind is EventKind.TOOL_REQUESTED:
            # Recorded on the chat span whose model asked for the tool, wherever the run is.
            span = self._llm_span_for(run, event.parent_call_id)
            return self._add_span_event(run, span or self._innermost(run), event, now)
        return self._add_span_event(run, self._innermost(run), event, now)

    def _run_for(self, event: AgentEvent) -> _Run:
        run = self._runs.get(event.run_id)
        if run is not None:
            return run
        finished = self._finished.get(event.run_id)
        run = self._continuation(event, finished) if finished is not None else self._new_run(event)
        self._runs[event.run_id] = run
        self._stats.runs_started += 1
        if len(self._runs) > self._s.max_open_runs:
            oldest = next(iter(self._runs.values()))
            self._stats.drop("max_open_runs")
            self._finish_run(oldest, sc.CLOSE_EVICTED)
        return run

    def _new_run(self, event: AgentEvent) -> _Run:
        parent_span_id: bytes | None = None
        traced = parse_traceparent(event.traceparent)
        if traced is not None:
            trace_id, parent_span_id = traced
        else:
            trace_id = trace_id_for_run(event.run_id)
        start = event.timestamp_ns
        root = _Span(
            key="run",
            op=_OP_AGENT,
            span_id=span_id_for(trace_id, "run"),
            parent_span_id=parent_span_id,
            start_ns=start,
            last_ns=event.timestamp_ns,
            last_active=self._clock(),
        )
        root.attributes.update(attrs.run_start_attributes(event))
        return _Run(run_id=event.run_id, trace_id=trace_id, root=root, created_by=event)

    def _continuation(self, event: AgentEvent, finished: _Finished) -> _Run:
        """A late event for a finished run: a child of its root, in the same trace."""
        n = finished.continuations + 1
        self._finished[event.run_id] = _Finished(finished.trace_id, finished.root_span_id, finished.agent, n)
        key = f"run+{n}"
        root = _Span(
            key=key,
            op=_OP_AGENT,
            span_id=span_id_for(finished.trace_id, key),
            parent_span_id=finished.root_span_id,
            start_ns=event.timestamp_ns,
            last_ns=event.timestamp_ns,
            last_active=self._clock(),
        )
        root.attributes.update(attrs.run_start_attributes(event))
        if finished.agent is not None:
            root.attributes.setdefault(sc.GEN_AI_AGENT_NAME, finished.agent)
        self._stats.continuations += 1
        return _Run(run_id=event.run_id, trace_id=finished.trace_id, root=root)

    # -- run events -----------------------------------------------------------
    def _on_run_started(self, run: _Run, event: AgentEvent) -> Placement:
        root = run.root
        root.start_ns = min(root.start_ns, event.timestamp_ns)
        if run.created_by is not event:  # a run this event created already has its attributes
            root.attributes.update(attrs.run_start_attributes(event))
        self._touch(root, event)
        return Placement(run.trace_id, root.span_id, root.parent_span_id)

    def _on_run_ended(self, run: _Run, event: AgentEvent) -> Placement:
        root = run.root
        self._touch(root, event)
        if event.duration_ms is not None:
            root.start_ns = min(root.start_ns, event.timestamp_ns - int(event.duration_ms * 1e6))
        for key, value in attrs.agent_pairs(event):
            # The agent that started the run names it; later actors do not rename it.
            if key == sc.GEN_AI_AGENT_NAME:
                root.attributes.setdefault(key, value)
            else:
                root.attributes[key] = value
        if event.usage is not None:
            run.usage = event.usage if run.usage is None else run.usage
        if event.cost_usd is not None:
            root.attributes[sc.BRIDGE_REPORTED_COST] = event.cost_usd
        if event.kind is EventKind.RUN_FAILED:
            run.failed = True
            root.status_code = StatusCode.ERROR
            root.status_message = event.error or ""
            root.attributes.update(attrs.error_pairs(event))
        if event.status is not None:
            root.attributes[sc.BRIDGE_STATUS] = event.status
        run.end_ns = max(event.timestamp_ns, root.last_ns)
        if run.ending_deadline is None:
            run.ending_deadline = self._clock() + self._s.run_end_grace_s
            self._ending.append((run.ending_deadline, run.run_id))
        duration = (run.end_ns - root.start_ns) / 1e6
        return Placement(run.trace_id, root.span_id, root.parent_span_id, duration)

    # -- spans -----------------------------------------------------------------
    def _span_key(self, run: _Run, op: str, event: AgentEvent, *, starting: bool) -> str:
        ident = event.call_id if op != _OP_STEP else (event.name or event.call_id)
        if ident is None:
            if starting:
                run.seq += 1
                return f"{op}#{run.seq}"
            # An end with no id closes the innermost open span of its operation.
            for span in reversed(run.open.values()):
                if span.op == op:
                    return span.key
            run.seq += 1
            return f"{op}#{run.seq}"
        base = f"{op}:{ident}"
        uses = run.key_uses.get(base, 0)
        if starting and base in run.open:
            # The same id started twice while open: a retry or a re-sent event.
            # Keep the first span; the duplicate start becomes a span event.
            return base
        if starting:
            run.key_uses[base] = uses + 1
            return base if uses == 0 else f"{base}#{uses}"
        return base if uses <= 1 else f"{base}#{uses - 1}"

    def _on_span_start(self, run: _Run, event: AgentEvent, op: str, now: float) -> Placement:
        key = self._span_key(run, op, event, starting=True)
        existing = run.open.get(key)
        if existing is not None:
            return self._add_span_event(run, existing, event, now)
        span = self._open_span(run, key, op, event, event.timestamp_ns, now)
        return Placement(run.trace_id, span.span_id, span.parent_span_id)

    def _open_span(self, run: _Run, key: str, op: str, event: AgentEvent, start_ns: int, now: float) -> _Span:
        parent = self._container(run)
        if op == _OP_AGENT and event.parent_call_id is not None:
            # A sub-agent run by a tool call (Locus subagents, AG-UI parentToolCallId) nests under that call.
            parent = run.open.get(f"{_OP_TOOL}:{event.parent_call_id}", parent)
        span = _Span(
            key=key,
            op=op,
            span_id=span_id_for(run.trace_id, key),
            parent_span_id=parent.span_id,
            start_ns=start_ns,
            last_ns=event.timestamp_ns,
            last_active=now,
        )
        span.attributes.update(self._start_attributes(op, event))
        if op == _OP_LLM and event.stream:
            span.streaming = True
        if event.inferred:
            # The dialect inferred this start; its time is not a request time.
            span.inferred = True
            span.attributes[sc.BRIDGE_INFERRED] = True
        if op == _OP_TOOL and event.parent_call_id is not None:
            span.links.append(
                SpanLinkRecord(run.trace_id, span_id_for(run.trace_id, f"{_OP_LLM}:{event.parent_call_id}"), {})
            )
        if self._s.capture_content and op == _OP_TOOL:
            span.attributes.update(attrs.tool_content_pairs(event, self._s.attribute_max_length))
        run.open[key] = span
        if len(run.open) > self._s.max_open_spans_per_run:
            oldest = next(iter(run.open.values()))
            self._stats.drop("max_open_spans_per_run")
            self._close_incomplete(run, oldest, sc.CLOSE_EVICTED, oldest.last_ns)
        return span

    def _start_attributes(self, op: str, event: AgentEvent) -> Attributes:
        if op == _OP_LLM:
            return attrs.llm_start_attributes(event)
        if op == _OP_TOOL:
            return attrs.tool_start_attributes(event)
        out: Attributes = dict(attrs.common_pairs(event))
        if op == _OP_AGENT:
            out[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
            out.update(attrs.agent_pairs(event))
        elif event.name is not None:
            out[sc.BRIDGE_STEP_NAME] = event.name
        return out

    def _on_span_end(self, run: _Run, event: AgentEvent, op: str, now: float) -> Placement:
        key = self._span_key(run, op, event, starting=False)
        span = run.open.pop(key, None)
        if span is None:
            # A completion with no start: the span is rebuilt from its duration.
            start = event.timestamp_ns
            if event.duration_ms is not None:
                start -= int(event.duration_ms * 1e6)
            span = self._open_span(run, key, op, event, start, now)
            run.open.pop(key)
        end = event.timestamp_ns
        if event.duration_ms is not None and not event.timestamp_from_source:
            # Arrival times say nothing about the producer's clock: trust its duration.
            end = max(end, span.start_ns + int(event.duration_ms * 1e6))
        self._touch(span, event)
        if op != _OP_LLM:
            span.attributes.update(self._start_attributes(op, event))
        cost: float | None = None
        if op == _OP_LLM:
            cost = self._complete_llm(run, span, event)
        elif self._s.capture_content and op == _OP_TOOL:
            span.attributes.update(attrs.tool_content_pairs(event, self._s.attribute_max_length))
        if event.kind in _FAILURE_KINDS:
            span.status_code = StatusCode.ERROR
            span.status_message = event.error or ""
            span.attributes.update(attrs.error_pairs(event))
        end = max(end, span.start_ns)
        self._emit(run, span, end)
        return Placement(run.trace_id, span.span_id, span.parent_span_id, (end - span.start_ns) / 1e6, cost)

    def _complete_llm(self, run: _Run, span: _Span, event: AgentEvent) -> float | None:
        """Set the completion attributes; return the call's priced cost, if any."""
        span.attributes.update(attrs.llm_end_attributes(event, self._s.latest_semconv))
        if event.stream:
            span.streaming = True
        if span.streaming:
            span.attributes[sc.GEN_AI_REQUEST_STREAM] = True
        if self._s.capture_content:
            span.attributes.update(attrs.llm_content_pairs(event, self._s.attribute_max_length))
        if event.usage is not None:
            span.usage = event.usage
            run.usage = event.usage.plus(run.usage)
            if self._pricer is not None:
                provider = attrs.provider_for(event.provider, event.model or event.response_model)
                cost = self._pricer(provider, event.response_model or event.model, event.usage)
                if cost is not None:
                    span.attributes[sc.GEN_AI_USAGE_COST] = cost
                    run.cost = cost + (run.cost or 0.0)
                return cost
        return None

    def _on_chunk(self, run: _Run, event: AgentEvent, now: float) -> Placement:
        span = self._llm_span_for(run, event.call_id)
        if span is None:
            return self._add_span_event(run, self._innermost(run), event, now)
        span.last_active = now
        span.last_ns = max(span.last_ns, event.timestamp_ns)
        span.chunk_count += 1
        span.streaming = True
        if span.first_chunk_ns is None:
            span.first_chunk_ns = event.timestamp_ns
        if self._s.chunk_events:
            self._add_span_event(run, span, event, now)
        return Placement(run.trace_id, span.span_id, span.parent_span_id)

    def _on_stream(self, run: _Run, event: AgentEvent, now: float) -> Placement:
        """Producer stream bookkeeping, paired with its LLM call by order within the run."""
        starting = event.kind is EventKind.STREAM_STARTED
        span = self._llm_span_for(run, event.call_id, fallback=not starting)
        if span is None and starting:
            # The oldest open streamed call not yet paired takes this stream.
            candidates = [s for s in run.open.values() if s.op == _OP_LLM and not s.stream_paired]
            streamed = [s for s in candidates if s.streaming]
            chosen = (streamed or candidates)[:1]
            if chosen:
                span = chosen[0]
                span.stream_paired = True
                span.streaming = True
                if event.call_id is not None:
                    run.stream_spans[event.call_id] = span.key
                    span.attributes[sc.BRIDGE_STREAM_ID] = event.call_id
        return self._add_span_event(run, span or self._innermost(run), event, now)

    def _llm_span_for(self, run: _Run, call_id: str | None, *, fallback: bool = True) -> _Span | None:
        """The open LLM span a chunk or stream event belongs to: by stream id, call id, else the latest."""
        if call_id is not None:
            key = run.stream_spans.get(call_id)
            if key is not None:
                return run.open.get(key)
            span = run.open.get(f"{_OP_LLM}:{call_id}")
            if span is not None:
                return span
        if not fallback:
            return None
        for span in reversed(run.open.values()):
            if span.op == _OP_LLM:
                return span
        return None

    def _add_span_event(self, run: _Run, span: _Span, event: AgentEvent, now: float) -> Placement:
        span.last_active = now
        self._touch(span, event)
        if len(span.events) >= self._s.max_events_per_span:
            span.dropped_events += 1
            self._stats.drop("max_events_per_span")
        else:
            pairs = attrs.span_event_pairs(event, self._s.capture_content, self._s.attribute_max_length)
            name = event.original_type if event.kind is EventKind.CUSTOM else str(event.kind)
            span.events.append(SpanEventRecord(name, event.timestamp_ns, dict(pairs)))
        return Placement(run.trace_id, span.span_id, span.parent_span_id)

    # -- helpers -----------------------------------------------------------------
    def _innermost(self, run: _Run) -> _Span:
        if run.open:
            return next(reversed(run.open.values()))
        return run.root

    def _container(self, run: _Run) -> _Span:
        for span in reversed(run.open.values()):
            if span.op in _CONTAINER_OPS:
                return span
        return run.root

    def _touch(self, span: _Span, event: AgentEvent) -> None:
        span.last_ns = max(span.last_ns, event.timestamp_ns)

    def _close_incomplete(self, run: _Run, span: _Span, reason: str, end_ns: int) -> None:
        run.open.pop(span.key, None)
        span.status_code = StatusCode.ERROR
        span.status_message = f"span not ended by its producer ({reason})"
        span.attributes[sc.ERROR_TYPE] = sc.ERROR_INCOMPLETE
        span.attributes[sc.BRIDGE_CLOSE_REASON] = reason
        self._stats.incomplete[reason] += 1
        self._emit(run, span, max(end_ns, span.start_ns))

    def _emit(self, run: _Run, span: _Span, end_ns: int) -> None:
        if span.op == _OP_LLM:
            if span.streaming:
                span.attributes[sc.GEN_AI_REQUEST_STREAM] = True
                if span.first_chunk_ns is not None and not span.inferred:
                    ttfc = max(0, span.first_chunk_ns - span.start_ns) / 1e9
                    span.attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
            if span.chunk_count:
                span.attributes[sc.BRIDGE_CHUNK_COUNT] = span.chunk_count
        run.root.last_ns = max(run.root.last_ns, end_ns)
        # A child rebuilt from its duration may start before the first event seen:
        # the run span is widened so that it still contains all its children.
        run.root.start_ns = min(run.root.start_ns, span.start_ns)
        self._out.append(
            SpanRecord(
                trace_id=run.trace_id,
                span_id=span.span_id,
                parent_span_id=span.parent_span_id,
                name=span.name(),
                kind=span.kind(),
                start_ns=span.start_ns,
                end_ns=end_ns,
                attributes=span.attributes,
                events=tuple(span.events),
                links=tuple(span.links),
                status_code=span.status_code,
                status_message=span.status_message,
                dropped_events=span.dropped_events,
            )
        )

    def _finish_run(self, run: _Run, reason: str) -> None:
        if run.end_ns is not None:
            reason = sc.CLOSE_RUN_ENDED  # its terminal event was seen: timeouts do not apply
        self._runs.pop(run.run_id, None)
        root = run.root
        end = run.end_ns if run.end_ns is not None else root.last_ns
        for span in list(run.open.values()):
            self._close_incomplete(
                run, span, reason, max(span.last_ns, end if reason == sc.CLOSE_RUN_ENDED else span.last_ns)
            )
        end = max(end, root.last_ns)
        if reason != sc.CLOSE_RUN_ENDED:
            root.attributes[sc.BRIDGE_CLOSE_REASON] = reason
        if run.usage is not None:
            root.attributes.update(attrs.usage_attributes(run.usage, self._s.latest_semconv))
        if run.cost is not None:
            root.attributes[sc.GEN_AI_USAGE_COST] = run.cost
        self._emit(run, root, max(end, root.start_ns))
        self._stats.runs_finished += 1
        agent = root.attributes.get(sc.GEN_AI_AGENT_NAME)
        previous = self._finished.pop(run.run_id, None)
        self._finished[run.run_id] = _Finished(
            run.trace_id,
            previous.root_span_id if previous is not None else root.span_id,
            agent if isinstance(agent, str) else None,
            previous.continuations if previous is not None else 0,
        )
        while len(self._finished) > self._s.max_finished_runs:
            self._finished.popitem(last=False)

    def _flush_out(self) -> None:
        if self._out:
            out, self._out = self._out, []
            self._stats.spans_finished += len(out)
            try:
                self._sink.consume(out)
            except Exception:  # a sink broke its contract: the spans are counted, the caller goes on
                logging.getLogger(__name__).exception("span sink failed; %d spans dropped", len(out))
                self._stats.drop("sink_failed", len(out))
