"""Issue 13, "Why" item 8: the store counts each eviction once and no span twice; feed lag has its own counter."""

from __future__ import annotations

from otel_bridge import semconv as sc
from otel_bridge.config import FeedSettings, StoreSettings
from otel_bridge.model import AgentEvent, EventKind, Placement, SpanKind, SpanRecord
from otel_bridge.sinks import metric_model
from otel_bridge.sinks.feed import Feed
from otel_bridge.sinks.store import TraceStore
from otel_bridge.stats import Stats

T0 = 1_800_000_000_000_000_000


def _trace(n: int) -> bytes:
    return bytes(15) + bytes([n])


def _span(trace: int, n: int) -> SpanRecord:
    return SpanRecord(
        trace_id=_trace(trace),
        span_id=bytes(7) + bytes([n]),
        parent_span_id=None,
        name="s",
        kind=SpanKind.INTERNAL,
        start_ns=T0,
        end_ns=T0 + 1,
        attributes={},
    )


def _observe(store: TraceStore, trace: int) -> None:
    event = AgentEvent(kind=EventKind.RUN_STARTED, run_id=f"r{trace}", timestamp_ns=T0, dialect="d", original_type="t")
    store.observe([event], [Placement(_trace(trace), bytes(8), None)])


def test_a_trace_listed_then_stored_is_evicted_and_counted_once() -> None:
    stats = Stats()
    store = TraceStore(StoreSettings(max_traces=1), stats)
    _observe(store, 1)  # run 1 is listed while it runs
    _observe(store, 2)  # run 2 pushes it out: one eviction
    store.consume([_span(1, 1)])  # run 1's span comes back and pushes run 2 out: a second trace evicted
    store.consume([_span(2, 1)])  # run 2's span pushes run 1 out again: the same trace, not counted again
    assert stats.dropped == {"store_evicted_trace": 2}


def test_a_span_cut_by_the_bound_is_dropped_not_also_stored() -> None:
    stats = Stats()
    store = TraceStore(StoreSettings(max_spans_per_trace=2), stats)
    store.consume([_span(1, 1), _span(1, 2), _span(1, 3)])
    assert stats.dropped == {"store_max_spans_per_trace": 1}
    assert stats.spans_exported == {"store": 2}


async def test_feed_lag_is_counted_apart_from_dropped_spans() -> None:
    stats = Stats()
    feed = Feed(FeedSettings(queue_size=3, ring_size=4), stats=stats)
    stream = feed.subscribe().chunks()
    await anext(stream)
    for i in range(10):
        event = AgentEvent(kind=EventKind.PROGRESS, run_id="r", timestamp_ns=T0 + i, dialect="d", original_type="t")
        feed.observe([event], [Placement(_trace(1), bytes(8), None)])
    await anext(stream)
    assert stats.feed_events_lost == 3
    assert stats.dropped == {}
    families = {
        f.name: f for f in metric_model.health_families(stats, open_runs=0, export_queue_depth=0, subscribers=1)
    }
    assert sc.METRIC_FEED_EVENTS_LOST in families
