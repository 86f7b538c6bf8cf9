"""The bridge: owns the mapper, its sinks and its timers; every source submits here.

Built once per process by :func:`otel_bridge.app.create_app` (or by ``replay``)
from :class:`Settings` alone: no global state. All methods run on the event
loop thread; the only background tasks are the timeout sweeper and the OTLP
exporter, both owned and stopped here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections.abc import Callable, Sequence

from otel_bridge import __version__
from otel_bridge import semconv as sc
from otel_bridge.config import Settings
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.mapping.pricing import Pricer
from otel_bridge.model import AgentEvent, AttributeValue, Placement
from otel_bridge.sinks.base import FanoutSink, SpanSink
from otel_bridge.sinks.export_process import ProcessExporter
from otel_bridge.sinks.metrics import GenAiMetrics, Snapshot, health_families
from otel_bridge.sinks.otlp import OtlpExporter
from otel_bridge.sinks.otlp_metrics import OtlpMetricsExporter
from otel_bridge.sinks.store import TraceStore
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

EventObserver = Callable[[Sequence[AgentEvent], Sequence[Placement]], None]
"""Called after each mapped batch with the events and where each landed (the live feed)."""

SCOPE = ("otel-bridge", __version__)


def resource_for(settings: Settings) -> dict[str, AttributeValue]:
    resource: dict[str, AttributeValue] = {
        sc.SERVICE_NAME: settings.service_name,
        sc.SERVICE_VERSION: __version__,
        sc.TELEMETRY_SDK_NAME: "otel-bridge",
        sc.TELEMETRY_SDK_LANGUAGE: "python",
        sc.TELEMETRY_SDK_VERSION: __version__,
    }
    resource.update(settings.resource_attributes)
    return resource


_TIMESTAMP = operator.attrgetter("timestamp_ns")


def in_time_order(events: Sequence[AgentEvent]) -> Sequence[AgentEvent]:
    """A batch whose events all carry their own timestamps is mapped in time order.

    Event logs are often served newest first (OpenIntent's is); mapping them as
    given would end a run before its calls start. A stable sort keeps the
    producer's order for equal times. Arrival-stamped batches keep their order.
    """
    if len(events) > 1 and all(e.timestamp_from_source for e in events):
        return sorted(events, key=_TIMESTAMP)
    return events


class Bridge:
    """Events in, spans out to every configured sink."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        extra_sinks: Sequence[SpanSink] = (),
        pricer: Pricer | None = None,
    ) -> None:
        self.settings = settings
        self.stats = Stats()
        self.resource = resource_for(settings)
        self.store = TraceStore(settings.store, self.stats) if settings.store.enabled else None
        self.exporter: OtlpExporter | ProcessExporter | None = None
        if settings.otlp.endpoint:
            exporter_class = ProcessExporter if settings.otlp.worker_process else OtlpExporter
            self.exporter = exporter_class(settings.otlp, self.stats, self.resource, SCOPE, sc.SCHEMA_URL)
        sinks: list[SpanSink] = [s for s in (self.store, self.exporter) if s is not None]
        self.metrics = GenAiMetrics(settings.metrics, self.stats) if settings.metrics.enabled else None
        if self.metrics is not None:
            sinks.append(self.metrics)
        sinks.extend(extra_sinks)
        self.mapper = SpanMapper(settings.mapping, FanoutSink(sinks), self.stats, clock=clock, pricer=pricer)
        self._observers: list[EventObserver] = []
        if self.store is not None:
            self._observers.append(self.store.observe)  # runs are listed while they run
        self._sweeper: asyncio.Task[None] | None = None
        # Clients on the live feed, for the metrics; whoever wires the feed sets it.
        self.subscriber_count: Callable[[], int] = lambda: 0
        self.metrics_exporter = (
            OtlpMetricsExporter(settings.metrics, self.metrics_snapshot, self.resource, SCOPE, sc.SCHEMA_URL)
            if self.metrics is not None and settings.metrics.endpoint
            else None
        )

    def add_observer(self, observer: EventObserver) -> None:
        self._observers.append(observer)

    def submit(self, events: Sequence[AgentEvent]) -> list[tuple[AgentEvent, Placement]]:
        """Map a batch now; spans that finish go to the sinks before this returns."""
        if not events:
            return []
        ordered = in_time_order(events)
        self.stats.events_received += len(ordered)
        placements = self.mapper.process(ordered)
        for observer in self._observers:
            try:
                observer(ordered, placements)
            except Exception:  # an observer must never break ingest
                log.exception("event observer failed")
        return list(zip(ordered, placements, strict=True))

    def metrics_snapshot(self) -> Snapshot:
        """The GenAI metrics and the health figures now (``GET /metrics`` and the OTLP push read this)."""
        health = health_families(
            self.stats,
            open_runs=self.mapper.open_runs,
            export_queue_depth=self.exporter.queue_depth if self.exporter is not None else 0,
            subscribers=self.subscriber_count(),
        )
        if self.metrics is None:
            now = time.time_ns()
            return Snapshot(now, now, tuple(health))
        return self.metrics.snapshot(health)

    async def start(self) -> None:
        if self.exporter is not None:
            await self.exporter.start()
        if self.metrics_exporter is not None:
            await self.metrics_exporter.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="span-timeouts")

    async def _sweep_forever(self) -> None:
        interval = self.settings.mapping.sweep_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                self.mapper.sweep()
            except Exception:
                log.exception("timeout sweep failed")

    async def shutdown(self) -> None:
        """Close every open run (status says why), export what is left, stop tasks."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self.mapper.close_all(sc.CLOSE_SHUTDOWN)
        if self.exporter is not None:
            await self.exporter.shutdown()
        if self.metrics_exporter is not None:
            await self.metrics_exporter.shutdown()  # after close_all: the last push counts the last spans
