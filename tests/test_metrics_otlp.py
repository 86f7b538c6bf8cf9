"""The real sidecar pushes OTLP metrics to a real collector (rotel, metrics receiver on), over HTTP and gRPC."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from tests.support.rotel import Rotel
from tests.support.server import BridgeProcess


def metrics_named(rotel: Rotel, name: str) -> list[Metric]:
    with rotel.receiver._lock:
        requests = list(rotel.receiver.metric_requests)
    return [
        m
        for r in requests
        for rm in r.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
    ]


def wait_for_metric(rotel: Rotel, name: str, predicate: Callable[[Metric], bool], timeout: float = 15.0) -> Metric:
    deadline = time.monotonic() + timeout
    while True:
        for metric in reversed(metrics_named(rotel, name)):
            if predicate(metric):
                return metric
        if time.monotonic() > deadline:
            raise AssertionError(f"no {name} metric matched; got {metrics_named(rotel, name)[-1:]}")
        time.sleep(0.05)


def input_tokens(metric: Metric) -> float:
    return sum(
        p.sum
        for p in metric.histogram.data_points
        if any(kv.key == "gen_ai.token.type" and kv.value.string_value == "input" for kv in p.attributes)
    )


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_token_usage_reaches_a_real_collector(
    protocol: str, rotel_with_metrics: Rotel, bridge_server: Callable[..., BridgeProcess]
) -> None:
    endpoint = rotel_with_metrics.grpc_endpoint if protocol == "grpc" else rotel_with_metrics.http_endpoint
    bridge = bridge_server(
        env={
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": endpoint if protocol == "grpc" else endpoint + "/v1/metrics",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": protocol,
            "OTEL_METRIC_EXPORT_INTERVAL": "200",
            "OTEL_SERVICE_NAME": "metrics-push-test",
        }
    )
    events = [
        {"kind": "llm.completed", "run_id": "m1", "model": "gpt-4o", "usage": {"input": 1234, "output": 56}},
        {"kind": "llm.completed", "run_id": "m1", "model": "gpt-4o", "usage": {"input": 766, "output": 44}},
    ]
    assert httpx.post(bridge.url + "/v1/events", json=events, timeout=10).status_code == 202
    tokens = wait_for_metric(rotel_with_metrics, "gen_ai.client.token.usage", lambda m: input_tokens(m) == 2000)
    assert tokens.unit == "{token}"
    assert tokens.histogram.aggregation_temporality == 2  # cumulative
    cost = wait_for_metric(rotel_with_metrics, "gen_ai.client.cost", lambda m: len(m.sum.data_points) == 1)
    # gpt-4o: 2.50 in, 10.00 out per million tokens.
    assert round(cost.sum.data_points[0].as_double, 6) == round((2000 * 2.50 + 100 * 10.00) / 1e6, 6)
    received = wait_for_metric(rotel_with_metrics, "otel_bridge.events.received", lambda m: True)
    assert received.sum.is_monotonic
    with rotel_with_metrics.receiver._lock:
        resource = rotel_with_metrics.receiver.metric_requests[-1].resource_metrics[0].resource
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == "metrics-push-test"
