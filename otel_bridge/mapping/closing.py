"""How spans and runs end: by their producer, by a bound, by a timeout, at shutdown.

:class:`Closer` turns an open span into a :class:`SpanRecord` (its closing
attributes from :mod:`.attributes`), closes what a producer left open as
incomplete (status ERROR, ``error.type=incomplete``, the reason), keeps the
ended runs waiting out their grace period, and remembers finished runs so that
a late event joins their trace. The bounds it applies are listed, with their
reasons, in :mod:`.lifecycle`. A run it closes without its producer's end is
also kept as a terminal event for the observers (:func:`close_notice`; the
mapper's ``take_closed``), so a UI following the run sees it end.

Timeouts cost nothing while nothing is due: ended runs wait in a FIFO (one grace
period for all), idle runs are found from the oldest end of the LRU run table,
and span timeouts and "in progress" markers come from a heap with one entry per
run that has open spans or is not marked yet, keyed by the earliest time one of
them can fall due. An entry is checked when it falls due and pushed again with
the run's next deadline (a span touched since is not due yet): a sweep touches
only what is due, however many runs are open.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Callable

from otel_bridge import semconv as sc
from otel_bridge.config import MappingSettings
from otel_bridge.mapping import attributes as attrs
from otel_bridge.mapping.ids import span_id_for
from otel_bridge.mapping.span_names import span_kind, span_name
from otel_bridge.mapping.table import OP_LLM, ROOT_KEY, Finished, Run, Span, ancestors
from otel_bridge.model import AgentEvent, EventKind, Placement, SpanKind, SpanRecord, StatusCode
from otel_bridge.stats import Stats


class Closer:
    """Ends the spans and runs of the mapper's run table, handing each record to ``emit``."""

    def __init__(
        self,
        settings: MappingSettings,
        stats: Stats,
        runs: OrderedDict[str, Run],
        emit: Callable[[SpanRecord], None],
    ) -> None:
        self._s = settings
        self._stats = stats
        self._runs = runs  # the mapper's table, shared: a finished run leaves it here
        self._emit_record = emit
        self._ending: deque[tuple[float, str]] = deque()
        self._due: list[tuple[float, int, Run]] = []  # the timeout heap: (when, tie-break, run)
        self._due_seq = 0
        self.finished: OrderedDict[str, Finished] = OrderedDict()
        # An evicted run's later events must find it here (or in `forgotten`), else they would rebuild
        # the span ids it already exported: at least as many as can be open, so one eviction storm
        # (every new run evicting an open one) cannot push out a run still sending.
        self.max_finished = max(settings.max_finished_runs, settings.max_open_runs)
        self.forgotten = ForgottenRuns(4 * (self.max_finished + settings.max_open_runs))
        # Runs closed here without an end from their producer, as the terminal event the observers get
        # (:func:`close_notice`); kept only when someone takes them (``report_closes``), else none.
        self.closed: list[tuple[AgentEvent, Placement]] = []
        self.report_closes = False

    def schedule(self, run: Run, when: float) -> None:
        """Check ``run``'s span timeouts and marker at ``when`` (or earlier, if it already has an earlier check)."""
        if run.sweep_due is not None and run.sweep_due <= when:
            return
        run.sweep_due = when
        self._due_seq += 1
        heapq.heappush(self._due, (when, self._due_seq, run))

    def first_check(self, run: Run) -> float | None:
        """When a new run's first timeout check is due: its marker, if the marker is on."""
        mark_after = self._s.run_marker_after_s
        return run.opened_at + mark_after if mark_after else None

    def end_later(self, run: Run, now: float) -> None:
        """A run's terminal event was seen: it stays open ``run_end_grace_s`` for late events."""
        if run.ending_deadline is None:
            run.ending_deadline = now + self._s.run_end_grace_s
            self._ending.append((run.ending_deadline, run.run_id))

    @property
    def next_end(self) -> float | None:
        """When the earliest ended run's grace is over (the mapper's clock), or ``None``."""
        return self._ending[0][0] if self._ending else None

    def close_ended(self, now: float) -> None:
        """Close the ended runs whose grace is over at ``now``."""
        while self._ending and self._ending[0][0] <= now:
            _, run_id = self._ending.popleft()
            run = self._runs.get(run_id)
            if run is not None and run.ending_deadline is not None and run.ending_deadline <= now:
                self.finish_run(run, sc.CLOSE_RUN_ENDED)

    def sweep(self, now: float) -> None:
        """Close what timed out: ended runs past their grace, idle runs, stale spans."""
        self.close_ended(now)
        idle = self._s.run_idle_timeout_s
        while self._runs:
            run = next(iter(self._runs.values()))
            if now - run.root.last_active < idle:
                break
            self.finish_run(run, sc.CLOSE_IDLE)
        due = self._due
        while due and due[0][0] <= now:
            when, _, run = heapq.heappop(due)
            if run.sweep_due != when or self._runs.get(run.run_id) is not run:
                continue  # superseded by an earlier check, or the run has closed
            run.sweep_due = None
            self._check(run, now)

    def _check(self, run: Run, now: float) -> None:
        """One run's span timeouts and marker, then its next check."""
        span_timeout = self._s.span_timeout_s
        mark_after = self._s.run_marker_after_s
        for span in [s for s in run.open.values() if now - s.last_active >= span_timeout]:
            self.close_incomplete(run, span, sc.CLOSE_SPAN_TIMEOUT, span.last_ns)
        if mark_after and not run.marked and now - run.opened_at >= mark_after:
            self.mark_in_progress(run)
        following = min((s.last_active for s in run.open.values()), default=None)
        when = following + span_timeout if following is not None else None
        if mark_after and not run.marked:
            marker = run.opened_at + mark_after
            when = marker if when is None else min(when, marker)
        if when is not None:
            self.schedule(run, when)

    def mark_in_progress(self, run: Run) -> None:
        """Emit a long run's "in progress" marker: a short child of its root, which leaves only at the run's end.

        Its children are exported as they end; without this, a backend shows them under a parent it
        does not have yet, and nothing names the run until it ends. The marker carries the root's
        attributes so the run can be found by agent, conversation or run id while it runs. It spans
        the run's start to its latest event so far. One per run: a run is marked once.
        """
        run.marked = True
        root = run.root
        self._stats.run_markers += 1
        self._emit_record(
            SpanRecord(
                trace_id=run.trace_id,
                span_id=span_id_for(run.trace_id, root.key + ".in_progress"),
                parent_span_id=root.span_id,
                name=root.name() + sc.RUN_MARKER_SUFFIX,
                kind=SpanKind.INTERNAL,
                start_ns=root.start_ns,
                end_ns=max(root.last_ns, root.start_ns + 1),
                attributes=attrs.run_marker_attributes(root.attributes),
            )
        )

    def close_all(self, reason: str) -> None:
        """Close every open run now."""
        for run in list(self._runs.values()):
            self.finish_run(run, reason)
        self._ending.clear()
        self._due.clear()

    def close_incomplete(self, run: Run, span: Span, reason: str, end_ns: int) -> None:
        """Close a span its producer did not end (evicted, timed out, its run closed)."""
        run.open.pop(span.key, None)
        span.status_code = StatusCode.ERROR
        span.status_message = f"span not ended by its producer ({reason})"
        span.attributes.update(attrs.incomplete_attributes(reason))
        self._stats.incomplete[reason] += 1
        self.emit(run, span, max(end_ns, span.start_ns))

    def close_descendants(self, run: Run, parent: Span, end_ns: int) -> int:
        """An agent or step span is ending: close what is still open under it as incomplete.

        A child cannot outlive its parent (Jaeger flags such a trace): the children end with the
        parent, at ``end_ns``, or at the latest event one of them saw if that is later; the
        parent's end to use is returned.
        """
        ids = {parent.span_id}
        under: list[Span] = []
        for span in run.open.values():  # start order: a parent comes before its children
            if span.parent_span_id in ids and span is not parent:
                ids.add(span.span_id)
                under.append(span)
        if not under:
            return end_ns
        end_ns = max(end_ns, *(max(s.last_ns, s.start_ns + 1) for s in under))
        for span in reversed(under):  # innermost first
            self.close_incomplete(run, span, sc.CLOSE_PARENT_ENDED, end_ns)
        return end_ns

    def emit(self, run: Run, span: Span, end_ns: int) -> int:
        """The span is over: add its closing attributes and hand its record on.

        A span is never shorter than 1 ns: a producer's instant (one event, start == end) is valid
        OTLP, but Jaeger reads it as a negative duration and rewrites it with a warning. Returns the
        end it gave the span.
        """
        if span.op == OP_LLM:
            ttfc = None if span.first_chunk_ns is None or span.inferred else span.first_chunk_ns - span.start_ns
            attrs.add_llm_finish(
                span.attributes, streaming=span.streaming, chunk_count=span.chunk_count, time_to_first_chunk_ns=ttfc
            )
        # Comparisons rather than max() and min(): this runs for every span.
        if end_ns <= span.start_ns:
            end_ns = span.start_ns + 1
        parent = span.parent
        if parent is not None and parent.last_ns < end_ns:  # an open parent lasts as long as its children
            parent.last_ns = end_ns
        root = run.root
        if root.last_ns < end_ns:
            root.last_ns = end_ns
        # A child rebuilt from its duration may start before the first event seen:
        # the run span is widened so that it still contains all its children.
        if span.start_ns < root.start_ns:
            root.start_ns = span.start_ns
        if span.op == OP_LLM and not attrs.has_model(span.attributes):
            span.attributes.update(attrs.inherited_model_attributes(span.attributes, ancestors(run, span)))
            if not attrs.has_model(span.attributes) and self._runs.get(run.run_id) is run:
                run.hold(span, end_ns)  # the run may name its model before it ends
                return end_ns
        if span.counted:
            run.count_use(span)
        self._record(run, span, end_ns)
        return end_ns

    def _record(self, run: Run, span: Span, end_ns: int) -> None:
        self._emit_record(
            SpanRecord(
                trace_id=run.trace_id,
                span_id=span.span_id,
                parent_span_id=span.parent_span_id,
                name=span_name(span.op, span.attributes),
                kind=span_kind(span.op, span.attributes),
                start_ns=span.start_ns,
                end_ns=end_ns,
                attributes=span.attributes,
                events=tuple(span.events) if span.events else (),
                links=tuple(span.links) if span.links else (),
                status_code=span.status_code,
                status_message=span.status_message,
                dropped_events=span.dropped_events,
            )
        )

    def finish_run(self, run: Run, reason: str) -> None:
        """Close a run: its open spans as incomplete, then its root; remember it as finished."""
        if run.end_ns is not None:
            reason = sc.CLOSE_RUN_ENDED  # its terminal event was seen: timeouts do not apply
        self._runs.pop(run.run_id, None)
        root = run.root
        end = run.end_ns if run.end_ns is not None else root.last_ns
        # Innermost first, so that a span left open ends no earlier than what was left open under it.
        child_ends: dict[bytes, int] = {}
        for span in reversed(list(run.open.values())):
            span_end = max(
                span.last_ns,
                end if reason == sc.CLOSE_RUN_ENDED else span.last_ns,
                child_ends.get(span.span_id, 0),
                span.start_ns + 1,
            )
            self.close_incomplete(run, span, reason, span_end)
            if span.parent_span_id is not None:
                child_ends[span.parent_span_id] = max(child_ends.get(span.parent_span_id, 0), span_end)
        end = max(end, root.last_ns)
        root.attributes.update(
            attrs.run_finish_attributes(
                close_reason=None if reason == sc.CLOSE_RUN_ENDED else reason,
                usage=run.usage,
                cost=run.cost,
                latest=self._s.latest_semconv,
            )
        )
        for span, span_end in run.held or ():  # chat spans that waited for a model: the run's, if it named one
            span.attributes.update(attrs.inherited_model_attributes(span.attributes, ancestors(run, span)))
            self._record(run, span, span_end)
        run.held = None
        end = self.emit(run, root, max(end, root.start_ns))
        self._stats.runs_finished += 1
        agent = root.attributes.get(sc.GEN_AI_AGENT_NAME)
        previous = self.finished.pop(run.run_id, None)
        # One terminal event per run: a continuation (late events of a run already closed) is not told again.
        if self.report_closes and reason != sc.CLOSE_RUN_ENDED and previous is None:
            self.closed.append(close_notice(run, reason, end))
        self.finished[run.run_id] = Finished(
            run.trace_id,
            previous.root_span_id if previous is not None else root.span_id,
            agent if isinstance(agent, str) else None,
            previous.continuations if previous is not None else 0,
            previous.root_key if previous is not None else root.key,
        )
        while len(self.finished) > self.max_finished:
            _, forgotten = self.finished.popitem(last=False)
            self.forgotten.add(forgotten.trace_id)
            self._stats.finished_runs_forgotten += 1


def close_notice(run: Run, reason: str, end_ns: int) -> tuple[AgentEvent, Placement]:
    """The terminal event a run closed by the bridge (``reason``) is told to the observers as, and its placement.

    A producer that never ends its runs (MCP-like captures, event logs, a stream that just stops) would
    otherwise leave a filtered UI response open for ever. The event is synthesised (``inferred``, with
    no producer time): ``run.finished`` for a run that went quiet (``idle_timeout``) or whose input ran
    out (``end_of_input``), as the mapper leaves its root span's status unset; ``run.failed`` for a run
    the bridge stopped following while it may still be running (``evicted`` by a bound or by
    ``shed_oldest``; ``shutdown``), or whose root span is an error. ``original_type`` names the reason
    (:data:`~otel_bridge.semconv.RUN_CLOSED_TYPES`), ``status`` is the close reason. It sits on the run's
    root span, with the run's summed token usage.
    """
    root = run.root
    attributes = root.attributes
    failed = reason in sc.RUN_CLOSED_FAILURES or root.status_code is StatusCode.ERROR
    dialect = attributes.get(sc.BRIDGE_DIALECT)
    source = attributes.get(sc.BRIDGE_SOURCE)
    agent = attributes.get(sc.GEN_AI_AGENT_NAME)
    conversation = attributes.get(sc.GEN_AI_CONVERSATION_ID)
    event = AgentEvent(
        kind=EventKind.RUN_FAILED if failed else EventKind.RUN_FINISHED,
        run_id=run.run_id,
        timestamp_ns=end_ns,
        dialect=dialect if isinstance(dialect, str) else sc.BRIDGE_NAMESPACE,
        original_type=sc.RUN_CLOSED_TYPES.get(reason, sc.RUN_CLOSED_OTHER),
        timestamp_from_source=False,
        inferred=True,
        source=source if isinstance(source, str) else sc.BRIDGE_NAMESPACE,
        agent=agent if isinstance(agent, str) else None,
        conversation_id=conversation if isinstance(conversation, str) else None,
        status=reason,
        usage=run.usage,
        error=(root.status_message or f"run closed by otel-bridge: {reason}") if failed else None,
        error_type=reason if failed else None,
    )
    return event, Placement(run.trace_id, root.span_id, root.parent_span_id, (end_ns - root.start_ns) / 1e6)


class ForgottenRuns:
    """Trace ids of runs no longer remembered as finished: one bit each, so far more of them fit.

    A run that comes back after its :class:`Finished` entry is gone would otherwise rebuild span ids
    it already exported (its root's ``run`` key, its ``#n`` keys from 1 again): a backend then holds
    two spans with one id. A run whose trace id is found here starts under a key of its own
    (``run~<n>``) instead. Two generations of ``capacity`` runs each, ``32 x capacity`` bits each
    (one bit per run; trace ids are uniform): a run forgotten less than ``capacity`` runs ago is
    always found (4 bytes a run, against ~150 for a :class:`Finished` entry); a new run is taken for
    a forgotten one at most ~6 % of the time (3 % of each generation's bits set when it is full),
    and then only gets a root key a restarted sidecar would not rebuild, never a wrong or duplicate id.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = max(capacity, 64)
        self._bits = 32 * self._capacity
        self._current = bytearray(self._bits // 8)
        self._previous = bytearray(self._bits // 8)
        self._added = 0
        self._ever = False

    def _slot(self, trace_id: bytes) -> tuple[int, int]:
        bit = int.from_bytes(trace_id[:8], "big") % self._bits
        return bit >> 3, 1 << (bit & 7)

    def add(self, trace_id: bytes) -> None:
        if self._added >= self._capacity:
            self._previous, self._current = self._current, self._previous
            self._current[:] = bytes(len(self._current))
            self._added = 0
        index, mask = self._slot(trace_id)
        self._current[index] |= mask
        self._added += 1
        self._ever = True

    def __contains__(self, trace_id: bytes) -> bool:
        if not self._ever:  # the common case: no run was ever forgotten
            return False
        index, mask = self._slot(trace_id)
        return bool((self._current[index] | self._previous[index]) & mask)

    def nbytes(self) -> int:
        return 2 * len(self._current)


def continuation_key(finished: Finished, n: int) -> str:
    """The root key of a finished run's ``n``-th continuation (``run+1``; under a reopened root, ``run~3+1``)."""
    return f"{ROOT_KEY}+{n}" if finished.root_key == ROOT_KEY else f"{finished.root_key}+{n}"
