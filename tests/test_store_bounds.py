"""The embedded store is bounded by total spans as well as by traces and spans per trace."""

from __future__ import annotations

from otel_bridge.config import StoreSettings
from otel_bridge.model import SpanKind, SpanRecord
from otel_bridge.sinks.store import TraceStore
from otel_bridge.stats import Stats


def span(trace: int, n: int) -> SpanRecord:
    return SpanRecord(
        trace_id=trace.to_bytes(16, "big"),
        span_id=(n + 1).to_bytes(8, "big"),
        parent_span_id=None,
        name="s",
        kind=SpanKind.INTERNAL,
        start_ns=n,
        end_ns=n + 1,
        attributes={},
    )


def test_past_max_spans_the_oldest_traces_are_evicted_whole() -> None:
    stats = Stats()
    store = TraceStore(StoreSettings(max_traces=100, max_spans=10), stats)
    for trace in range(4):
        store.consume([span(trace, n) for n in range(4)])
    # 16 spans offered, 10 fit: traces 0 and 1 went to make room, traces 2 and 3 are whole.
    assert store.span_count == 8
    assert [store.get(t.to_bytes(16, "big")) is None for t in range(4)] == [True, True, False, False]
    assert stats.dropped == {"store_evicted_trace": 2}
    assert stats.spans_exported["store"] == 16


def test_a_trace_alone_over_max_spans_keeps_what_fits_and_counts_the_rest() -> None:
    stats = Stats()
    store = TraceStore(StoreSettings(max_spans=3), stats)
    store.consume([span(7, n) for n in range(5)])
    assert store.span_count == 3
    assert len(store.get((7).to_bytes(16, "big")) or []) == 3
    assert stats.dropped == {"store_max_spans": 2}
    assert stats.spans_exported["store"] == 3


def test_evicting_by_trace_count_gives_the_span_budget_back() -> None:
    store = TraceStore(StoreSettings(max_traces=2, max_spans=6), Stats())
    for trace in range(5):
        store.consume([span(trace, n) for n in range(3)])
    assert len(store) == 2
    assert store.span_count == 6
