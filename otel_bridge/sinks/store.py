"""The embedded trace store: recent traces in memory, bounded, newest kept.

It is the default sink when no OTLP endpoint is set (and on beside export
unless disabled), and what ``GET /v1/traces`` and the viewer read. Summaries
are kept up to date as spans arrive, so listing does not rescan spans.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from otel_bridge import semconv as sc
from otel_bridge.config import StoreSettings
from otel_bridge.model import AgentEvent, Placement, SpanRecord, StatusCode
from otel_bridge.stats import Stats


@dataclass
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
        }


@dataclass
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

    def __len__(self) -> int:
        return len(self._traces)

    def _trace(self, trace_id: bytes, start_ns: int, end_ns: int) -> _Trace:
        trace = self._traces.get(trace_id)
        if trace is None:
            trace = _Trace(TraceSummary(trace_id.hex(), start_ns=start_ns, end_ns=end_ns))
            self._traces[trace_id] = trace
            if len(self._traces) > self._s.max_traces:
                evicted, _ = self._traces.popitem(last=False)
                if evicted not in self._evicted:
                    self._stats.drop("store_evicted_trace")
                self._evicted[evicted] = None
                if len(self._evicted) > max(self._s.max_traces, 1024):
                    self._evicted.popitem(last=False)
        return trace

    def observe(self, events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
        """Runs appear as they start, not only when their own span ends (a bridge observer).

        A run's ``invoke_agent`` span is exported when the run ends; until then the
        list shows the run with ``status="running"``, its run id, agent and the
        time its events cover.
        """
        for event, placement in zip(events, placements, strict=True):
            trace = self._trace(placement.trace_id, event.timestamp_ns, event.timestamp_ns)
            s = trace.summary
            if trace.has_root:
                continue
            if s.run_id is None:
                s.run_id = event.run_id
                s.dialect = event.dialect
                s.status = "running"
            if s.agent is None and event.agent is not None:
                s.agent = event.agent
            s.start_ns = min(s.start_ns, event.timestamp_ns)
            s.end_ns = max(s.end_ns, event.timestamp_ns)

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        stored = 0
        for span in spans:
            trace = self._trace(span.trace_id, span.start_ns, span.end_ns)
            if len(trace.spans) >= self._s.max_spans_per_trace:
                self._stats.drop("store_max_spans_per_trace")
                continue
            trace.spans.append(span)
            self._summarise(trace, span)
            stored += 1
        self._stats.spans_exported[self.name] += stored  # a span cut by the bound is counted once, as dropped

    def _summarise(self, trace: _Trace, span: SpanRecord) -> None:
        s = trace.summary
        s.span_count += 1
        s.start_ns = min(s.start_ns, span.start_ns)
        s.end_ns = max(s.end_ns, span.end_ns)
        a = span.attributes
        if span.status_code is StatusCode.ERROR:
            s.error_count += 1
        if a.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT:
            tokens_in = a.get(sc.GEN_AI_USAGE_INPUT_TOKENS)
            tokens_out = a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
            s.input_tokens += tokens_in if isinstance(tokens_in, int) else 0
            s.output_tokens += tokens_out if isinstance(tokens_out, int) else 0
        run_id = a.get(sc.BRIDGE_RUN_ID)
        if isinstance(run_id, str) and not trace.has_root:
            # The run's own span: it settles the summary the events had sketched.
            trace.has_root = True
            s.run_id = run_id
            agent = a.get(sc.GEN_AI_AGENT_NAME)
            s.agent = agent if isinstance(agent, str) else None
            dialect = a.get(sc.BRIDGE_DIALECT)
            s.dialect = dialect if isinstance(dialect, str) else None
            s.root_name = span.name
            cost = a.get(sc.GEN_AI_USAGE_COST)
            s.cost_usd = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
            s.status = "error" if span.status_code is StatusCode.ERROR else "ok"

    def recent(self, limit: int = 50, run_id: str | None = None, agent: str | None = None) -> list[TraceSummary]:
        """Newest first (by when the store first heard of the trace)."""
        out: list[TraceSummary] = []
        for trace in reversed(self._traces.values()):
            s = trace.summary
            if run_id is not None and s.run_id != run_id:
                continue
            if agent is not None and s.agent != agent:
                continue
            out.append(s)
            if len(out) >= limit:
                break
        return out

    def get(self, trace_id: bytes) -> list[SpanRecord] | None:
        trace = self._traces.get(trace_id)
        return list(trace.spans) if trace is not None else None
