"""Span lifecycle: what each canonical event does to the table of open runs and spans.

:class:`SpanMapper` is the only way spans are opened and closed. Every other
stage either produces :class:`AgentEvent` (dialects) or consumes
:class:`SpanRecord` (sinks). Within mapping, one concept per module:

* ``lifecycle`` (here): the mapper, its dispatch and one handler per kind of event;
* :mod:`.table`: the open runs and spans, their keys and the lookups over them;
* :mod:`.opening`: opening runs (new, reopened, continuing a finished one) and spans,
  and the bounds an opening can pass;
* :mod:`.closing`: ending spans and runs (by their producer, a bound, a timeout,
  shutdown) and remembering finished runs;
* :mod:`.attributes`: every attribute a span carries, its name and kind, as pure functions
  (:mod:`.content_attributes`: the content ones, opt-in, and an event's payload);
* :mod:`.ids`: deterministic trace and span ids; :mod:`.pricing`: the cost of a call.

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
* ``max_open_spans``: open spans across all runs, so that many runs each
  inside their own bounds cannot add up (1,000 runs x 1,000 open spans was
  ~1 GB). Past it the least recently active runs are closed early
  (``evicted``, counted as ``max_open_spans``). The count is kept as an upper
  bound (raised at each open) and recounted only when it passes the cap.
* ``max_events_per_span``: span events per span (the SDK default is 128).
  Past it events are counted in the span's ``dropped_events_count``.
* ``run_idle_timeout_s``: a run with no event for this long is closed.
* ``span_timeout_s``: a span with no event of its own for this long is closed
  with status ERROR: a start that never completes must still be seen.
* ``run_end_grace_s``: after a terminal event the run stays open this long, so
  that events which arrive a little out of order still join it; the sweeper
  wakes when a grace is over (:class:`otel_bridge.bridge.Bridge`), and with
  no grace (0) a run closes with the batch that ended it.
* ``max_finished_runs``: finished runs remembered so that a late event joins
  the same trace (as a continuation span) instead of starting a new one; at
  least ``max_open_runs``, so that an eviction storm cannot push out the runs
  it just evicted. A run forgotten past that is still known, by one bit, to
  :class:`.closing.ForgottenRuns` (for at least the next 4 x (finished + open)
  runs forgotten): when it comes back it starts under a root key of its own,
  so it does not rebuild a span id it already exported
  (tests/test_eviction_storm.py).
* ``max_event_ids``: producer event ids remembered, across all runs, in one
  least-recently-seen table, so that an event re-sent by an at-least-once
  producer is mapped once. Each id it forgets to make room is counted
  (``Stats.event_ids_forgotten``): a re-send of that id would be mapped again.
  Each remembered id costs about 170 B (bench/bench_open_spans.py).
* ``table.MAX_KEY_USES``: ended producer ids a run remembers, so that an id
  used again gets a new span id; past it a start gets a key unique in the run.

An open span costs under 1 KB (bench/bench_open_spans.py): slots, containers
created on first use, no copy of any event kept. Timeouts are found from a
heap and the run table's LRU order (:mod:`.closing`): idle runs cost nothing.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from otel_bridge import semconv as sc
from otel_bridge.config import MappingSettings
from otel_bridge.mapping import attributes as attrs
from otel_bridge.mapping import content_attributes as captured
from otel_bridge.mapping.closing import Closer
from otel_bridge.mapping.ids import span_id_for, trace_id_for_run
from otel_bridge.mapping.opening import Opener
from otel_bridge.mapping.pricing import Pricer
from otel_bridge.mapping.table import (
    CONTAINER_OPS,
    END_KINDS,
    FAILURE_KINDS,
    OP_LLM,
    OP_TOOL,
    ROOT_KEY,
    START_KINDS,
    Run,
    Span,
    ancestors,
    call_span,
    ended_span,
    innermost,
    llm_span_for,
    span_key,
)
from otel_bridge.model import (
    TERMINAL_RUN_KINDS,
    AgentEvent,
    EventKind,
    Placement,
    SpanEventRecord,
    SpanRecord,
    StatusCode,
)
from otel_bridge.pipeline import SpanSink
from otel_bridge.stats import Stats

# A NamedTuple's own __new__ is a Python function: the placement every event gets (and the span keys,
# in .table) are built with tuple.__new__ straight, all fields given, a call less per event.
_new = tuple.__new__
# The kinds the dispatch compares with, read once: on Python 3.11 every `EventKind.X` goes through the enum
# metaclass's __getattr__ slot, about ten times the cost of reading a global (several per event).
_RUN_STARTED = EventKind.RUN_STARTED
_RUN_FAILED = EventKind.RUN_FAILED
_LLM_CHUNK = EventKind.LLM_CHUNK
_STREAM_STARTED = EventKind.STREAM_STARTED
_STREAM_ENDED = EventKind.STREAM_ENDED
_TOOL_REQUESTED = EventKind.TOOL_REQUESTED
_CUSTOM = EventKind.CUSTOM
# The kinds that only become a span event (progress, message...): every kind not handled on its own below.
_RECORDED_KINDS = frozenset(EventKind).difference(
    START_KINDS,
    END_KINDS,
    TERMINAL_RUN_KINDS,
    (_RUN_STARTED, _LLM_CHUNK, _STREAM_STARTED, _STREAM_ENDED, _TOOL_REQUESTED),
)
_ERROR = StatusCode.ERROR


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
        redact_payload: Callable[[str], str] | None = None,
    ) -> None:
        self._s = settings
        self._redact_payload = redact_payload  # the redactor, for the original payloads span events carry
        self._sink = sink
        self._stats = stats
        self._clock = clock
        self._pricer = pricer
        self._runs: OrderedDict[str, Run] = OrderedDict()  # LRU: least recently active first
        self._out: list[SpanRecord] = []
        self._closer = Closer(settings, stats, self._runs, self._out.append)  # the list's own append: no call of ours
        # Runs closed without their producer's end, waiting for take_closed: a caller may test this list's
        # truth after each call (no call, no copy: the hot path pays one test).
        self.closed_runs: list[tuple[AgentEvent, Placement]] = self._closer.closed
        self._opener = Opener(settings, stats, self._runs, self._closer)
        # (run id, event id) of the producer events seen lately, least recently seen first.
        self._event_ids: OrderedDict[str, None] = OrderedDict()
        self._created: Run | None = None  # the run the event being mapped has just opened
        # The run last made the most recently active (the run table's last entry while it is in the table:
        # only the mapper adds runs, at the end, and the closer only removes them). A batch's events mostly
        # come a run at a time: the next event of the same run moves nothing.
        self._latest: Run | None = None
        self._now = clock()  # the clock, read once per batch
        self._end_at_once = settings.run_end_grace_s == 0

    # -- public API ---------------------------------------------------------
    @property
    def open_runs(self) -> int:
        return len(self._runs)

    def report_closes(self) -> None:
        """From now on keep, for :meth:`take_closed`, a terminal event for each run closed without its producer's end.

        Off until asked, so that a mapper nobody takes them from keeps none.
        """
        self._closer.report_closes = True

    def take_closed(self) -> list[tuple[AgentEvent, Placement]]:
        """The terminal events of the runs closed without their producer's end since the last call
        (timeout, eviction, ``shed_oldest``, :meth:`close_all`), in close order, each on its run's root span
        (:func:`.closing.close_notice`)."""
        closed = self._closer.closed
        if not closed:
            return []
        out = list(closed)
        closed.clear()
        return out

    def process(self, events: Iterable[AgentEvent]) -> list[Placement]:
        """Map a batch of events; emits finished spans to the sink once per batch."""
        # One reading of the clock per batch: the batch is mapped at once, and its spans share the float.
        self._now = self._clock()
        placements = [self._process_one(event) for event in events]
        if self._end_at_once and self._closer.next_end is not None:
            self._closer.close_ended(self._now)  # no grace: a run ends with the batch that ended it
        self._flush_out()
        return placements

    def sweep(self) -> None:
        """Close what timed out: ended runs past their grace, idle runs, stale spans."""
        self._closer.sweep(self._clock())
        self._flush_out()

    @property
    def end_grace_s(self) -> float:
        """How long an ended run waits for stragglers (``run_end_grace_s``)."""
        return self._s.run_end_grace_s

    def next_end_in(self) -> float | None:
        """Seconds until the earliest ended run's grace is over (0 if it is), or ``None`` if no run is ending."""
        due = self._closer.next_end
        return None if due is None else max(0.0, due - self._clock())

    def shed_oldest(self, n: int) -> int:
        """Close the ``n`` least recently active open runs now (``evicted``); returns how many were open.

        The memory budget's hard limit (:mod:`otel_bridge.limits`) calls this; the caller counts them.
        """
        shed = 0
        while shed < n and self._runs:
            self._closer.finish_run(next(iter(self._runs.values())), sc.CLOSE_EVICTED)
            shed += 1
        self._flush_out()
        return shed

    def close_all(self, reason: str = sc.CLOSE_SHUTDOWN) -> None:
        """Close every open run now (shutdown, or the end of a replayed file)."""
        self._closer.close_all(reason)
        self._flush_out()

    # -- dispatch ------------------------------------------------------------
    def _process_one(self, event: AgentEvent) -> Placement:
        self._created = None
        if event.event_id is not None:
            # At-least-once producers (reconnects, a log read beside its live stream) re-send
            # events: one id is mapped once per run, even after the run has finished.
            seen = self._event_ids
            ident = f"{event.run_id}\x00{event.event_id}"  # one string: ~50 B less than a tuple
            if ident in seen:
                seen.move_to_end(ident)
                self._stats.drop("duplicate_event")
                return self._placed_before(event)
            seen[ident] = None
            if len(seen) > self._s.max_event_ids:  # a re-send of the forgotten id would be mapped again: counted
                seen.popitem(last=False)
                self._stats.event_ids_forgotten += 1
        run = self._runs.get(event.run_id)
        if run is None:
            run = self._created = self._latest = self._opener.run(event, self._now)  # added last
        elif run is not self._latest:
            self._runs.move_to_end(run.run_id)
            self._latest = run
        now = self._now
        run.root.last_active = now
        kind = event.kind
        # The kinds are disjoint: the span starts and ends, most events, are looked up first.
        op = START_KINDS.get(kind)
        if op is not None:
            return self._on_span_start(run, event, op, now)
        op = END_KINDS.get(kind)
        if op is not None:
            return self._on_span_end(run, event, op, now)
        if kind in _RECORDED_KINDS:
            # An event that names its call (an MCP request's progress or log) is recorded on that call's span.
            return self._add_span_event(run, call_span(run, event.call_id) or innermost(run), event, now)
        if kind is _RUN_STARTED:
            return self._on_run_started(run, event)
        if kind in TERMINAL_RUN_KINDS:
            return self._on_run_ended(run, event)
        if kind is _LLM_CHUNK:
            return self._on_chunk(run, event, now)
        if kind is _STREAM_STARTED or kind is _STREAM_ENDED:
            return self._on_stream(run, event, now)
        # The one kind left (every other is in a set above): a tool call the model asked for, recorded on
        # the chat span whose model asked for it, wherever the run is.
        span = llm_span_for(run, event.parent_call_id)
        return self._add_span_event(run, span or innermost(run), event, now)

    def _placed_before(self, event: AgentEvent) -> Placement:
        """Where a re-sent event's run is: its open root, else the root of the run as it finished."""
        run = self._runs.get(event.run_id)
        if run is not None:
            return Placement(run.trace_id, run.root.span_id, run.root.parent_span_id)
        finished = self._closer.finished.get(event.run_id)
        if finished is not None:
            return Placement(finished.trace_id, finished.root_span_id, None)
        trace_id = trace_id_for_run(event.run_id, self._s.id_salt)
        return Placement(trace_id, span_id_for(trace_id, ROOT_KEY), None)

    # -- run events -----------------------------------------------------------
    def _on_run_started(self, run: Run, event: AgentEvent) -> Placement:
        root = run.root
        root.start_ns = min(root.start_ns, event.timestamp_ns)
        if run is not self._created:  # a run this event created already has its attributes
            root.attributes.update(attrs.run_start_attributes(event))
        root.touch(event)
        return _new(Placement, (run.trace_id, root.span_id, root.parent_span_id, None, None))

    def _on_run_ended(self, run: Run, event: AgentEvent) -> Placement:
        root = run.root
        root.touch(event)
        if event.duration_ms is not None:
            root.start_ns = min(root.start_ns, event.timestamp_ns - int(event.duration_ms * 1e6))
        root.attributes.update(attrs.run_end_attributes(event, named=sc.GEN_AI_AGENT_NAME in root.attributes))
        if event.usage is not None:
            run.usage = event.usage if run.usage is None else run.usage
        if event.kind is _RUN_FAILED:
            root.status_code = _ERROR
            root.status_message = event.error or ""
        run.end_ns = max(event.timestamp_ns, root.last_ns)
        if run.ending_deadline is None:
            self._closer.end_later(run, self._now)
        duration = (run.end_ns - root.start_ns) / 1e6
        return _new(Placement, (run.trace_id, root.span_id, root.parent_span_id, duration, None))

    # -- spans -----------------------------------------------------------------
    def _on_span_start(self, run: Run, event: AgentEvent, op: str, now: float) -> Placement:
        key = span_key(run, op, event, starting=True)
        existing = run.open.get(key.lookup)
        if existing is not None:
            return self._add_span_event(run, existing, event, now)
        span = self._opener.span(run, key, op, event, event.timestamp_ns, now)
        return _new(Placement, (run.trace_id, span.span_id, span.parent_span_id, None, None))

    def _on_span_end(self, run: Run, event: AgentEvent, op: str, now: float) -> Placement:
        span = ended_span(run, op, event)
        if span is None:
            # A completion with no start: the span is rebuilt from its duration.
            key = span_key(run, op, event, starting=False)
            start = event.timestamp_ns
            if event.duration_ms is not None:
                start -= int(event.duration_ms * 1e6)
            span = self._opener.span(run, key, op, event, start, now)
            run.open.pop(key.lookup)
        end = event.timestamp_ns
        if event.duration_ms is not None and not event.timestamp_from_source:
            # Arrival times say nothing about the producer's clock: trust its duration.
            end = max(end, span.start_ns + int(event.duration_ms * 1e6))
        if event.timestamp_ns > span.last_ns:  # Span.touch, inline: every span end
            span.last_ns = event.timestamp_ns
        if op != OP_LLM:
            attrs.add_start(span.attributes, op, event)
        cost: float | None = None
        if op == OP_LLM:
            cost = self._complete_llm(run, span, event)
        elif self._s.capture_content and op == OP_TOOL:
            span.attributes.update(captured.tool_content_pairs(event, self._s.attribute_max_length))
        if event.kind in FAILURE_KINDS:
            span.status_code = _ERROR
            span.status_message = event.error or ""
            span.attributes.update(attrs.error_pairs(event))
        if end < span.start_ns:  # max(), inline: every span end
            end = span.start_ns
        if op in CONTAINER_OPS:
            end = self._closer.close_descendants(run, span, end)
        end = self._closer.emit(run, span, end)
        return _new(Placement, (run.trace_id, span.span_id, span.parent_span_id, (end - span.start_ns) / 1e6, cost))

    def _complete_llm(self, run: Run, span: Span, event: AgentEvent) -> float | None:
        """Set the completion attributes; return the call's priced cost, if any."""
        attributes = span.attributes
        attrs.add_llm_end(attributes, event, self._s.latest_semconv)
        if event.stream:
            span.streaming = True
        if self._s.capture_content:
            calls = captured.requested_tool_calls(span.events or ())
            span.attributes.update(captured.llm_content_pairs(event, self._s.attribute_max_length, calls))
            details = captured.content_event_attributes(span.attributes) if self._s.content_events else None
            if details is not None:
                span.add_event(SpanEventRecord(sc.EVENT_INFERENCE_DETAILS, event.timestamp_ns, details))
        if not attrs.has_model(attributes):
            attributes.update(attrs.inherited_model_attributes(attributes, ancestors(run, span)))
        if event.usage is not None:
            run.usage = event.usage.plus(run.usage)
            if self._pricer is not None:
                model = attrs.priced_model(attributes)
                provider = attributes.get(sc.GEN_AI_PROVIDER_NAME)
                cost = self._pricer(provider if isinstance(provider, str) else None, model, event.usage)
                if cost is not None:
                    attrs.add_cost(attributes, cost)
                    run.cost = cost + (run.cost or 0.0)
                return cost
        return None

    def _on_chunk(self, run: Run, event: AgentEvent, now: float) -> Placement:
        span = llm_span_for(run, event.call_id)
        if span is None:
            return self._add_span_event(run, innermost(run), event, now)
        span.last_active = now
        span.touch(event)
        span.chunk_count += 1
        span.streaming = True
        if span.first_chunk_ns is None:
            span.first_chunk_ns = event.timestamp_ns
        if self._s.chunk_events:
            self._add_span_event(run, span, event, now)
        return _new(Placement, (run.trace_id, span.span_id, span.parent_span_id, None, None))

    def _on_stream(self, run: Run, event: AgentEvent, now: float) -> Placement:
        """Producer stream bookkeeping, paired with its LLM call by order within the run."""
        starting = event.kind is _STREAM_STARTED
        span = llm_span_for(run, event.call_id, fallback=not starting)
        if span is None and starting:
            # The oldest open streamed call not yet paired takes this stream.
            candidates = [s for s in run.open.values() if s.op == OP_LLM and not s.stream_paired]
            streamed = [s for s in candidates if s.streaming]
            chosen = (streamed or candidates)[:1]
            if chosen:
                span = chosen[0]
                span.stream_paired = True
                span.streaming = True
                if event.call_id is not None:
                    if run.stream_spans is None:
                        run.stream_spans = {}
                    run.stream_spans[event.call_id] = span.key
                    span.attributes.update(attrs.stream_attributes(event.call_id))
        return self._add_span_event(run, span or innermost(run), event, now)

    def _add_span_event(self, run: Run, span: Span, event: AgentEvent, now: float) -> Placement:
        span.last_active = now
        if event.timestamp_ns > span.last_ns:  # Span.touch, inline
            span.last_ns = event.timestamp_ns
        if span.event_count() >= self._s.max_events_per_span:
            span.dropped_events += 1
            self._stats.drop("max_events_per_span")
        else:
            attributes = attrs.span_event_attributes(
                event, self._s.capture_content, self._s.attribute_max_length, self._redact_payload
            )
            name = event.original_type if event.kind is _CUSTOM else str(event.kind)
            span.add_event(SpanEventRecord(name, event.timestamp_ns, attributes))
        return _new(Placement, (run.trace_id, span.span_id, span.parent_span_id, None, None))

    # -- output ------------------------------------------------------------------
    def _flush_out(self) -> None:
        if self._out:
            out = self._out.copy()  # the sink may keep its list; ours is the one the closer appends to
            self._out.clear()
            self._stats.spans_finished += len(out)
            try:
                self._sink.consume(out)
            except Exception:  # a sink broke its contract: the spans are counted, the caller goes on
                logging.getLogger(__name__).exception("span sink failed; %d spans dropped", len(out))
                self._stats.drop("sink_failed", len(out))
