"""The gateway variant with the real collector: two sidecars -> agent tier -> two gateways.

``collector-config/gateway/agent.yaml`` (loadbalancing exporter, ``routing_key:
traceID``, a static resolver of two gateways) runs in front of two collectors
running ``collector-config/gateway/gateway.yaml``, each exporting to its own
OTLP/gRPC receiver. The events of every run are split between two sidecars,
so one trace's spans leave two processes; each trace must still arrive whole
at exactly one gateway.

Then one gateway is stopped while runs are posted and started again on the
same address: the loadbalancing exporter keeps routing that gateway's share of
traces to it (a static resolver does not re-balance), its per-endpoint queue
retries, and once the gateway is back those traces arrive, whole, at it.
"""

from __future__ import annotations

import pathlib
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.otelcol import COLLECTOR_MISSING, Collector, collector_binary
from tests.support.otlp_grpc_receiver import OtlpGrpcReceiver
from tests.support.otlp_read import canonical, spans_from_otlp_json
from tests.support.ports import free_port
from tests.support.server import BridgeProcess

pytestmark = pytest.mark.skipif(collector_binary() is None, reason=COLLECTOR_MISSING)

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


@dataclass
class Gateway:
    receiver: OtlpGrpcReceiver  # where its "jaeger" exporter sends
    tempo: OtlpGrpcReceiver  # where its "tempo" exporter sends (the same spans again)
    port: int
    log: pathlib.Path
    collector: Collector | None = None

    def start(self) -> None:
        self.collector = Collector(
            "gateway/gateway.yaml",
            self.log,
            exporters={"JAEGER_OTLP_ENDPOINT": self.receiver.endpoint, "TEMPO_OTLP_ENDPOINT": self.tempo.endpoint},
            grpc_port=self.port,
        )

    def stop(self) -> None:
        if self.collector is not None:
            self.collector.stop()
            self.collector = None


@dataclass
class Fleet:
    gateways: list[Gateway]
    agent: Collector
    sidecars: list[BridgeProcess]


@pytest.fixture
def fleet(tmp_path: pathlib.Path) -> Iterator[Fleet]:
    gateways = [
        Gateway(OtlpGrpcReceiver(), OtlpGrpcReceiver(), free_port(), tmp_path / f"gateway-{i}.log") for i in (1, 2)
    ]
    agent: Collector | None = None
    sidecars: list[BridgeProcess] = []
    try:
        for gateway in gateways:
            gateway.start()
        agent = Collector(
            "gateway/agent.yaml",
            tmp_path / "agent.log",
            exporters={f"GATEWAY_{i}_ENDPOINT": f"127.0.0.1:{g.port}" for i, g in enumerate(gateways, 1)},
        )
        config = tmp_path / "bridge.toml"
        config.write_text("[mapping]\nrun_idle_timeout_s = 0.5\nsweep_interval_s = 0.1\nrun_end_grace_s = 0.2\n")
        for i in (1, 2):
            sidecars.append(
                BridgeProcess(
                    tmp_path / f"sidecar-{i}.log",
                    args=["--config", str(config)],
                    env={
                        "OTEL_SERVICE_NAME": f"sidecar-{i}",
                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{agent.http_endpoint}/v1/traces",
                        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
                        "OTEL_BSP_SCHEDULE_DELAY": "50",
                    },
                )
            )
        yield Fleet(gateways, agent, sidecars)
    finally:
        for sidecar in sidecars:
            sidecar.stop()
        if agent is not None:
            agent.stop()
        for gateway in gateways:
            gateway.stop()
            gateway.receiver.stop()
            gateway.tempo.stop()


def _run_halves(run: str, t0: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One run's events: its start and LLM call for one sidecar, its tool call and end for the other."""
    first = [
        {"kind": "run.started", "run_id": run, "agent": "gateway-agent", "timestamp": t0},
        {"kind": "llm.started", "run_id": run, "call_id": "c1", "model": "gpt-4o", "timestamp": t0 + 1 * MS},
        {
            "kind": "llm.completed",
            "run_id": run,
            "call_id": "c1",
            "model": "gpt-4o",
            "usage": {"input": 10, "output": 5},
            "timestamp": t0 + 40 * MS,
        },
    ]
    second = [
        {"kind": "tool.started", "run_id": run, "call_id": "t1", "tool": "lookup", "timestamp": t0 + 41 * MS},
        {"kind": "tool.completed", "run_id": run, "call_id": "t1", "tool": "lookup", "timestamp": t0 + 60 * MS},
        {"kind": "run.finished", "run_id": run, "timestamp": t0 + 61 * MS},
    ]
    return first, second


def _post_runs(fleet: Fleet, prefix: str, count: int) -> set[str]:
    trace_ids: set[str] = set()
    for i in range(count):
        first, second = _run_halves(f"{prefix}-{i}", T0 + i * 100 * MS)
        # Alternate which sidecar sees the start, so both carry roots and children.
        a, b = (fleet.sidecars[0], fleet.sidecars[1]) if i % 2 == 0 else (fleet.sidecars[1], fleet.sidecars[0])
        for sidecar, events in ((a, first), (b, second)):
            response = httpx.post(f"{sidecar.url}/v1/events", json=events, timeout=10)
            assert response.status_code == 202, response.text
            trace_ids |= {run["trace_id"] for run in response.json()["runs"]}
    assert len(trace_ids) == count  # both halves of a run derive the same trace id
    return trace_ids


def _sidecar_spans(fleet: Fleet, trace_ids: set[str]) -> dict[str, Counter[str]]:
    """What the sidecars' own stores hold per trace (span id and name, counted: two sidecars, two roots)."""
    deadline = time.monotonic() + 20
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for sidecar in fleet.sidecars:
        while True:
            listed = httpx.get(f"{sidecar.url}/v1/traces", params={"limit": 1000}).json()["traces"]
            running = [t for t in listed if t["trace_id"] in trace_ids and t["status"] == "running"]
            if not running:
                break
            assert time.monotonic() < deadline, f"runs still open: {len(running)}"
            time.sleep(0.1)
        for trace in listed:
            if trace["trace_id"] in trace_ids:
                body = httpx.get(f"{sidecar.url}/v1/traces/{trace['trace_id']}").json()
                for _, span in spans_from_otlp_json(body):
                    out[trace["trace_id"]][canonical(span)["span_id"] + " " + span.name] += 1
    return out


def _arrived(gateway: Gateway, trace_ids: set[str]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for span in gateway.receiver.spans():
        if span.trace_id.hex() in trace_ids:
            out[span.trace_id.hex()][span.span_id.hex() + " " + span.name] += 1
    return out


def _wait_arrivals(fleet: Fleet, expected: dict[str, Counter[str]], timeout: float) -> list[dict[str, Counter[str]]]:
    want = sum(sum(c.values()) for c in expected.values())
    deadline = time.monotonic() + timeout
    while True:
        arrived = [_arrived(g, set(expected)) for g in fleet.gateways]
        got = sum(sum(c.values()) for a in arrived for c in a.values())
        if got >= want or time.monotonic() > deadline:
            return arrived
        time.sleep(0.2)


def _assert_whole_at_exactly_one(expected: dict[str, Counter[str]], arrived: list[dict[str, Counter[str]]]) -> None:
    for trace_id, spans in expected.items():
        holders = [i for i, a in enumerate(arrived) if trace_id in a]
        assert len(holders) == 1, f"trace {trace_id} reached gateways {holders}"
        assert arrived[holders[0]][trace_id] == spans, f"trace {trace_id} arrived incomplete"


def test_every_trace_arrives_whole_at_exactly_one_gateway(fleet: Fleet) -> None:
    trace_ids = _post_runs(fleet, "lb", 200)
    expected = _sidecar_spans(fleet, trace_ids)
    # Each sidecar closes its part of a run: a root (the same id from both), and the chat or the tool span.
    assert Counter(sum(c.values()) for c in expected.values()) == {4: 200}
    arrived = _wait_arrivals(fleet, expected, timeout=30)
    _assert_whole_at_exactly_one(expected, arrived)
    shares = [len(a) for a in arrived]
    assert sum(shares) == 200, shares
    assert min(shares) >= 50, shares  # both gateways take a fair share


def test_a_stopped_gateway_gets_its_traces_when_it_returns(fleet: Fleet) -> None:
    """Stopping gateway 2 loses nothing if it returns within the exporter's retry window (5 min by default)."""
    warmup = _post_runs(fleet, "before", 20)
    _wait_arrivals(fleet, _sidecar_spans(fleet, warmup), timeout=30)
    fleet.gateways[1].stop()
    trace_ids = _post_runs(fleet, "during", 100)
    expected = _sidecar_spans(fleet, trace_ids)
    during = _wait_arrivals(fleet, expected, timeout=5)
    # While it is down, nothing of its share moves to gateway 1: gateway 1 holds only whole traces.
    for trace_id, spans in during[0].items():
        assert spans == expected[trace_id]
    assert 0 < len(during[0]) < 100
    stopped_at = time.monotonic()
    fleet.gateways[1].start()
    arrived = _wait_arrivals(fleet, expected, timeout=60)
    recovered_s = time.monotonic() - stopped_at
    _assert_whole_at_exactly_one(expected, arrived)
    assert len(arrived[1]) == 100 - len(during[0])
    print(f"gateway 2 back: its {len(arrived[1])} traces arrived {recovered_s:.1f} s after its restart")
