"""Assembly: settings in, the pipeline's parts out, wired and not yet running.

:func:`assemble` is the one place that decides which parts exist (the store,
the OTLP exporter in this process or in a worker, the GenAI metrics and their
OTLP push, the live feed and where it is kept, the memory budget) and how they are connected: every span sink behind
one guarded :class:`~otel_bridge.pipeline.FanoutSink`, the mapper in front of
it, the observers and background components handed to the :class:`Bridge`.
``create_app`` and ``replay`` both build through it; the parts themselves
never build or look up their neighbours.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from otel_bridge import __version__
from otel_bridge import semconv as sc
from otel_bridge.bridge import Bridge
from otel_bridge.config import MEMORY_FEED, ConfigError, Settings
from otel_bridge.limits import MemoryGuard, process_rss_mb
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.mapping.openinference import OpenInferenceSink
from otel_bridge.mapping.pricing import Pricer, pricer_from_settings
from otel_bridge.mapping.redaction import RedactingSink, Redactor
from otel_bridge.model import AttributeValue
from otel_bridge.pipeline import EventObserver, FanoutSink, Lifecycle, SpanExporter, SpanSink
from otel_bridge.semconv_latest import naming
from otel_bridge.sinks.export_process import ProcessExporter
from otel_bridge.sinks.feed import Feed
from otel_bridge.sinks.feed.agui import AguiFormat
from otel_bridge.sinks.feed.ai_sdk import AiSdkFormat
from otel_bridge.sinks.feed.backend import FeedBackend
from otel_bridge.sinks.metric_model import Snapshot, health_families
from otel_bridge.sinks.metrics import GenAiMetrics
from otel_bridge.sinks.otlp import OtlpExporter
from otel_bridge.sinks.otlp_metrics import OtlpMetricsExporter
from otel_bridge.sinks.store import TraceStore
from otel_bridge.stats import Stats

SCOPE = ("otel-bridge", __version__)
"""The instrumentation scope of every span and metric the bridge exports."""


def resource_for(settings: Settings) -> dict[str, AttributeValue]:
    """The OTLP resource: the service, this SDK, then the configured attributes (which win)."""
    resource: dict[str, AttributeValue] = {
        sc.SERVICE_NAME: settings.service_name,
        sc.SERVICE_VERSION: __version__,
        sc.TELEMETRY_SDK_NAME: "otel-bridge",
        sc.TELEMETRY_SDK_LANGUAGE: "python",
        sc.TELEMETRY_SDK_VERSION: __version__,
    }
    if settings.semconv.project_name is not None:
        resource[sc.OI_PROJECT_NAME] = settings.semconv.project_name
    resource.update(settings.resource_attributes)
    return resource


class _Default(enum.Enum):
    FROM_SETTINGS = enum.auto()


FROM_SETTINGS: Final = _Default.FROM_SETTINGS
"""The default ``pricer``: the price table ``settings.pricing`` describes (``None`` when pricing is off)."""


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Every part :func:`assemble` built; ``bridge`` runs them, the web routes read them."""

    stats: Stats
    resource: dict[str, AttributeValue]
    store: TraceStore | None
    exporter: SpanExporter | None
    metrics: GenAiMetrics | None
    metrics_exporter: OtlpMetricsExporter | None
    feed: Feed
    sink: FanoutSink
    mapper: SpanMapper
    bridge: Bridge
    metrics_snapshot: Callable[[], Snapshot]
    """The GenAI metrics and the health figures now (``GET /metrics`` and the OTLP push read this)."""
    guard: MemoryGuard | None = None
    """The memory budget (``limits.max_memory_mb``), ``None`` when there is none."""


def _exporter(settings: Settings, stats: Stats, resource: dict[str, AttributeValue]) -> SpanExporter | None:
    if not settings.otlp.endpoint:
        return None
    exporter_class = ProcessExporter if settings.otlp.worker_process else OtlpExporter
    return exporter_class(settings.otlp, stats, resource, SCOPE, sc.SCHEMA_URL)


def feed_backend(settings: Settings, stats: Stats) -> FeedBackend | None:
    """A Redis stream when ``feed.backend`` is a Redis URL; ``None``: the feed's own in-process ring."""
    if settings.feed.backend == MEMORY_FEED:
        return None
    try:
        import redis  # noqa: F401 - the optional extra
    except ImportError:
        raise ConfigError(
            "feed.backend is a Redis URL, but the redis package is not installed: pip install 'otel-bridge[redis]'"
        ) from None
    from otel_bridge.sinks.feed.redis_backend import RedisBackend

    return RedisBackend(settings.feed.backend, settings.feed.redis, stats, recent=settings.feed.ring_size)


def build_feed(settings: Settings, stats: Stats, redact_payload: Callable[[str], str] | None = None) -> Feed:
    """The live feed (and its backend) the settings describe; ``serve`` and the feed-only process both build it.

    ``redact_payload`` is the mapper's payload redaction (the feed shows no more than the spans).
    """
    content = settings.mapping.capture_content
    return Feed(
        settings.feed,
        content=content,
        content_limit=settings.mapping.attribute_max_length,
        formats=[
            AguiFormat(content=content, max_pending=settings.feed.ring_size),
            AiSdkFormat(content=content, max_pending=settings.feed.ring_size),
        ],
        stats=stats,
        backend=feed_backend(settings, stats),
        names=naming(settings.mapping.latest_semconv),
        redact_payload=redact_payload,
    )


def _named(sinks: Sequence[SpanSink], taken: set[str]) -> dict[str, SpanSink]:
    """Extra sinks named by their class (``ListSink``, ``ListSink#2``...) for the per-sink failure counts."""
    named: dict[str, SpanSink] = {}
    for sink in sinks:
        base = type(sink).__name__
        name, n = base, 1
        while name in taken or name in named:
            n += 1
            name = f"{base}#{n}"
        named[name] = sink
    return named


def assemble(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.monotonic,
    extra_sinks: Sequence[SpanSink] = (),
    pricer: Pricer | _Default | None = FROM_SETTINGS,
    read_rss_mb: Callable[[], float] = process_rss_mb,
) -> Pipeline:
    """Build the whole pipeline from ``settings``; nothing starts until ``bridge.start()``.

    ``extra_sinks`` get every finished span after the configured sinks (tests,
    ``replay --out``). Raises :class:`~otel_bridge.config.ConfigError` for a
    setting that cannot work (a bad price table). ``read_rss_mb`` is what the memory
    budget reads (tests give a fake memory).
    """
    stats = Stats()
    resource = resource_for(settings)
    store = TraceStore(settings.store, stats) if settings.store.enabled else None
    exporter = _exporter(settings, stats, resource)
    # The GenAI conventions' version, once: the mapping's attributes, the metrics and the feed's records.
    names = naming(settings.mapping.latest_semconv)
    metrics = GenAiMetrics(settings.metrics, stats, names=names) if settings.metrics.enabled else None
    sinks: dict[str, SpanSink] = {}
    if store is not None:
        sinks["store"] = store
    if exporter is not None:
        sinks["otlp"] = exporter
    if metrics is not None:
        sinks["metrics"] = metrics
    sinks.update(_named(extra_sinks, set(sinks)))
    fanout = FanoutSink(sinks, stats)
    if isinstance(pricer, _Default):
        pricer = pricer_from_settings(settings.pricing)
    # Between the mapper and the sinks: OpenInference attributes added (when asked), then the
    # attribute-key deny list. Event content was redacted before the mapper (``prepare`` below).
    redactor = Redactor(settings.redaction, stats.redacted)
    emitted: SpanSink = fanout
    if settings.redaction.deny_keys:
        emitted = RedactingSink(redactor, emitted)
    if settings.semconv.openinference:
        emitted = OpenInferenceSink(emitted)
    mapper = SpanMapper(
        settings.mapping,
        emitted,
        stats,
        clock=clock,
        pricer=pricer,
        redact_payload=redactor.json_text if redactor.active else None,
    )
    feed = build_feed(settings, stats, redact_payload=redactor.json_text if redactor.active else None)

    def metrics_snapshot() -> Snapshot:
        health = health_families(
            stats,
            open_runs=mapper.open_runs,
            export_queue_depth=exporter.queue_depth if exporter is not None else 0,
            subscribers=feed.subscribers,
        )
        if metrics is None:
            now = time.time_ns()
            return Snapshot(now, now, tuple(health))
        return metrics.snapshot(health)

    metrics_exporter = (
        OtlpMetricsExporter(settings.metrics, metrics_snapshot, resource, SCOPE, sc.SCHEMA_URL)
        if metrics is not None and settings.metrics.endpoint
        else None
    )
    observers: list[EventObserver] = []
    if store is not None:
        observers.append(store.observe)  # runs are listed while they run
    if settings.feed.enabled:
        observers.append(feed.observe)
    guard = (
        MemoryGuard(
            settings.limits,
            stats,
            shed=lambda n: bridge.shed_oldest(n),  # through the bridge, so the observers are told
            open_runs=lambda: mapper.open_runs,
            read_rss_mb=read_rss_mb,
        )
        if settings.limits.max_memory_mb > 0
        else None
    )
    # In this order: the guard samples from the start; the metrics push at shutdown comes after the
    # exporter has taken the last spans, and the feed's backend (a shared stream's writer) after the
    # runs closed at shutdown were published.
    components: list[Lifecycle] = [c for c in (guard, exporter, metrics_exporter) if c is not None]
    if settings.feed.enabled:
        components.append(feed)
    bridge = Bridge(
        mapper,
        stats,
        sweep_interval_s=settings.mapping.sweep_interval_s,
        observers=observers,
        components=components,
        prepare=redactor.events if redactor.active else None,
    )
    return Pipeline(
        stats=stats,
        resource=resource,
        store=store,
        exporter=exporter,
        metrics=metrics,
        metrics_exporter=metrics_exporter,
        feed=feed,
        sink=fanout,
        mapper=mapper,
        bridge=bridge,
        metrics_snapshot=metrics_snapshot,
        guard=guard,
    )
