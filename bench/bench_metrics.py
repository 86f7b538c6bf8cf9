"""What the GenAI metrics cost: ingest with vs without the metrics sink, and the two OTLP metrics encodings.

(1) ingest: the same synthetic runs mapped by two bridges side by side, interleaved
    over rounds: metrics on (default) and off. Ratio = on / off.
(2) encoding one snapshot (~N series) as ExportMetricsServiceRequest: the direct
    protobuf writer the bridge uses vs building opentelemetry-proto messages and
    serializing them (what an implementation over the proto classes would do).
    Ratio = proto messages / direct.
(3) rendering the same snapshot as Prometheus text (what one scrape costs).

The machine is shared and noisy: read the ratios. Usage: python bench/bench_metrics.py [--runs 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otel_bridge.assembly import SCOPE, assemble
from otel_bridge.bridge import Bridge
from otel_bridge.config import MetricsSettings, load_settings
from otel_bridge.model import AgentEvent, EventKind, TokenUsage
from otel_bridge.pipeline import ListSink
from otel_bridge.sinks import prometheus
from otel_bridge.sinks.metric_model import Histogram, MetricKind, Snapshot
from otel_bridge.sinks.metrics import GenAiMetrics
from otel_bridge.sinks.otlp_metrics import encode_request
from otel_bridge.stats import Stats

T0 = 1_800_000_000_000_000_000
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash")
TOOLS = ("search", "fetch", "write", "read", "sql", "email")


def runs(n: int, offset: int) -> list[AgentEvent]:
    events = []
    for i in range(n):
        run = f"r{offset + i}"
        model = MODELS[i % len(MODELS)]
        t = T0 + (offset + i) * 10_000_000_000

        def ev(kind: EventKind, dt_ms: int, run: str = run, t: int = t, i: int = i, **f: object) -> AgentEvent:
            return AgentEvent(
                kind=kind,
                run_id=run,
                timestamp_ns=t + dt_ms * 1_000_000,
                dialect="generic",
                original_type="x",
                agent=f"agent-{i % 5}",
                **f,
            )  # type: ignore[arg-type]

        events += [
            ev(EventKind.RUN_STARTED, 0),
            ev(EventKind.LLM_STARTED, 1, call_id="c", model=model, stream=True),
            ev(EventKind.LLM_CHUNK, 200, call_id="c"),
            ev(EventKind.LLM_CHUNK, 250, call_id="c"),
            ev(
                EventKind.LLM_COMPLETED,
                900,
                call_id="c",
                model=model,
                usage=TokenUsage(input=1000 + i % 700, output=200 + i % 90, cache_read=256),
            ),
            ev(EventKind.TOOL_STARTED, 950, call_id="t", tool_name=TOOLS[i % len(TOOLS)]),
            ev(EventKind.TOOL_COMPLETED, 1300, call_id="t", tool_name=TOOLS[i % len(TOOLS)]),
            ev(EventKind.RUN_FINISHED, 1400),
        ]
    return events


def bridge(metrics: bool) -> Bridge:
    overrides = {"metrics": {"enabled": metrics}, "store": {"enabled": False}, "feed": {"enabled": False}}
    return assemble(load_settings(environ={}, overrides=overrides), clock=lambda: 0.0, pricer=None).bridge


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def proto_messages(snapshot: Snapshot) -> bytes:
    """The same request built from opentelemetry-proto classes."""

    def attrs(pairs: tuple[tuple[str, object], ...]) -> list[KeyValue]:
        return [KeyValue(key=k, value=AnyValue(string_value=str(v))) for k, v in pairs]

    metrics = []
    for f in snapshot.families:
        if not f.series:
            continue
        m = pb.Metric(name=f.name, description=f.description, unit=f.unit)
        if f.kind is MetricKind.HISTOGRAM:
            points = []
            for s in f.series:
                h = s.value
                assert isinstance(h, Histogram)
                points.append(
                    pb.HistogramDataPoint(
                        attributes=attrs(s.attributes),
                        start_time_unix_nano=snapshot.start_ns,
                        time_unix_nano=snapshot.time_ns,
                        count=h.count,
                        sum=h.total,
                        bucket_counts=h.counts,
                        explicit_bounds=h.bounds,
                        min=h.min,
                        max=h.max,
                    )
                )
            m.histogram.CopyFrom(pb.Histogram(data_points=points, aggregation_temporality=2))
        else:
            nps = [
                pb.NumberDataPoint(
                    attributes=attrs(s.attributes), time_unix_nano=snapshot.time_ns, as_double=float(s.value)
                )
                for s in f.series
            ]  # type: ignore[arg-type]
            if f.kind is MetricKind.COUNTER:
                m.sum.CopyFrom(pb.Sum(data_points=nps, aggregation_temporality=2, is_monotonic=True))
            else:
                m.gauge.CopyFrom(pb.Gauge(data_points=nps))
        metrics.append(m)
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            pb.ResourceMetrics(
                resource=Resource(attributes=attrs((("service.name", "b"),))),
                scope_metrics=[
                    pb.ScopeMetrics(scope=InstrumentationScope(name=SCOPE[0], version=SCOPE[1]), metrics=metrics)
                ],
            )
        ]
    )
    return request.SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    on_times, off_times = [], []
    for r in range(args.rounds):
        events = runs(args.runs, r * args.runs)
        for metrics, out in (
            ((True, on_times), (False, off_times)) if r % 2 == 0 else ((False, off_times), (True, on_times))
        ):
            b = bridge(metrics)
            out.append(timed(lambda b=b, events=events: (b.submit(events), b.mapper.close_all())))
    on, off = statistics.median(on_times), statistics.median(off_times)
    spans = args.runs * 3
    print(
        f"ingest {args.runs} runs ({spans} spans): metrics on {on * 1e6 / spans:.2f} us/span, "
        f"off {off * 1e6 / spans:.2f} us/span, ratio on/off {on / off:.3f}"
    )

    # The sink alone, on the spans those runs produce.
    overrides = {"metrics": {"enabled": False}, "store": {"enabled": False}, "feed": {"enabled": False}}
    captured = ListSink()
    source = assemble(
        load_settings(environ={}, overrides=overrides), clock=lambda: 0.0, extra_sinks=[captured], pricer=None
    ).bridge
    source.submit(runs(args.runs, 0))
    source.mapper.close_all()
    sink_times = [
        timed(lambda: GenAiMetrics(MetricsSettings(), Stats()).consume(captured.spans)) for _ in range(args.rounds)
    ]
    per_span = statistics.median(sink_times) * 1e6 / len(captured.spans)
    print(f"GenAiMetrics.consume alone: {per_span:.2f} us/span ({per_span / (off * 1e6 / spans):.1%} of ingest)")

    loaded = bridge(True)
    loaded.submit(runs(args.runs, 0))
    loaded.mapper.close_all()
    snapshot = loaded.metrics_snapshot()
    series = sum(len(f.series) for f in snapshot.families)
    resource = {"service.name": "b"}
    direct = statistics.median(timed(lambda: encode_request(snapshot, resource, SCOPE), 20) for _ in range(args.rounds))
    via_proto = statistics.median(timed(lambda: proto_messages(snapshot), 20) for _ in range(args.rounds))
    text = statistics.median(timed(lambda: prometheus.render(snapshot.families), 20) for _ in range(args.rounds))
    print(
        f"snapshot of {series} series: OTLP direct {direct * 1e3:.3f} ms, via proto messages "
        f"{via_proto * 1e3:.3f} ms (ratio {via_proto / direct:.2f}); Prometheus text {text * 1e3:.3f} ms"
    )


if __name__ == "__main__":
    main()
