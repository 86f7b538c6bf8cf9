"""A real Prometheus scrapes the real sidecar; PromQL reads back the tokens and cost of a run posted here."""

from __future__ import annotations

import pathlib
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.prometheus import PROMETHEUS_BIN, SKIP_REASON, Prometheus, parse_text, value
from tests.support.server import BridgeProcess

pytestmark = pytest.mark.skipif(PROMETHEUS_BIN is None, reason=SKIP_REASON)

PRICES = tomllib.loads((pathlib.Path(__file__).resolve().parents[1] / "otel_bridge/data/prices.toml").read_text())


@pytest.fixture
def prometheus(tmp_path: pathlib.Path) -> Iterator[Callable[[dict[str, tuple[str, str]]], Prometheus]]:
    started: list[Prometheus] = []

    def start(jobs: dict[str, tuple[str, str]]) -> Prometheus:
        server = Prometheus(tmp_path / f"prometheus-{len(started)}", jobs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def post(bridge: BridgeProcess, events: list[dict[str, Any]]) -> None:
    response = httpx.post(bridge.url + "/v1/events", json=events, timeout=10)
    assert response.status_code == 202, response.text


RUN = [
    {"kind": "run.started", "run_id": "prom-run", "agent": "scraped-agent", "timestamp": 1_800_000_000_000_000_000},
    {
        "kind": "llm.started",
        "run_id": "prom-run",
        "call_id": "c1",
        "model": "claude-sonnet-4-5",
        "timestamp": 1_800_000_000_100_000_000,
    },
    {
        "kind": "llm.completed",
        "run_id": "prom-run",
        "call_id": "c1",
        "model": "claude-sonnet-4-5",
        "response_model": "claude-sonnet-4-5-20250929",
        "usage": {"input": 48_000, "output": 3_000, "cache_read": 8_000},
        "timestamp": 1_800_000_002_100_000_000,
    },
    {
        "kind": "llm.completed",
        "run_id": "prom-run",
        "call_id": "c2",
        "model": "claude-sonnet-4-5",
        "usage": {"input": 2_000, "output": 500},
        "duration_ms": 900,
        "timestamp": 1_800_000_003_100_000_000,
    },
]


def test_prometheus_scrapes_the_sidecar_and_promql_returns_the_runs_tokens_and_cost(
    bridge_server: Callable[..., BridgeProcess], prometheus: Callable[[dict[str, tuple[str, str]]], Prometheus]
) -> None:
    bridge = bridge_server()
    post(bridge, RUN)
    # What the sidecar itself serves, read first: the same numbers must arrive in Prometheus.
    _, samples = parse_text(httpx.get(bridge.url + "/metrics", timeout=5).text)
    labels = {"gen_ai_request_model": "claude-sonnet-4-5", "gen_ai_token_type": "input"}
    assert value(samples, "gen_ai_client_token_usage_sum", **labels, gen_ai_response_model="claude-sonnet-4-5") == 2_000

    server = prometheus({"otel-bridge": (f"127.0.0.1:{bridge.port}", "/metrics")})
    tokens = 'sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum{gen_ai_request_model="claude-sonnet-4-5"})'
    result = server.wait_for(tokens, lambda r: len(r) == 2)
    got = {r["metric"]["gen_ai_token_type"]: float(r["value"][1]) for r in result}
    assert got == {"input": 50_000.0, "output": 3_500.0}

    price = PRICES["models"]["claude-sonnet-4-5"]
    expected = (42_000 * price["input"] + 8_000 * price["cache_read"] + 3_500 * price["output"]) / 1e6
    (cost,) = server.wait_for('sum(gen_ai_client_cost_USD_total{gen_ai_provider_name="anthropic"})', lambda r: bool(r))
    assert round(float(cost["value"][1]), 2) == round(expected, 2) == 0.18
    calls = server.query('sum(gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat"})')
    assert float(calls["result"][0]["value"][1]) == 2
    (target,) = server.targets_up()
    assert (target["labels"]["job"], target["health"]) == ("otel-bridge", "up")


def test_health_figures_are_scraped_too(
    bridge_server: Callable[..., BridgeProcess], prometheus: Callable[[dict[str, tuple[str, str]]], Prometheus]
) -> None:
    bridge = bridge_server()
    post(bridge, [{"kind": "run.started", "run_id": "h1"}, {"kind": "run.started", "run_id": "h2"}])
    bad = httpx.post(bridge.url + "/v1/events", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    server = prometheus({"otel-bridge": (f"127.0.0.1:{bridge.port}", "/metrics")})
    (received,) = server.wait_for("otel_bridge_events_received_total", lambda r: bool(r))
    assert float(received["value"][1]) == 2
    (open_runs,) = server.wait_for("otel_bridge_runs_open", lambda r: bool(r))
    assert float(open_runs["value"][1]) == 2
    (subscribers,) = server.wait_for("otel_bridge_feed_subscribers", lambda r: bool(r))
    assert float(subscribers["value"][1]) == 0
