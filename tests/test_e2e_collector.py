"""End to end: the real `otel-bridge serve` process exports to a real rotel collector.

Every span the embedded store holds must reach the collector with the same ids,
names, kinds, parents, status and attributes, over OTLP/HTTP and OTLP/gRPC.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.support.golden import FIXTURES
from tests.support.otlp_read import canonical, spans_from_otlp_json
from tests.support.rotel import Rotel
from tests.support.server import BridgeProcess

CAPTURES = [
    (FIXTURES / "openintent" / "intent-sse.sse", "text/event-stream"),
    (FIXTURES / "openintent" / "event-log.json", "application/json"),
    (FIXTURES / "openintent" / "adapter-events.json", "application/json"),
    (FIXTURES / "agent-event-stream" / "weather.sse", "text/event-stream"),
]


def _store_spans(bridge: BridgeProcess, trace_ids: list[str]) -> list[Span]:
    spans: list[Span] = []
    for trace_id in trace_ids:
        body = httpx.get(f"{bridge.url}/v1/traces/{trace_id}").json()
        spans.extend(span for _, span in spans_from_otlp_json(body))
    return spans


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_every_span_reaches_a_real_collector(
    protocol: str, rotel: Rotel, bridge_server: Callable[..., BridgeProcess], tmp_path: pathlib.Path
) -> None:
    endpoint = rotel.grpc_endpoint if protocol == "grpc" else rotel.http_endpoint
    config = tmp_path / "bridge.toml"
    # Short timeouts so that runs without a terminal event close during the test.
    config.write_text("[mapping]\nrun_idle_timeout_s = 0.5\nsweep_interval_s = 0.1\nrun_end_grace_s = 0.2\n")
    bridge = bridge_server(
        args=["--config", str(config)],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_SERVICE_NAME": "e2e-agents",
        },
    )
    trace_ids: list[str] = []
    for capture, media in CAPTURES:
        r = httpx.post(
            f"{bridge.url}/v1/events",
            content=capture.read_bytes(),
            headers={"Content-Type": media},
        )
        assert r.status_code == 202, r.text
        assert r.json()["rejected"] == 0
        trace_ids += [run["trace_id"] for run in r.json()["runs"]]
    deadline = time.monotonic() + 10
    while True:
        listed = httpx.get(f"{bridge.url}/v1/traces").json()["traces"]
        if {t["trace_id"] for t in listed if t["status"] != "running"} == set(trace_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {t["trace_id"] for t in listed} == set(trace_ids)
    stored = _store_spans(bridge, sorted(set(trace_ids)))
    # A SIGTERM is a clean stop: exit status 0 after the drain.
    assert bridge.stop() == 0
    received = rotel.wait_for_spans(lambda spans: len(spans) >= len(stored))
    # The same intent arrives twice (its SSE capture and its event log): events
    # with the same id are mapped once, so each span arrives exactly once.
    assert sorted(map(canonical, received), key=str) == sorted(map(canonical, stored), key=str)
    names = {s.name for s in received}
    assert {"chat gpt-4o", "execute_tool search", "execute_tool get_weather", "invoke_agent otel-probe-agent"} <= names
    assert {canonical(s)["trace_id"] for s in received} == set(trace_ids)
    resource = rotel.receiver.trace_requests[0].resource_spans[0].resource
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == "e2e-agents"
