"""GenAI metrics from spans: aggregation, Prometheus names and text, OTLP encoding, the push, the settings."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_bridge import semconv as sc
from otel_bridge import semconv_latest as sc_latest
from otel_bridge.assembly import SCOPE, assemble
from otel_bridge.config import ConfigError, MetricsSettings, load_settings
from otel_bridge.model import AttributeValue, SpanKind, SpanRecord, StatusCode
from otel_bridge.sinks.export.result import Outcome, SendResult
from otel_bridge.sinks.metric_model import Histogram, MetricFamily, MetricKind, Series, Snapshot
from otel_bridge.sinks.metrics import GenAiMetrics
from otel_bridge.sinks.otlp_metrics import OtlpMetricsExporter, encode_request, request_json
from otel_bridge.sinks.prometheus import format_value, label_name, metric_name, render
from otel_bridge.stats import Stats
from tests.support.prometheus import parse_text, value

T0 = 1_800_000_000_000_000_000
S = 1_000_000_000


def span(
    name: str, duration_s: float, attributes: dict[str, AttributeValue], *, error: bool = False, sid: int = 1
) -> SpanRecord:
    return SpanRecord(
        trace_id=b"\x01" * 16,
        span_id=sid.to_bytes(8, "big"),
        parent_span_id=None,
        name=name,
        kind=SpanKind.CLIENT,
        start_ns=T0,
        end_ns=T0 + int(duration_s * S),
        attributes=attributes,
        status_code=StatusCode.ERROR if error else StatusCode.UNSET,
    )


CHAT = {
    sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
    sc.GEN_AI_PROVIDER_NAME: "openai",
    sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
    sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
    sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
    sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.32,
    sc.GEN_AI_USAGE_COST: 0.0125,
    sc.BRIDGE_CALL_ID: "high-cardinality-not-a-label",
}
BASE_KEY = (
    (sc.GEN_AI_OPERATION_NAME, sc.OP_CHAT),
    (sc.GEN_AI_PROVIDER_NAME, "openai"),
    (sc.GEN_AI_REQUEST_MODEL, "gpt-4o"),
    (sc.GEN_AI_RESPONSE_MODEL, "gpt-4o-2024-08-06"),
)


def families_by_name(metrics: GenAiMetrics) -> dict[str, MetricFamily]:
    return {f.name: f for f in metrics.families()}


def hist(bounds: tuple[int | float, ...], values: list[float]) -> Histogram:
    h = Histogram.empty(tuple(float(b) for b in bounds))
    for v in values:
        h.record(v)
    return h


def test_a_chat_span_yields_duration_tokens_ttfc_and_cost_with_the_conventional_attributes() -> None:
    metrics = GenAiMetrics(MetricsSettings(), Stats(), time_ns=lambda: T0)
    metrics.consume([span("chat gpt-4o", 1.28, CHAT)])
    got = families_by_name(metrics)
    assert got[sc.METRIC_OPERATION_DURATION].series == (Series(BASE_KEY, hist(sc.DURATION_BUCKETS, [1.28])),)
    assert got[sc.METRIC_TIME_TO_FIRST_CHUNK].series == (Series(BASE_KEY, hist(sc.DURATION_BUCKETS, [0.32])),)
    input_key = (*BASE_KEY, (sc.GEN_AI_TOKEN_TYPE, "input"))  # keys sorted
    output_key = (*BASE_KEY, (sc.GEN_AI_TOKEN_TYPE, "output"))
    assert got[sc.METRIC_TOKEN_USAGE].series == (
        Series(input_key, hist(sc.TOKEN_BUCKETS, [1000])),
        Series(output_key, hist(sc.TOKEN_BUCKETS, [0])),  # zero tokens is data
    )
    assert got[sc.METRIC_COST].series == (Series(BASE_KEY, 0.0125),)
    assert got[sc.METRIC_COST].unit == "USD"
    assert got[sc.METRIC_TOKEN_USAGE].unit == "{token}"
    assert got[sc.METRIC_INVOKE_AGENT_DURATION].series == ()
    assert got[sc.METRIC_EXECUTE_TOOL_DURATION].series == ()


def test_bucket_bounds_are_the_conventions_and_upper_inclusive() -> None:
    h = hist(sc.DURATION_BUCKETS, [0.01, 0.010001, 81.92, 100.0])
    assert h.bounds == (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
    assert h.counts == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert (h.count, h.total, h.min, h.max) == (4, pytest.approx(0.01 + 0.010001 + 81.92 + 100.0), 0.01, 100.0)
    assert len(hist(sc.TOKEN_BUCKETS, []).counts) == 15
    assert hist(sc.TOKEN_BUCKETS, []).bounds[-1] == 67108864


def test_errors_carry_error_type_on_durations_and_tools_and_agents_have_their_own_metrics() -> None:
    metrics = GenAiMetrics(MetricsSettings(), Stats(), time_ns=lambda: T0)
    failed_chat = {sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT, sc.GEN_AI_REQUEST_MODEL: "m", sc.ERROR_TYPE: "RateLimitError"}
    tool = {sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: "search", sc.GEN_AI_TOOL_CALL_ID: "x"}
    agent = {
        sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
        sc.GEN_AI_AGENT_NAME: "writer",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 99,  # the run's sum: must not be counted again
        sc.GEN_AI_USAGE_COST: 1.0,
    }
    metrics.consume(
        [
            span("chat m", 0.5, failed_chat, error=True),
            span("execute_tool search", 0.05, tool, error=True),  # no error.type on the span: _OTHER
            span("execute_tool search", 0.07, tool),
            span("invoke_agent writer", 3.0, agent),
            span("step plan", 1.0, {sc.BRIDGE_STEP_NAME: "plan"}),  # no GenAI operation: no metric
        ]
    )
    got = families_by_name(metrics)
    chat_key = (
        (sc.ERROR_TYPE, "RateLimitError"),
        (sc.GEN_AI_OPERATION_NAME, sc.OP_CHAT),
        (sc.GEN_AI_REQUEST_MODEL, "m"),
    )
    assert got[sc.METRIC_OPERATION_DURATION].series == (Series(chat_key, hist(sc.DURATION_BUCKETS, [0.5])),)
    tool_ok = ((sc.GEN_AI_OPERATION_NAME, sc.OP_EXECUTE_TOOL), (sc.GEN_AI_TOOL_NAME, "search"))
    tool_err = ((sc.ERROR_TYPE, sc.ERROR_TYPE_OTHER), *tool_ok)
    assert got[sc.METRIC_EXECUTE_TOOL_DURATION].series == (
        Series(tool_err, hist(sc.DURATION_BUCKETS, [0.05])),
        Series(tool_ok, hist(sc.DURATION_BUCKETS, [0.07])),
    )
    agent_key = ((sc.GEN_AI_AGENT_NAME, "writer"), (sc.GEN_AI_OPERATION_NAME, sc.OP_INVOKE_AGENT))
    assert got[sc.METRIC_INVOKE_AGENT_DURATION].series == (Series(agent_key, hist(sc.DURATION_BUCKETS, [3.0])),)
    assert got[sc.METRIC_TOKEN_USAGE].series == ()
    assert got[sc.METRIC_COST].series == ()


def test_series_past_the_limit_go_to_one_overflow_series_and_are_counted() -> None:
    stats = Stats()
    metrics = GenAiMetrics(MetricsSettings(max_series_per_metric=2), stats, time_ns=lambda: T0)
    tools = [{sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: f"t{i}"} for i in range(4)]
    metrics.consume([span("t", 1.0, attrs) for attrs in tools])
    series = families_by_name(metrics)[sc.METRIC_EXECUTE_TOOL_DURATION].series
    assert [s.attributes for s in series] == [
        ((sc.GEN_AI_OPERATION_NAME, sc.OP_EXECUTE_TOOL), (sc.GEN_AI_TOOL_NAME, "t0")),
        ((sc.GEN_AI_OPERATION_NAME, sc.OP_EXECUTE_TOOL), (sc.GEN_AI_TOOL_NAME, "t1")),
        ((sc.OTEL_METRIC_OVERFLOW, True),),
    ]
    overflow = series[2].value
    assert isinstance(overflow, Histogram)
    assert overflow.count == 2
    assert stats.dropped == {"metrics_series_limit": 2}


def test_a_snapshot_is_a_copy() -> None:
    metrics = GenAiMetrics(MetricsSettings(), Stats(), time_ns=lambda: T0)
    metrics.consume([span("chat gpt-4o", 1.0, CHAT)])
    before = metrics.snapshot()
    metrics.consume([span("chat gpt-4o", 1.0, CHAT)])
    duration = next(f for f in before.families if f.name == sc.METRIC_OPERATION_DURATION)
    assert isinstance(duration.series[0].value, Histogram)
    assert duration.series[0].value.count == 1


# --- Prometheus names and text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        # The otlptranslator's own documented examples (UnderscoreEscapingWithSuffixes).
        ("http.server.request.duration", "s", MetricKind.HISTOGRAM, "http_server_request_duration_seconds"),
        ("requests.count", "1", MetricKind.COUNTER, "requests_count_total"),
        ("memory.usage", "By", MetricKind.GAUGE, "memory_usage_bytes"),
        ("http.server.duration", "s", MetricKind.HISTOGRAM, "http_server_duration_seconds"),
        ("cpu.utilization", "1", MetricKind.GAUGE, "cpu_utilization_ratio"),
        ("throughput", "By/s", MetricKind.GAUGE, "throughput_bytes_per_second"),
        ("foo.total", "", MetricKind.COUNTER, "foo_total"),
        ("latency.seconds", "s", MetricKind.HISTOGRAM, "latency_seconds"),
        # What the spanmetrics connector produces (namespace traces.span.metrics, unit ms).
        ("traces.span.metrics.calls", "", MetricKind.COUNTER, "traces_span_metrics_calls_total"),
        ("traces.span.metrics.duration", "ms", MetricKind.HISTOGRAM, "traces_span_metrics_duration_milliseconds"),
        # The bridge's own.
        (sc.METRIC_TOKEN_USAGE, sc.UNIT_TOKEN, MetricKind.HISTOGRAM, "gen_ai_client_token_usage"),
        (sc.METRIC_OPERATION_DURATION, "s", MetricKind.HISTOGRAM, "gen_ai_client_operation_duration_seconds"),
        (
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            "s",
            MetricKind.HISTOGRAM,
            "gen_ai_client_operation_time_to_first_chunk_seconds",
        ),
        (sc.METRIC_INVOKE_AGENT_DURATION, "s", MetricKind.HISTOGRAM, "gen_ai_invoke_agent_duration_seconds"),
        (sc.METRIC_EXECUTE_TOOL_DURATION, "s", MetricKind.HISTOGRAM, "gen_ai_execute_tool_duration_seconds"),
        (sc.METRIC_COST, sc.UNIT_USD, MetricKind.COUNTER, "gen_ai_client_cost_USD_total"),
        (sc.METRIC_EVENTS_RECEIVED, "{event}", MetricKind.COUNTER, "otel_bridge_events_received_total"),
        (sc.METRIC_EXPORT_QUEUE_DEPTH, "{span}", MetricKind.GAUGE, "otel_bridge_export_queue_depth"),
    ],
)
def test_prometheus_names_follow_the_otel_translation(name: str, unit: str, kind: MetricKind, expected: str) -> None:
    assert metric_name(name, unit, kind) == expected


def test_label_names_and_values() -> None:
    assert label_name("gen_ai.request.model") == "gen_ai_request_model"
    assert label_name("2xx") == "key_2xx"
    assert label_name("__x") == "key__x"
    assert [format_value(v) for v in (1.0, 0.01, 67108864.0, 0.0125, float("inf"))] == [
        "1",
        "0.01",
        "67108864",
        "0.0125",
        "+Inf",
    ]


def test_prometheus_text_whole_output() -> None:
    snapshot = Snapshot(
        T0,
        T0,
        (
            MetricFamily(
                "x.duration",
                "Duration",
                "s",
                MetricKind.HISTOGRAM,
                (Series((("model", 'a"b\\c\nd'),), hist((0.5, 1), [0.25, 0.5, 3.0])),),
            ),
            MetricFamily("x.cost", "Cost", "USD", MetricKind.COUNTER, (Series((("ok", True),), 0.5),)),
            MetricFamily("x.open", "Open\nnow", "{run}", MetricKind.GAUGE, (Series((), 3.0),)),
            MetricFamily("x.dropped", "Dropped", "{item}", MetricKind.COUNTER, ()),
        ),
    )
    assert render(snapshot.families).decode() == (
        "# HELP x_duration_seconds Duration\n"
        "# TYPE x_duration_seconds histogram\n"
        'x_duration_seconds_bucket{model="a\\"b\\\\c\\nd",le="0.5"} 2\n'
        'x_duration_seconds_bucket{model="a\\"b\\\\c\\nd",le="1"} 2\n'
        'x_duration_seconds_bucket{model="a\\"b\\\\c\\nd",le="+Inf"} 3\n'
        'x_duration_seconds_sum{model="a\\"b\\\\c\\nd"} 3.75\n'
        'x_duration_seconds_count{model="a\\"b\\\\c\\nd"} 3\n'
        "# HELP x_cost_USD_total Cost\n"
        "# TYPE x_cost_USD_total counter\n"
        'x_cost_USD_total{ok="true"} 0.5\n'
        "# HELP x_open Open\\nnow\n"
        "# TYPE x_open gauge\n"
        "x_open 3\n"
        "# HELP x_dropped_total Dropped\n"
        "# TYPE x_dropped_total counter\n"
    )
    _, samples = parse_text(render(snapshot.families).decode())
    assert value(samples, "x_duration_seconds_bucket", model='a"b\\c\nd', le="+Inf") == 3


# --- OTLP metrics encoding -----------------------------------------------------------------------------


def _snapshot() -> Snapshot:
    metrics = GenAiMetrics(MetricsSettings(), Stats(), time_ns=lambda: T0 + 60 * S)
    metrics.consume([span("chat gpt-4o", 1.28, CHAT)])
    health = [MetricFamily(sc.METRIC_RUNS_OPEN, "Runs open now", "{run}", MetricKind.GAUGE, (Series((), 2.0),))]
    return Snapshot(T0, T0 + 60 * S, (*metrics.families(), *health))


RESOURCE: dict[str, AttributeValue] = {sc.SERVICE_NAME: "svc"}


def test_protobuf_encoding_parses_back_with_opentelemetry_proto() -> None:
    request = ExportMetricsServiceRequest.FromString(encode_request(_snapshot(), RESOURCE, SCOPE, sc.SCHEMA_URL))
    (rm,) = request.resource_metrics
    assert [(kv.key, kv.value.string_value) for kv in rm.resource.attributes] == [(sc.SERVICE_NAME, "svc")]
    assert rm.schema_url == sc.SCHEMA_URL
    (sm,) = rm.scope_metrics
    assert (sm.scope.name, sm.scope.version) == SCOPE
    by_name = {m.name: m for m in sm.metrics}
    # Families with no series are left out; the rest keep their order.
    assert list(by_name) == [
        sc.METRIC_TOKEN_USAGE,
        sc.METRIC_OPERATION_DURATION,
        sc.METRIC_TIME_TO_FIRST_CHUNK,
        sc.METRIC_COST,
        sc.METRIC_RUNS_OPEN,
    ]
    duration = by_name[sc.METRIC_OPERATION_DURATION]
    assert (duration.unit, duration.histogram.aggregation_temporality) == ("s", 2)  # CUMULATIVE
    (point,) = duration.histogram.data_points
    assert {kv.key: kv.value.string_value for kv in point.attributes} == dict(BASE_KEY)
    assert (point.start_time_unix_nano, point.time_unix_nano) == (T0, T0 + 60 * S)
    assert (point.count, point.sum, point.min, point.max) == (1, 1.28, 1.28, 1.28)
    assert list(point.explicit_bounds) == list(sc.DURATION_BUCKETS)
    assert list(point.bucket_counts) == [0] * 7 + [1] + [0] * 7
    cost = by_name[sc.METRIC_COST]
    assert (cost.unit, cost.sum.is_monotonic, cost.sum.aggregation_temporality) == ("USD", True, 2)
    assert cost.sum.data_points[0].as_double == 0.0125
    gauge = by_name[sc.METRIC_RUNS_OPEN].gauge.data_points[0]
    assert (gauge.as_double, gauge.time_unix_nano, gauge.start_time_unix_nano) == (2.0, T0 + 60 * S, 0)
    tokens = by_name[sc.METRIC_TOKEN_USAGE].histogram.data_points
    assert [(p.count, p.sum) for p in tokens] == [(1, 1000.0), (1, 0.0)]


def test_json_encoding_is_the_same_request() -> None:
    snapshot = _snapshot()
    from_json = json_format.ParseDict(
        request_json(snapshot, RESOURCE, SCOPE, sc.SCHEMA_URL), ExportMetricsServiceRequest()
    )
    from_proto = ExportMetricsServiceRequest.FromString(encode_request(snapshot, RESOURCE, SCOPE, sc.SCHEMA_URL))
    assert from_json == from_proto


class FakeTransport:
    def __init__(self, outcomes: list[SendResult]) -> None:
        self.outcomes = outcomes
        self.bodies: list[bytes] = []
        self.closed = False
        self.two_sent = asyncio.Event()

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        self.bodies.append(body)
        if len(self.bodies) >= 2:
            self.two_sent.set()
        return self.outcomes.pop(0)

    async def close(self) -> None:
        self.closed = True


async def test_exporter_pushes_each_interval_and_once_more_at_shutdown() -> None:
    transport = FakeTransport([SendResult(Outcome.SUCCESS)] * 10)
    exporter = OtlpMetricsExporter(
        MetricsSettings(endpoint="http://x/v1/metrics", export_interval_s=0.02),
        _snapshot,
        RESOURCE,
        SCOPE,
        "",
        transport=transport,
    )
    await exporter.start()
    await asyncio.wait_for(transport.two_sent.wait(), 5)
    pushed = len(transport.bodies)
    await exporter.shutdown()
    assert len(transport.bodies) == pushed + 1  # the final totals
    assert transport.closed
    assert exporter.exports == pushed + 1
    assert ExportMetricsServiceRequest.FromString(transport.bodies[-1]).resource_metrics[0].scope_metrics


async def test_a_failed_push_is_counted_and_the_next_one_carries_the_totals() -> None:
    transport = FakeTransport([SendResult(Outcome.RETRYABLE, "HTTP 503: busy"), SendResult(Outcome.SUCCESS)])
    exporter = OtlpMetricsExporter(
        MetricsSettings(endpoint="http://x/v1/metrics", protocol="http/json"),
        _snapshot,
        RESOURCE,
        SCOPE,
        "",
        transport=transport,
    )
    assert await exporter.export_once() is False
    assert (exporter.failures, exporter.last_error) == (1, "HTTP 503: busy")
    assert await exporter.export_once() is True
    assert (exporter.exports, exporter.last_error) == (1, None)
    assert transport.bodies[0] == transport.bodies[1]  # cumulative: nothing was lost
    assert transport.bodies[0].startswith(b'{"resourceMetrics":')


# --- settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {}),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, {"endpoint": "http://c:4318/v1/metrics"}),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            {"endpoint": "http://c:4317", "protocol": "grpc"},
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9000/custom",
                "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2",
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "b=3",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
                "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "gzip",
                "OTEL_METRIC_EXPORT_INTERVAL": "5000",
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Cumulative",
            },
            {
                "endpoint": "http://m:9000/custom",
                "headers": {"a": "1", "b": "3"},
                "timeout_s": 2.0,
                "compression": "gzip",
                "export_interval_s": 5.0,
            },
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "none"}, {"endpoint": None}),
        ({"OTEL_METRIC_EXPORT_TIMEOUT": "1500"}, {"timeout_s": 1.5}),
    ],
)
def test_metrics_settings_from_the_standard_variables(env: dict[str, str], expected: dict[str, object]) -> None:
    settings = load_settings(environ=env).metrics
    defaults = MetricsSettings()
    for key in ("endpoint", "protocol", "headers", "timeout_s", "compression", "export_interval_s"):
        assert getattr(settings, key) == expected.get(key, getattr(defaults, key)), key


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}, "only cumulative is supported"),
        ({"OTEL_METRICS_EXPORTER": "console"}, "supported values are otlp, prometheus, none"),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "soon"}, "OTEL_METRIC_EXPORT_INTERVAL must be milliseconds"),
    ],
)
def test_bad_metrics_variables_fail_fast(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_metrics_off_leaves_no_sink_and_health_figures_only() -> None:
    settings = load_settings(overrides={"metrics": {"enabled": False}}, environ={})
    pipeline = assemble(settings)
    assert pipeline.metrics is None
    assert pipeline.metrics_exporter is None
    assert "metrics" not in pipeline.sink.names
    names = [f.name for f in pipeline.metrics_snapshot().families]
    assert sc.METRIC_TOKEN_USAGE not in names
    assert sc.METRIC_EVENTS_RECEIVED in names


def _reference(spans: list[SpanRecord], names: sc.Naming, limit: int) -> dict[str, dict[object, list[float]]]:
    """Each metric's measurements per series, by the sorted attribute keys the conventions name (no lookup cache)."""
    out: dict[str, dict[object, list[float]]] = {}

    def key(s: SpanRecord, keys: tuple[str, ...], error: bool, extra: tuple[tuple[str, object], ...] = ()) -> object:
        pairs = [(k, s.attributes[k]) for k in keys if k in s.attributes]
        if error and s.status_code is StatusCode.ERROR:
            e = s.attributes.get(sc.ERROR_TYPE)
            pairs.append((sc.ERROR_TYPE, e if isinstance(e, str) else sc.ERROR_TYPE_OTHER))
        return tuple(sorted([*pairs, *extra]))

    def add(name: str, k: object, value: float) -> None:
        series = out.setdefault(name, {})
        if k not in series and len(series) >= limit:
            k = ((sc.OTEL_METRIC_OVERFLOW, True),)
        series.setdefault(k, []).append(value)

    inference = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL)
    inference += (sc.GEN_AI_RESPONSE_MODEL, sc.SERVER_ADDRESS, sc.SERVER_PORT)
    agent = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_AGENT_NAME)
    tool = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_TOOL_NAME, sc.GEN_AI_TOOL_TYPE)
    for s in spans:
        a, seconds = s.attributes, (s.end_ns - s.start_ns) / 1e9
        op = a.get(sc.GEN_AI_OPERATION_NAME)
        if op == sc.OP_EXECUTE_TOOL:
            add(sc.METRIC_EXECUTE_TOOL_DURATION, key(s, tool, True), seconds)
        elif op == sc.OP_INVOKE_AGENT:
            add(sc.METRIC_INVOKE_AGENT_DURATION, key(s, agent, True), seconds)
        elif op in sc.INFERENCE_OPERATIONS:
            add(names.metric_duration, key(s, inference, True), seconds)
            ttfc = a.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
            if isinstance(ttfc, float):
                add(names.metric_time_to_first_chunk, key(s, inference, True), ttfc)
            for attr, name, token_type in (
                (sc.GEN_AI_USAGE_INPUT_TOKENS, names.metric_input_tokens, sc.TOKEN_TYPE_INPUT),
                (sc.GEN_AI_USAGE_OUTPUT_TOKENS, names.metric_output_tokens, sc.TOKEN_TYPE_OUTPUT),
            ):
                if isinstance(a.get(attr), int):
                    extra = ((sc.GEN_AI_TOKEN_TYPE, token_type),) if names.token_type_attribute else ()
                    add(name, key(s, inference, names.token_error_type, extra), float(a[attr]))  # type: ignore[arg-type]
            if isinstance(a.get(sc.GEN_AI_USAGE_COST), float):
                add(sc.METRIC_COST, key(s, inference, False), a[sc.GEN_AI_USAGE_COST])  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("limit", [1000, 3])
@pytest.mark.parametrize("names", [sc.V1_41, sc_latest.LATEST], ids=["v1.41", "latest"])
def test_the_per_span_lookup_finds_the_series_the_sorted_attributes_name(names: sc.Naming, limit: int) -> None:
    """Mixed spans (attributes present or not, errors with and without a type, repeats) land as the conventions say."""
    variants: list[tuple[dict[str, AttributeValue], bool]] = [
        ({**CHAT, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.5}, False),
        (
            {sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: "s", sc.GEN_AI_TOOL_TYPE: "function"},
            False,
        ),
        (
            {sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.GEN_AI_PROVIDER_NAME: "p", sc.GEN_AI_REQUEST_MODEL: "m"},
            False,
        ),
        (CHAT, False),
        (CHAT, True),
        ({**CHAT, sc.ERROR_TYPE: "timeout"}, True),
        ({k: v for k, v in CHAT.items() if k != sc.GEN_AI_RESPONSE_MODEL}, False),
        ({**CHAT, sc.SERVER_ADDRESS: "api.test", sc.SERVER_PORT: 443}, False),
        ({**CHAT, sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.GEN_AI_USAGE_INPUT_TOKENS: 7}, False),
        ({sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: "search"}, False),
        ({sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: "search"}, True),
        ({sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL}, False),
        ({sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.GEN_AI_AGENT_NAME: "a"}, False),
        ({sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.GEN_AI_AGENT_NAME: "a", sc.ERROR_TYPE: "x"}, True),
    ]
    spans = [span("s", 0.1 * (i + 1), attrs, error=error, sid=i + 1) for i, (attrs, error) in enumerate(variants * 3)]
    stats = Stats()
    metrics = GenAiMetrics(MetricsSettings(max_series_per_metric=limit), stats, names=names, time_ns=lambda: T0)
    metrics.consume(spans[:14])
    metrics.consume(spans[14:])
    got: dict[str, dict[object, tuple[int, float]]] = {}
    hists: dict[str, dict[object, Histogram]] = {}
    for family in metrics.families():
        for s in family.series:
            value = s.value
            got.setdefault(family.name, {})[s.attributes] = (
                (value.count, round(value.total, 9)) if isinstance(value, Histogram) else (1, round(value, 9))
            )
            if isinstance(value, Histogram):
                hists.setdefault(family.name, {})[s.attributes] = value
    reference = _reference(spans, names, limit)
    expected = {
        name: {k: (len(vs) if name != sc.METRIC_COST else 1, round(sum(vs), 9)) for k, vs in series.items()}
        for name, series in reference.items()
    }
    assert got == expected
    # Each histogram holds what Histogram.record makes of its values in span order (the sink records them inline).
    for name, series in hists.items():
        for k, histogram in series.items():
            alone = Histogram.empty(histogram.bounds)
            for value in reference[name][k]:
                alone.record(value)
            assert histogram == alone, (name, k)
    overflowed = sum(
        len(vs) for series in _reference(spans, names, limit).values() for k, vs in series.items()
        if k == ((sc.OTEL_METRIC_OVERFLOW, True),)
    )  # fmt: skip
    assert stats.dropped.get("metrics_series_limit", 0) == overflowed
    assert (overflowed > 0) == (limit == 3)
