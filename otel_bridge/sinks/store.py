"""The embedded trace store: recent traces in memory, bounded, newest kept.

It is the default sink when no OTLP endpoint is set (and on beside export
unless disabled), and what ``GET /v1/traces`` and the viewer read. Summaries
are kept up to date as spans arrive, so listing does not rescan spans.

Bounds: ``store.max_traces`` traces, ``store.max_spans_per_trace`` spans in
one, and ``store.max_spans`` spans in all (many traces of many spans would
otherwise add up to gigabytes): past a bound the oldest traces are evicted
whole (counted ``store_evicted_trace``); a span that fits no bound is counted
and not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from otel_bridge import semconv as sc
from otel_bridge.config import StoreSettings
from otel_bridge.model import AgentEvent, Placement, SpanRecord, StatusCode
from otel_bridge.stats import Stats


@dataclass(slots=True)
class TraceSummary:
    trace_id: str
    run_id: str | None = None
    agent: str | None = None
    dialect: str | None = None
    root_name: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    span_count: int = 0
    error_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    status: str = "ok"
    llm_calls: int = 0
    tool_calls: int = 0
    models: set[str] = field(default_factory=set)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_json(self) -> dict[str, object]:
        return {
            "trace_id": self.trace_id,
            "run_id": self.run_id,
            "agent": self.agent,
            "dialect": self.dialect,
            "name": self.root_name,
            "start_time_unix_nano": self.start_ns,
            "duration_ms": (self.end_ns - self.start_ns) / 1e6,
            "span_count": self.span_count,
            "error_count": self.error_count,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "status": self.status,
            "llm_calls": self.llm_calls,
            "tool_calls": self.tool_calls,
            "models": sorted(self.models),
        }


class TraceStatus(StrEnum):
    """A listed run's status: ``running`` until its own span arrives, then ``ok`` or ``error``; ``incomplete``
    for a run the sidecar stopped following while it may still have been running (evicted by a bound,
    or open at shutdown: the live feed tells it as ``run.failed``, its span's status is left unset)."""

    OK = "ok"
    ERROR = "error"
    RUNNING = "running"
    INCOMPLETE = "incomplete"


_ERROR = StatusCode.ERROR  # bound once: an enum member is a slow class lookup, and this is read once per span
_OK = TraceStatus.OK.value
_INCOMPLETE = TraceStatus.INCOMPLETE.value
_RUNNING = TraceStatus.RUNNING.value

# The per-span path's names, bound once.
_OPERATION = sc.GEN_AI_OPERATION_NAME
_OP_EXECUTE_TOOL = sc.OP_EXECUTE_TOOL
_OP_CHAT = sc.OP_CHAT
_REQUEST_MODEL = sc.GEN_AI_REQUEST_MODEL
_RESPONSE_MODEL = sc.GEN_AI_RESPONSE_MODEL
_INPUT_TOKENS = sc.GEN_AI_USAGE_INPUT_TOKENS
_OUTPUT_TOKENS = sc.GEN_AI_USAGE_OUTPUT_TOKENS
_RUN_ID = sc.BRIDGE_RUN_ID

_GAVE_UP = frozenset(sc.RUN_CLOSED_TYPES[reason] for reason in sc.RUN_CLOSED_FAILURES)
"""The synthetic ends of runs the sidecar gave up on (evicted, shut down): listed as incomplete."""


class SortKey(StrEnum):
    TIME = "time"
    DURATION = "duration"
    TOKENS = "tokens"
    COST = "cost"


_SORT_VALUE: dict[SortKey, Callable[[TraceSummary], float]] = {
    SortKey.TIME: lambda s: s.start_ns,
    SortKey.DURATION: lambda s: s.duration_ns,
    SortKey.TOKENS: lambda s: s.tokens,
    # A run with no priced cost sorts as free: absence is not an error here, only unknown.
    SortKey.COST: lambda s: s.cost_usd if s.cost_usd is not None else -1.0,
}


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Which traces ``GET /v1/traces`` lists, and in what order. ``None`` means "any".

    Bounds are inclusive; ``since``/``until`` select on the trace's start time.
    ``q`` is a case-insensitive substring of the run id, the trace id or any
    string attribute value of the trace's stored spans.
    """

    run_id: str | None = None
    agent: str | None = None
    model: str | None = None
    status: TraceStatus | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    q: str | None = None
    sort: SortKey = SortKey.TIME
    descending: bool = True
    limit: int = 50


@dataclass(slots=True)
class _Trace:
    summary: TraceSummary
    spans: list[SpanRecord] = field(default_factory=list)
    has_root: bool = False


class TraceStore:
    """A :class:`SpanSink` that keeps the most recent ``max_traces`` traces."""

    name = "store"

    def __init__(self, settings: StoreSettings, stats: Stats) -> None:
        self._s = settings
        self._stats = stats
        self._traces: OrderedDict[bytes, _Trace] = OrderedDict()
        # Traces evicted lately: a run is listed from its first event and its spans come later,
        # so an evicted trace can come back and be evicted again; it is counted once.
        self._evicted: OrderedDict[bytes, None] = OrderedDict()
        self._span_count = 0  # spans kept, across traces

    def __len__(self) -> int:
        return len(self._traces)

    @property
    def span_count(self) -> int:
        return self._span_count

    def _trace(self, trace_id: bytes, start_ns: int, end_ns: int) -> _Trace:
        trace = self._traces.get(trace_id)
        if trace is None:
            trace = _Trace(TraceSummary(trace_id.hex(), start_ns=start_ns, end_ns=end_ns))
            self._traces[trace_id] = trace
            if len(self._traces) > self._s.max_traces:
                self._evict_oldest()
        return trace

    def _evict_oldest(self) -> None:
        evicted, trace = self._traces.popitem(last=False)
        self._span_count -= len(trace.spans)
        if evicted not in self._evicted:
            self._stats.drop("store_evicted_trace")
        self._evicted[evicted] = None
        if len(self._evicted) > max(self._s.max_traces, 1024):
            self._evicted.popitem(last=False)

    def _room_for_one(self, trace: _Trace) -> bool:
        """Evict the oldest other traces until one more span fits ``max_spans``; ``False`` if it cannot."""
        while self._span_count >= self._s.max_spans:
            if next(iter(self._traces.values())) is trace:  # the oldest is the one it joins: keep it whole
                return False
            self._evict_oldest()
        return True

    def observe(self, events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
        """Runs appear as they start, not only when their own span ends (a bridge observer).

        A run's ``invoke_agent`` span is exported when the run ends; until then the
        list shows the run with ``status="running"``, its run id, agent and the
        time its events cover. A run the bridge closed itself whose own span was not
        kept is settled by the terminal event the bridge tells for it.
        """
        traces = self._traces
        for event, placement in zip(events, placements, strict=True):
            at = event.timestamp_ns
            trace = traces.get(placement.trace_id)
            if trace is None:
                trace = self._trace(placement.trace_id, at, at)
            elif trace.has_root:
                continue
            s = trace.summary
            if s.run_id is None:
                s.run_id = event.run_id
                s.dialect = event.dialect
                s.status = _RUNNING
            if s.agent is None and event.agent is not None:
                s.agent = event.agent
            if event.model is not None:
                s.models.add(event.model)
            if at < s.start_ns:
                s.start_ns = at
            if at > s.end_ns:
                s.end_ns = at
            if event.inferred and event.original_type in sc.RUN_CLOSED_ALL:
                # The bridge closed the run but its own span was not kept (a bound): it is no longer running.
                s.status = _INCOMPLETE if event.original_type in _GAVE_UP else _OK

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        traces = self._traces
        per_trace = self._s.max_spans_per_trace
        max_spans = self._s.max_spans
        stored = 0
        for span in spans:
            trace = traces.get(span.trace_id)
            if trace is None:
                trace = self._trace(span.trace_id, span.start_ns, span.end_ns)
            if len(trace.spans) >= per_trace:
                self._stats.drop("store_max_spans_per_trace")
                continue
            if self._span_count >= max_spans and not self._room_for_one(trace):
                self._stats.drop("store_max_spans")
                continue
            trace.spans.append(span)
            self._span_count += 1
            stored += 1
            _summarise(trace, span)
        self._stats.spans_exported[self.name] += stored  # a span cut by the bound is counted once, as dropped

    def recent(self, limit: int = 50, run_id: str | None = None, agent: str | None = None) -> list[TraceSummary]:
        """Newest first (by start time)."""
        return self.search(TraceQuery(run_id=run_id, agent=agent, limit=limit))

    def search(self, query: TraceQuery) -> list[TraceSummary]:
        """The summaries ``query`` selects, sorted, at most ``query.limit`` of them.

        Ties keep the store's order, newest first. Free text scans the stored
        spans' attributes, so it costs a pass over the store (bounded by
        ``max_traces`` x ``max_spans_per_trace``); the other filters read only summaries.
        """
        needle = query.q.casefold() if query.q else None
        found: list[TraceSummary] = []
        for trace in reversed(self._traces.values()):
            s = trace.summary
            if self._selects(query, s) and (needle is None or _mentions(trace, needle)):
                found.append(s)
        value = _SORT_VALUE[query.sort]
        # Python's sort is stable (reverse=True too), so equal values stay newest first either way.
        found.sort(key=value, reverse=query.descending)
        return found[: query.limit]

    @staticmethod
    def _selects(query: TraceQuery, s: TraceSummary) -> bool:
        return (
            (query.run_id is None or s.run_id == query.run_id)
            and (query.agent is None or s.agent == query.agent)
            and (query.model is None or query.model in s.models)
            and (query.status is None or s.status == query.status.value)
            and (query.since_ns is None or s.start_ns >= query.since_ns)
            and (query.until_ns is None or s.start_ns <= query.until_ns)
            and (query.min_duration_ns is None or s.duration_ns >= query.min_duration_ns)
            and (query.max_duration_ns is None or s.duration_ns <= query.max_duration_ns)
        )

    def get(self, trace_id: bytes) -> list[SpanRecord] | None:
        trace = self._traces.get(trace_id)
        return list(trace.spans) if trace is not None else None


def _mentions(trace: _Trace, needle: str) -> bool:
    s = trace.summary
    if needle in s.trace_id or (s.run_id is not None and needle in s.run_id.casefold()):
        return True
    for span in trace.spans:
        for value in span.attributes.values():
            if isinstance(value, str) and needle in value.casefold():
                return True
    return False


def _summarise(trace: _Trace, span: SpanRecord) -> None:
    """One more span in the trace's summary (once per stored span: kept cheap, comparisons over min/max)."""
    s = trace.summary
    s.span_count += 1
    if span.start_ns < s.start_ns:
        s.start_ns = span.start_ns
    if span.end_ns > s.end_ns:
        s.end_ns = span.end_ns
    if span.status_code is _ERROR:
        s.error_count += 1
    get = span.attributes.get
    operation = get(_OPERATION)
    if operation == _OP_EXECUTE_TOOL:
        s.tool_calls += 1
    elif operation == _OP_CHAT:
        s.llm_calls += 1
        model = get(_REQUEST_MODEL)
        if isinstance(model, str):
            s.models.add(model)
        model = get(_RESPONSE_MODEL)
        if isinstance(model, str):
            s.models.add(model)
        tokens = get(_INPUT_TOKENS)
        if isinstance(tokens, int):
            s.input_tokens += tokens
        tokens = get(_OUTPUT_TOKENS)
        if isinstance(tokens, int):
            s.output_tokens += tokens
    if not trace.has_root and isinstance(get(_RUN_ID), str):
        _settle(trace, span)


def _settle(trace: _Trace, span: SpanRecord) -> None:
    """The run's own span: it settles the summary the events had sketched."""
    s = trace.summary
    a = span.attributes
    run_id = a.get(sc.BRIDGE_RUN_ID)
    assert isinstance(run_id, str)
    trace.has_root = True
    s.run_id = run_id
    agent = a.get(sc.GEN_AI_AGENT_NAME)
    s.agent = agent if isinstance(agent, str) else None
    dialect = a.get(sc.BRIDGE_DIALECT)
    s.dialect = dialect if isinstance(dialect, str) else None
    s.root_name = span.name
    cost = a.get(sc.GEN_AI_USAGE_COST)
    s.cost_usd = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
    if span.status_code is _ERROR:
        s.status = TraceStatus.ERROR.value
    elif a.get(sc.BRIDGE_CLOSE_REASON) in sc.RUN_CLOSED_FAILURES:
        s.status = _INCOMPLETE
    else:
        s.status = _OK
