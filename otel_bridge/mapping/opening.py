"""How runs and spans open: a new run, a reopened one, a late event continuing a finished one, a span.

:class:`Opener` adds to the mapper's run table (:mod:`.table`) what an event opens, with the
span ids derived from their keys (:mod:`.ids`) and their attributes as they start
(:mod:`.attributes`), and applies the bounds an opening can pass (``max_open_runs``,
``max_open_spans_per_run``, ``max_open_spans``: their reasons are listed in :mod:`.lifecycle`),
closing what they push out through :mod:`.closing`. :mod:`.lifecycle` decides when an event
opens something; this module how.
"""

from __future__ import annotations

from collections import OrderedDict

from otel_bridge import semconv as sc
from otel_bridge.config import MappingSettings
from otel_bridge.mapping import attributes as attrs
from otel_bridge.mapping.closing import Closer, continuation_key
from otel_bridge.mapping.ids import parse_traceparent, span_id_for, trace_id_for_run
from otel_bridge.mapping.table import OP_AGENT, OP_LLM, OP_TOOL, ROOT_KEY, Finished, Run, Span, SpanKey, container
from otel_bridge.model import AgentEvent, SpanLinkRecord
from otel_bridge.stats import Stats


class Opener:
    """Opens runs and spans in the mapper's run table (shared with the :class:`~.closing.Closer`)."""

    def __init__(self, settings: MappingSettings, stats: Stats, runs: OrderedDict[str, Run], closer: Closer) -> None:
        self._s = settings
        self._stats = stats
        self._runs = runs  # the mapper's table: LRU, least recently active first
        self._closer = closer
        self._open_spans_bound = 0  # >= the open spans across runs; exact after each recount
        self._reopened = 0  # forgotten runs seen again (their root keys: run~1, run~2...)

    # -- runs ------------------------------------------------------------------
    def run(self, event: AgentEvent, now: float) -> Run:
        """The run ``event`` opens (it has none open): a continuation of a finished run, else a new one."""
        finished = self._closer.finished.get(event.run_id)
        run = self._continuation(event, finished, now) if finished is not None else self._new_run(event, now)
        self._runs[event.run_id] = run
        self._stats.runs_started += 1
        first_check = self._closer.first_check(run)
        if first_check is not None:
            self._closer.schedule(run, first_check)
        if len(self._runs) > self._s.max_open_runs:
            oldest = next(iter(self._runs.values()))
            self._stats.drop("max_open_runs")
            self._closer.finish_run(oldest, sc.CLOSE_EVICTED)
        return run

    def _new_run(self, event: AgentEvent, now: float) -> Run:
        parent_span_id: bytes | None = None
        traced = parse_traceparent(event.traceparent)
        if traced is not None:
            trace_id, parent_span_id = traced
        else:
            trace_id = trace_id_for_run(event.run_id, self._s.id_salt)
        key = ROOT_KEY
        if trace_id in self._closer.forgotten:
            # This run (or, rarely, one sharing its bit) finished and was forgotten: a root key of its
            # own, so that nothing it exported before is exported again under the same ids.
            self._reopened += 1
            key = f"{ROOT_KEY}~{self._reopened}"
            self._stats.runs_reopened += 1
        start = event.timestamp_ns
        root = Span(  # in field order, as in span()
            key,
            OP_AGENT,
            span_id_for(trace_id, key),
            parent_span_id,
            start,
            start,
            now,
            attrs.run_start_attributes(event),
        )
        return Run(run_id=event.run_id, trace_id=trace_id, root=root, opened_at=now)

    def _continuation(self, event: AgentEvent, finished: Finished, now: float) -> Run:
        """A late event for a finished run: a child of its root, in the same trace."""
        n = finished.continuations + 1
        self._closer.finished[event.run_id] = finished._replace(continuations=n)
        key = continuation_key(finished, n)
        start = event.timestamp_ns
        root = Span(  # in field order, as in span()
            key,
            OP_AGENT,
            span_id_for(finished.trace_id, key),
            finished.root_span_id,
            start,
            start,
            now,
            attrs.continuation_attributes(event, finished.agent),
        )
        self._stats.continuations += 1
        return Run(run_id=event.run_id, trace_id=finished.trace_id, root=root, opened_at=now)

    # -- spans -----------------------------------------------------------------
    def span(self, run: Run, key: SpanKey, op: str, event: AgentEvent, start_ns: int, now: float) -> Span:
        """Open the span ``key`` in ``run`` (``event`` starts it, or ends it when it had no start)."""
        parent = container(run)
        if op == OP_AGENT and event.parent_call_id is not None:
            # A sub-agent run by a tool call (Locus subagents, AG-UI parentToolCallId) nests under that call.
            parent = run.open.get(f"{OP_TOOL}:{event.parent_call_id}", parent)
        # The fields in order (key, op, span id, parent span id, start, last event, last active, attributes)
        # and the others set after: a call with keywords costs twice as much, once per span.
        span = Span(
            key.lookup,
            op,
            run.child_span_id(key.ident),
            parent.span_id,
            start_ns,
            event.timestamp_ns,
            now,
            attrs.open_attributes(op, event, self._s.capture_content, self._s.attribute_max_length),
        )
        span.parent = parent
        span.counted = key.counted
        if op == OP_LLM and event.stream:
            span.streaming = True
        if event.inferred:  # an inferred start's time is not a request time (no time to first chunk from it)
            span.inferred = True
        if op == OP_TOOL and event.parent_call_id is not None:
            span.links = [SpanLinkRecord(run.trace_id, run.child_span_id(f"{OP_LLM}:{event.parent_call_id}"), {})]
        run.open[key.lookup] = span
        if run.sweep_due is None:  # its timeout needs a check; a run with a check due has one no later
            self._closer.schedule(run, now + self._s.span_timeout_s)
        if len(run.open) > self._s.max_open_spans_per_run:
            oldest = next(iter(run.open.values()))
            self._stats.drop("max_open_spans_per_run")
            self._closer.close_incomplete(run, oldest, sc.CLOSE_EVICTED, oldest.last_ns)
        self._open_spans_bound += 1
        if self._open_spans_bound > self._s.max_open_spans:
            self._bound_open_spans(run)
        return span

    def _bound_open_spans(self, current: Run) -> None:
        """Close the least recently active runs (never ``current``) until the open spans fit the cap."""
        total = sum(len(r.open) for r in self._runs.values())
        while total > self._s.max_open_spans:
            oldest = next(iter(self._runs.values()))
            if oldest is current:  # alone over the cap: its own bound (max_open_spans_per_run) holds it
                break
            total -= len(oldest.open)
            self._stats.drop("max_open_spans")
            self._closer.finish_run(oldest, sc.CLOSE_EVICTED)
        self._open_spans_bound = total
