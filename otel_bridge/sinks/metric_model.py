"""The metrics' snapshot model, and the bridge's health figures in it.

A :class:`Snapshot` is every metric at one instant: :class:`MetricFamily` (name, unit, kind as OTLP
has them) with its :class:`Series` (sorted attributes and a value or a :class:`Histogram`). The GenAI
metrics (:mod:`.metrics`) and the health figures (:func:`health_families`, the same ones
``/v1/health`` shows) both produce it; two readers turn it into bytes:
:mod:`otel_bridge.sinks.prometheus` for ``GET /metrics`` and :mod:`otel_bridge.sinks.otlp_metrics`
for the OTLP push, so both show the same numbers.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass

from otel_bridge import semconv as sc
from otel_bridge.model import AttributeValue
from otel_bridge.stats import Stats

AttributeKey = tuple[tuple[str, AttributeValue], ...]
"""A series' attributes, sorted by key: hashable, and the same order in every output."""


class MetricKind(enum.Enum):
    COUNTER = "counter"  # monotonic cumulative sum
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(slots=True)
class Histogram:
    """Explicit-bucket histogram state: ``counts[i]`` holds values ``<= bounds[i]`` (the last: the rest)."""

    bounds: tuple[float, ...]
    counts: list[int]
    count: int = 0
    total: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> Histogram:
        return cls(bounds, [0] * (len(bounds) + 1))

    def record(self, value: float) -> None:
        # bisect_left: a value equal to a bound falls in that bound's bucket (upper-inclusive, as OTLP says).
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.count, self.total, self.min, self.max)


@dataclass(frozen=True)
class Series:
    attributes: AttributeKey
    value: float | Histogram


@dataclass(frozen=True)
class MetricFamily:
    """One metric's snapshot: name, unit and kind as OTLP has them, and its series."""

    name: str
    description: str
    unit: str
    kind: MetricKind
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Snapshot:
    """Every metric at one instant; cumulative since ``start_ns``."""

    start_ns: int
    time_ns: int
    families: tuple[MetricFamily, ...]


def _counter(name: str, description: str, unit: str, value: float) -> MetricFamily:
    return MetricFamily(name, description, unit, MetricKind.COUNTER, (Series((), float(value)),))


def _gauge(name: str, description: str, unit: str, value: float) -> MetricFamily:
    return MetricFamily(name, description, unit, MetricKind.GAUGE, (Series((), float(value)),))


def _by(name: str, description: str, unit: str, label: str, counts: dict[str, int]) -> MetricFamily:
    series = tuple(Series(((label, reason),), float(n)) for reason, n in sorted(counts.items()))
    return MetricFamily(name, description, unit, MetricKind.COUNTER, series)


def health_families(stats: Stats, *, open_runs: int, export_queue_depth: int, subscribers: int) -> list[MetricFamily]:
    """The bridge's own figures from :class:`Stats`, as metrics (the same ones ``/v1/health`` shows)."""
    return [
        _counter(sc.METRIC_EVENTS_RECEIVED, "Events accepted by the bridge", "{event}", stats.events_received),
        _by(
            sc.METRIC_EVENTS_REJECTED,
            "Events rejected, by reason",
            "{event}",
            sc.METRIC_ATTR_REASON,
            dict(stats.events_rejected),
        ),
        _by(
            sc.METRIC_DROPPED,
            "Items dropped or cut by a bound, by reason",
            "{item}",
            sc.METRIC_ATTR_REASON,
            dict(stats.dropped),
        ),
        _counter(sc.METRIC_SPANS_FINISHED, "Spans finished by the mapper", "{span}", stats.spans_finished),
        _by(
            sc.METRIC_SPANS_EXPORTED,
            "Spans exported, by sink",
            "{span}",
            sc.METRIC_ATTR_SINK,
            dict(stats.spans_exported),
        ),
        _by(
            sc.METRIC_SPANS_EXPORT_FAILED,
            "Spans that failed to export, by sink",
            "{span}",
            sc.METRIC_ATTR_SINK,
            dict(stats.spans_export_failed),
        ),
        _by(
            sc.METRIC_SPANS_INCOMPLETE,
            "Spans closed without an end from their producer, by reason",
            "{span}",
            sc.METRIC_ATTR_REASON,
            dict(stats.incomplete),
        ),
        _counter(
            sc.METRIC_FEED_EVENTS_LOST,
            "Live-feed events lagging subscribers never got (summed over subscribers)",
            "{event}",
            stats.feed_events_lost,
        ),
        _by(
            sc.METRIC_MEMORY_REFUSALS,
            "Requests and source reads refused over the memory budget's soft limit, by where",
            "{refusal}",
            sc.METRIC_ATTR_WHERE,
            dict(stats.memory_refusals),
        ),
        _counter(sc.METRIC_RUNS_STARTED, "Runs opened", "{run}", stats.runs_started),
        _counter(sc.METRIC_RUNS_FINISHED, "Runs closed", "{run}", stats.runs_finished),
        _counter(sc.METRIC_RUNS_CONTINUED, "Late events that reopened a finished run", "{run}", stats.continuations),
        _gauge(sc.METRIC_RUNS_OPEN, "Runs open now", "{run}", open_runs),
        _gauge(sc.METRIC_EXPORT_QUEUE_DEPTH, "Spans waiting for OTLP export", "{span}", export_queue_depth),
        _gauge(sc.METRIC_FEED_SUBSCRIBERS, "Clients connected to the live feed", "{subscriber}", subscribers),
    ]
