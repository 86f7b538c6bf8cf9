"""OTLP metrics push: a snapshot encoded as ``ExportMetricsServiceRequest``, sent every interval.

Encoding is written directly as protobuf bytes (field numbers of
``opentelemetry/proto/metrics/v1/metrics.proto``), like the trace encoder, so the
package needs no protobuf runtime; a test parses every output back with
``opentelemetry-proto`` and a real collector receives it. ``http/json`` gets the
official JSON mapping (int64 as strings).

Temporality is cumulative: each export carries the totals since the bridge
started, so a failed export loses nothing (the next one carries the same totals
and more). There is therefore no retry inside an interval (no retry link in
front of the transport); a failure is logged and counted on the exporter
(``failures``, ``last_error``). The transports are the trace exporter's
(:mod:`otel_bridge.sinks.export`: same TLS, headers, compression and
retryable-error classification); gRPC only calls the metrics service method
instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from otel_bridge.aio import cancel_and_wait
from otel_bridge.config import MetricsSettings
from otel_bridge.model import AttributeValue
from otel_bridge.sinks import otlp_json
from otel_bridge.sinks.export import factory
from otel_bridge.sinks.export.result import Outcome, Transport
from otel_bridge.sinks.metric_model import Histogram, MetricFamily, MetricKind, Series, Snapshot
from otel_bridge.sinks.otlp_proto import encode_resource, encode_scope, key_value, varint

log = logging.getLogger(__name__)

GRPC_METRICS_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
AGGREGATION_TEMPORALITY_CUMULATIVE = 2

_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_LEN, _VARINT, _I64 = 2, 0, 1


def _tag(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def _ld(field: int, payload: bytes) -> bytes:
    return _tag(field, _LEN) + varint(len(payload)) + payload


def _f64(field: int, value: int) -> bytes:
    return _tag(field, _I64) + _fixed64(value)


def _dbl(field: int, value: float) -> bytes:
    return _tag(field, _I64) + _double(value)


def _attributes(field: int, attributes: Iterable[tuple[str, AttributeValue]]) -> bytes:
    return b"".join(_ld(field, key_value(k, v)) for k, v in attributes)


def _number_point(series: Series, start_ns: int | None, time_ns: int) -> bytes:
    assert not isinstance(series.value, Histogram)
    # NumberDataPoint: attributes=7, start_time_unix_nano=2, time_unix_nano=3, as_double=4
    out = _attributes(7, series.attributes)
    if start_ns is not None:
        out += _f64(2, start_ns)
    return out + _f64(3, time_ns) + _dbl(4, float(series.value))


def _histogram_point(series: Series, start_ns: int, time_ns: int) -> bytes:
    h = series.value
    assert isinstance(h, Histogram)
    # HistogramDataPoint: attributes=9, start=2, time=3, count=4, sum=5, bucket_counts=6 (packed fixed64),
    # explicit_bounds=7 (packed double), min=11, max=12
    out = _attributes(9, series.attributes) + _f64(2, start_ns) + _f64(3, time_ns) + _f64(4, h.count)
    out += _dbl(5, h.total)
    out += _ld(6, b"".join(_fixed64(c) for c in h.counts))
    out += _ld(7, b"".join(_double(b) for b in h.bounds))
    if h.count:
        out += _dbl(11, h.min) + _dbl(12, h.max)
    return out


def encode_metric(family: MetricFamily, start_ns: int, time_ns: int) -> bytes:
    """One ``Metric`` message (name=1, description=2, unit=3, gauge=5, sum=7, histogram=9)."""
    head = _ld(1, family.name.encode()) + _ld(2, family.description.encode()) + _ld(3, family.unit.encode())
    temporality = _tag(2, _VARINT) + varint(AGGREGATION_TEMPORALITY_CUMULATIVE)
    if family.kind is MetricKind.HISTOGRAM:
        points = b"".join(_ld(1, _histogram_point(s, start_ns, time_ns)) for s in family.series)
        return head + _ld(9, points + temporality)
    if family.kind is MetricKind.COUNTER:
        points = b"".join(_ld(1, _number_point(s, start_ns, time_ns)) for s in family.series)
        monotonic = _tag(3, _VARINT) + b"\x01"
        return head + _ld(7, points + temporality + monotonic)
    points = b"".join(_ld(1, _number_point(s, None, time_ns)) for s in family.series)
    return head + _ld(5, points)


def encode_request(
    snapshot: Snapshot, resource: dict[str, AttributeValue], scope: tuple[str, str], schema_url: str = ""
) -> bytes:
    """An ``ExportMetricsServiceRequest``: one resource, one scope, every family that has series."""
    metrics = b"".join(
        _ld(2, encode_metric(f, snapshot.start_ns, snapshot.time_ns)) for f in snapshot.families if f.series
    )
    scope_metrics = _ld(1, encode_scope(*scope)) + metrics
    if schema_url:
        scope_metrics += _ld(3, schema_url.encode())
    resource_metrics = _ld(1, encode_resource(resource)) + _ld(2, scope_metrics)
    if schema_url:
        resource_metrics += _ld(3, schema_url.encode())
    return _ld(1, resource_metrics)


def _json_point(series: Series, start_ns: int | None, time_ns: int) -> dict[str, Any]:
    point: dict[str, Any] = {"attributes": otlp_json.attributes(dict(series.attributes)), "timeUnixNano": str(time_ns)}
    if start_ns is not None:
        point["startTimeUnixNano"] = str(start_ns)
    value = series.value
    if isinstance(value, Histogram):
        point.update(
            count=str(value.count),
            sum=value.total,
            bucketCounts=[str(c) for c in value.counts],
            explicitBounds=list(value.bounds),
        )
        if value.count:
            point.update(min=value.min, max=value.max)
    else:
        point["asDouble"] = float(value)
    return point


def request_json(
    snapshot: Snapshot, resource: dict[str, AttributeValue], scope: tuple[str, str], schema_url: str = ""
) -> dict[str, Any]:
    """The same request in the OTLP/JSON mapping."""
    metrics: list[dict[str, Any]] = []
    for f in snapshot.families:
        if not f.series:
            continue
        metric: dict[str, Any] = {"name": f.name, "description": f.description, "unit": f.unit}
        if f.kind is MetricKind.GAUGE:
            metric["gauge"] = {"dataPoints": [_json_point(s, None, snapshot.time_ns) for s in f.series]}
        else:
            body: dict[str, Any] = {
                "dataPoints": [_json_point(s, snapshot.start_ns, snapshot.time_ns) for s in f.series],
                "aggregationTemporality": AGGREGATION_TEMPORALITY_CUMULATIVE,
            }
            if f.kind is MetricKind.COUNTER:
                body["isMonotonic"] = True
            metric["histogram" if f.kind is MetricKind.HISTOGRAM else "sum"] = body
        metrics.append(metric)
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": otlp_json.attributes(resource)},
                "scopeMetrics": [
                    {"scope": {"name": scope[0], "version": scope[1]}, "metrics": metrics, "schemaUrl": schema_url}
                ],
                "schemaUrl": schema_url,
            }
        ]
    }


def make_transport(settings: MetricsSettings) -> Transport:
    assert settings.endpoint is not None
    return factory.make_transport(settings, grpc_method=GRPC_METRICS_METHOD)


class OtlpMetricsExporter:
    """Pushes ``collect()`` every ``export_interval_s``, and once more at shutdown."""

    def __init__(
        self,
        settings: MetricsSettings,
        collect: Callable[[], Snapshot],
        resource: dict[str, AttributeValue],
        scope: tuple[str, str],
        schema_url: str,
        transport: Transport | None = None,
    ) -> None:
        self._s = settings
        self._collect = collect
        self._resource, self._scope, self._schema_url = resource, scope, schema_url
        self._transport = transport
        self._task: asyncio.Task[None] | None = None
        self.exports = 0
        self.failures = 0
        self.last_error: str | None = None

    def encode(self, snapshot: Snapshot) -> bytes:
        if self._s.protocol == "http/json":
            return msgspec.json.encode(request_json(snapshot, self._resource, self._scope, self._schema_url))
        return encode_request(snapshot, self._resource, self._scope, self._schema_url)

    async def start(self) -> None:
        if self._transport is None:
            self._transport = make_transport(self._s)
        self._task = asyncio.create_task(self._run(), name="otlp-metrics-exporter")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._s.export_interval_s)
            await self.export_once()

    async def export_once(self) -> bool:
        """Send the current totals now; ``True`` when the receiver took them."""
        if self._transport is None:
            return False
        try:
            body = self.encode(self._collect())
        except Exception:  # a bug here must not kill the exporter task
            log.exception("OTLP metrics encoding failed")
            self.failures += 1
            return False
        result = await self._transport.send(body, self._s.timeout_s)
        if result.outcome is Outcome.SUCCESS:
            self.exports += 1
            self.last_error = None
            if result.rejected:
                log.warning("receiver rejected %d metric points: %s", result.rejected, result.detail)
            return True
        self.failures += 1
        self.last_error = result.detail
        log.warning("OTLP metrics export failed (the next one carries the same totals): %s", result.detail)
        return False

    async def shutdown(self) -> None:
        """Stop the timer, push the final totals once (bounded by the export timeout), close."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.export_once(), self._s.timeout_s + 1)
        if self._transport is not None:
            await self._transport.close()
            self._transport = None
