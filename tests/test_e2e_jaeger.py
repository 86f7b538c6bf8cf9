"""The path users take, with the real programs: sidecar -> OpenTelemetry Collector -> Jaeger v2.

The collector runs ``collector-config/collector.yaml`` and Jaeger runs
``jaeger/config.yaml`` from this repository, unchanged, with their addresses
set to loopback ports through the environment variables those files read
(their defaults are the docker-compose addresses). Tempo (AGPL, never built
here) is replaced by an in-process OTLP/gRPC receiver: the collector's
``otlp_grpc/tempo`` exporter sends to it exactly as it would to Tempo.

Every golden capture of every dialect is posted to the sidecar; each trace read
back through Jaeger's query API must equal the embedded store's copy span for
span. A real Prometheus scrapes with ``prometheus/prometheus.yml`` (its targets
mapped to loopback) and every query of the Grafana dashboard must return data.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.support.golden import cases, options_for
from tests.support.otelcol import (
    COLLECTOR_MISSING,
    JAEGER_MISSING,
    REPO,
    Collector,
    Jaeger,
    collector_binary,
    jaeger_binary,
)
from tests.support.otlp_grpc_receiver import OtlpGrpcReceiver
from tests.support.otlp_read import canonical, spans_from_otlp_json
from tests.support.prometheus import PROMETHEUS_BIN, SKIP_REASON, Prometheus
from tests.support.server import BridgeProcess

pytestmark = [
    pytest.mark.skipif(collector_binary() is None, reason=COLLECTOR_MISSING),
    pytest.mark.skipif(jaeger_binary() is None, reason=JAEGER_MISSING),
]

MEDIA = {".sse": "text/event-stream", ".json": "application/json", ".ndjson": "application/x-ndjson"}
SERVICE = "otel-bridge-e2e"


@dataclass
class Stack:
    jaeger: Jaeger
    tempo: OtlpGrpcReceiver
    collector: Collector
    bridge: BridgeProcess
    workdir: pathlib.Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("e2e-jaeger")
    started: list[Any] = []  # stopped in reverse order, also when a later start fails
    try:
        jaeger = Jaeger(workdir / "jaeger.log")
        started.append(jaeger)
        tempo = OtlpGrpcReceiver()
        started.append(tempo)
        collector = Collector(
            "collector.yaml",
            workdir / "collector.log",
            exporters={"JAEGER_OTLP_ENDPOINT": jaeger.grpc_endpoint, "TEMPO_OTLP_ENDPOINT": tempo.endpoint},
        )
        started.append(collector)
        config = workdir / "bridge.toml"
        # Short run timeouts so that captures without a terminal event end during the test. The grace is
        # longer: captures of one run (two encoders of one AG-UI run, an A2A task and its resubscription...)
        # are posted one after the other and join one run as in their golden trees, on a loaded machine too.
        config.write_text("[mapping]\nrun_idle_timeout_s = 0.5\nsweep_interval_s = 0.1\nrun_end_grace_s = 5.0\n")
        # As docker-compose.yml configures the sidecar: traces over OTLP/HTTP to the collector.
        bridge = BridgeProcess(
            workdir / "bridge.log",
            args=["--config", str(config)],
            env={
                "OTEL_SERVICE_NAME": SERVICE,
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.http_endpoint}/v1/traces",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
                "OTEL_BSP_SCHEDULE_DELAY": "50",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
            },
        )
        started.append(bridge)
        yield Stack(jaeger, tempo, collector, bridge, workdir)
    finally:
        for part in reversed(started):
            part.stop()


def _post_every_capture(bridge: BridgeProcess) -> dict[str, set[str]]:
    """Every golden capture posted to the sidecar: the trace ids each one made."""
    made: dict[str, set[str]] = {}
    for capture in cases():
        params = {}
        if "dialect" in options_for(capture):
            params["dialect"] = options_for(capture)["dialect"]
        response = httpx.post(
            f"{bridge.url}/v1/events",
            params=params,
            content=capture.read_bytes(),
            headers={"Content-Type": MEDIA[capture.suffix]},
            timeout=10,
        )
        assert response.status_code == 202, (capture, response.text)
        made[capture.name] = {run["trace_id"] for run in response.json()["runs"]}
    return made


def _wait_settled(bridge: BridgeProcess, trace_ids: set[str], timeout: float = 20.0) -> None:
    """Until every trace is in the store with its run's own span ended."""
    deadline = time.monotonic() + timeout
    while True:
        listed = httpx.get(f"{bridge.url}/v1/traces", params={"limit": 1000}).json()["traces"]
        done = {t["trace_id"] for t in listed if t["status"] != "running"}
        if trace_ids <= done:
            return
        assert time.monotonic() < deadline, f"still running: {sorted(trace_ids - done)}"
        time.sleep(0.1)


def _viewed(span: Any) -> dict[str, Any]:
    """A span as a viewer shows it: Jaeger returns a span's events in an order of its own (not the order
    sent), and a viewer lays them out by time, so events are compared as a set, ordered by time."""
    out = canonical(span)
    out["events"] = sorted(out["events"], key=lambda e: (e[1], e[0], sorted(e[2].items())))
    return out


def _store_copy(bridge: BridgeProcess, trace_id: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{bridge.url}/v1/traces/{trace_id}", timeout=10).json()
    return sorted((_viewed(span) for _, span in spans_from_otlp_json(body)), key=lambda s: s["span_id"])


def _jaeger_copy(
    jaeger: Jaeger,
    trace_id: str,
    expected: list[dict[str, Any]],
    *,
    subset: bool = False,
    raw: bool = False,
    timeout: float = 20.0,
) -> list[dict[str, Any]]:
    """Jaeger's copy once it equals ``expected`` (holds it, with ``subset``), or as it is after ``timeout``
    (the collector batches for 1 s, and a trace's spans arrive in several batches)."""
    deadline = time.monotonic() + timeout
    while True:
        body = jaeger.trace(trace_id, raw=raw)
        spans = spans_from_otlp_json(body["result"]) if body is not None else []
        got = sorted((_viewed(span) for _, span in spans), key=lambda s: s["span_id"])
        if (all(e in got for e in expected) if subset else got == expected) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _differences(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> list[str]:
    """What differs, span by span and field by field (readable where a whole-list diff is not)."""
    by_id = {s["span_id"]: s for s in got}
    out = []
    for span in want:
        other = by_id.pop(span["span_id"], None)
        if other is None:
            out.append(f"missing {span['span_id']} {span['name']}")
            continue
        for field in span:
            if span[field] != other[field]:
                if isinstance(span[field], dict):
                    keys = set(span[field]) | set(other[field])
                    diff = {
                        k: (span[field].get(k), other[field].get(k))
                        for k in keys
                        if span[field].get(k) != other[field].get(k)
                    }
                    out.append(f"{span['name']}.{field}: {diff}")
                elif field == "events":
                    want_events = [(e[0], e[1], sorted(e[2])) for e in span[field]]
                    got_events = [(e[0], e[1], sorted(e[2])) for e in other[field]]
                    out.append(f"{span['name']}.events: want {want_events}, got {got_events}")
                else:
                    out.append(f"{span['name']}.{field}: want {span[field]!r}, got {other[field]!r}")
    out += [f"extra {s['span_id']} {s['name']}" for s in by_id.values()]
    return out


def test_every_capture_reads_back_from_jaeger_as_the_store_holds_it(stack: Stack) -> None:
    made = _post_every_capture(stack.bridge)
    trace_ids = set().union(*made.values())
    assert len(trace_ids) >= len(cases()) // 2  # captures of one scenario may share a run
    # Captures recorded apart that carry the same run id (a resubscription, one response captured twice)
    # meet in one trace here: the later one's spans are a continuation, possibly timed before the run it
    # continues, which Jaeger's read-time adjusters flag. Those traces are compared as stored (raw); every
    # other trace as the UI reads it, adjusted, which must add nothing (no warnings), except a trace that
    # joined a caller's (below).
    uses = [t for ids in made.values() for t in ids]
    shared = {t for t in trace_ids if uses.count(t) > 1}
    assert len(shared) < len(trace_ids) // 4
    _wait_settled(stack.bridge, trace_ids)
    names: set[str] = set()
    stored_copies = {trace_id: _store_copy(stack.bridge, trace_id) for trace_id in sorted(trace_ids)}
    total = sum(len(spans) for spans in stored_copies.values())
    stack.jaeger.wait_stored(total)
    for trace_id, stored in stored_copies.items():
        assert stored, trace_id
        # A run that joined its caller's trace (a W3C traceparent: MCP's params._meta) has a parent that
        # is the caller's span, not in this trace; Jaeger's clock-skew adjuster flags it. Compared raw too.
        ids = {span["span_id"] for span in stored}
        joined = any(span["parent"] and span["parent"] not in ids for span in stored)
        from_jaeger = _jaeger_copy(stack.jaeger, trace_id, stored, raw=trace_id in shared or joined)
        assert from_jaeger == stored, f"trace {trace_id}: Jaeger vs store: {_differences(from_jaeger, stored)}"
        names |= {s["name"] for s in stored}
    # The span kinds users look for are all there, through the real path.
    assert any(n.startswith("invoke_agent") for n in names)
    assert any(n.startswith("chat ") for n in names)
    assert any(n.startswith("execute_tool ") for n in names)
    # The same spans went to the Tempo exporter, resource included.
    received = stack.tempo.wait_for_spans(lambda spans: len(spans) >= total)
    assert {s.trace_id.hex() for s in received} >= trace_ids
    # Jaeger indexes the service from the resource the sidecar sends.
    services = httpx.get(f"{stack.jaeger.query_url}/api/v3/services", timeout=5).json()["services"]
    assert SERVICE in services


def test_replay_export_into_jaeger_equals_replay_out(stack: Stack, tmp_path: pathlib.Path) -> None:
    """``otel-bridge replay --export`` of a capture of every dialect lands in Jaeger as ``--out`` writes it."""
    first_per_dialect: dict[str, pathlib.Path] = {}
    for capture in cases():
        if "dialect" not in options_for(capture):
            first_per_dialect.setdefault(capture.parent.name, capture)
    captures = list(first_per_dialect.values())
    out = tmp_path / "replay.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_SERVICE_NAME"] = "otel-bridge-replay"
    # One run writes --out and exports, so arrival-stamped events carry the same times in both.
    exported = subprocess.run(
        [sys.executable, "-m", "otel_bridge", "replay", *map(str, captures), "--out", str(out), "--export"],
        env={
            **env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{stack.collector.grpc_endpoint}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert exported.returncode == 0, exported.stderr
    assert "0 failed" in exported.stderr
    replayed = [span for _, span in spans_from_otlp_json(json.loads(out.read_text()))]
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for span in replayed:
        by_trace.setdefault(span.trace_id.hex(), []).append(_viewed(span))
    assert len(by_trace) >= len(captures) // 2
    for trace_id, spans in by_trace.items():
        expected = sorted(spans, key=lambda s: s["span_id"])
        # The earlier test exported the same runs from the sidecar (same deterministic ids: replay and the
        # sidecar derive them alike, with other arrival times); Jaeger holds both copies, so the trace is
        # read raw (as stored, no de-duplication) and the replayed spans must all be in it.
        in_jaeger = _jaeger_copy(stack.jaeger, trace_id, expected, subset=True, raw=True)
        missing = [f"{s['span_id']} {s['name']}" for s in expected if s not in in_jaeger]
        assert missing == [], f"replayed trace {trace_id}: not in Jaeger as written: {missing}"


# --- Prometheus and the Grafana dashboard --------------------------------------------------------


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((REPO / "grafana/dashboards/genai.json").read_text())

    def panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for panel in node.get("panels", []):
            yield panel
            yield from panels(panel)

    return [(p.get("title", ""), t["expr"]) for p in panels(dashboard) for t in p.get("targets", []) if "expr" in t]


def _as_grafana_would(expr: str) -> str:
    """The query Grafana sends: its variables replaced as it would on a 1 s scrape interval."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$job", "otel-bridge")
    assert "$" not in re.sub(r"\$\w+", lambda m: m.group(0) if m.group(0).startswith("$__") else "", expr), expr
    return expr


@pytest.mark.skipif(PROMETHEUS_BIN is None, reason=SKIP_REASON)
def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    """``prometheus/prometheus.yml`` scrapes the sidecar and the collector's spanmetrics; every panel has data."""
    config = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
    loopback = {
        "otel-bridge:8318": f"127.0.0.1:{stack.bridge.port}",
        "otel-collector:8889": f"127.0.0.1:{stack.collector.prometheus_port}",
        "otel-collector:8888": f"127.0.0.1:{stack.collector.telemetry_port}",
    }
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [loopback[t] for t in static["targets"]]
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
    prometheus = Prometheus(stack.workdir / "prometheus", {}, config=config)
    try:
        # Runs posted while Prometheus scrapes, so that rates have two samples on either side.
        time.sleep(2.5)
        trace_ids = set().union(*_post_every_capture(stack.bridge).values())
        # And what the rejection and drop panels show: a frame that is not JSON, an event sent twice.
        twice = {
            "kind": "progress",
            "run_id": "dashboard-dup",
            "event_id": "e-1",
            "timestamp": 1_800_000_000_000_000_000,
        }
        body = "\n".join(["not json", json.dumps(twice), json.dumps(twice)]).encode()
        response = httpx.post(
            f"{stack.bridge.url}/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        assert (response.status_code, response.json()["rejected"]) == (202, 1)
        _wait_settled(stack.bridge, trace_ids)
        empty = []
        deadline = time.monotonic() + 40
        for title, expr in _dashboard_queries():
            query = _as_grafana_would(expr)
            try:
                prometheus.wait_for(
                    query, lambda result: len(result) > 0, timeout=max(1.0, deadline - time.monotonic())
                )
            except AssertionError as exc:
                empty.append(f"panel {title!r}: {exc}")
        assert empty == []
        up = {t["labels"]["job"]: t["health"] for t in prometheus.targets_up()}
        assert up == {"otel-bridge": "up", "otel-collector": "up", "otel-collector-self": "up"}
    finally:
        prometheus.stop()


# --- a long run is visible while it runs --------------------------------------------------------


def test_a_ten_minute_runs_finished_spans_are_searchable_in_jaeger_before_it_ends(stack: Stack) -> None:
    """Children are exported as they end; the run's "in progress" marker makes the run findable by agent.

    The run's events span ten minutes (timestamps from ten minutes ago until now) and it has not
    ended: its ``invoke_agent`` span is not exported yet. Jaeger's search finds its LLM and tool
    spans by operation, and the run itself by its agent tag, through the marker span.
    """
    config = stack.workdir / "long.toml"
    config.write_text("[mapping]\nrun_idle_timeout_s = 3600\nsweep_interval_s = 0.1\nrun_marker_after_s = 1\n")
    sidecar = BridgeProcess(
        stack.workdir / "long-sidecar.log",
        args=["--config", str(config)],
        env={
            "OTEL_SERVICE_NAME": "long-runs",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{stack.collector.http_endpoint}/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        },
    )
    minute = 60 * 1_000_000_000
    t0 = time.time_ns() - 10 * minute
    run = {"run_id": "ten-minute-run"}
    llm = {**run, "provider": "openai", "model": "gpt-4o"}
    events: list[dict[str, Any]] = [
        {**run, "kind": "run.started", "agent": "long-agent", "timestamp": t0},
        {**llm, "kind": "llm.started", "call_id": "c1", "timestamp": t0 + 1 * minute},
        {
            **llm,
            "kind": "llm.completed",
            "call_id": "c1",
            "usage": {"input": 5, "output": 7},
            "timestamp": t0 + 2 * minute,
        },
        {**run, "kind": "tool.started", "tool_name": "crawl", "call_id": "t1", "timestamp": t0 + 3 * minute},
        {**run, "kind": "tool.completed", "tool_name": "crawl", "call_id": "t1", "timestamp": t0 + 8 * minute},
        {**llm, "kind": "llm.started", "call_id": "c2", "timestamp": t0 + 10 * minute},  # still running
    ]
    try:
        response = httpx.post(f"{sidecar.url}/v1/events", json=events, timeout=10)
        assert response.status_code == 202, response.text
        (placed,) = response.json()["runs"]
        trace_id = placed["trace_id"]
        window = (t0 - minute, time.time_ns() + minute)
        deadline = time.monotonic() + 20
        while True:
            found = stack.jaeger.find_traces("long-runs", *window, operation="execute_tool crawl")
            tagged = stack.jaeger.find_by_tag("long-runs", {"gen_ai.agent.name": "long-agent"})
            names = {span.name for _, span in found if span.trace_id.hex() == trace_id}
            if {"chat gpt-4o", "execute_tool crawl", "invoke_agent long-agent (running)"} <= names and tagged:
                break
            assert time.monotonic() < deadline, f"not searchable in Jaeger yet: {names}, tagged: {len(tagged)}"
            time.sleep(0.2)
        assert "invoke_agent long-agent" not in names  # the run has not ended
        (by_agent,) = tagged
        assert by_agent["traceID"] == trace_id
        marker = next(s for s in by_agent["spans"] if s["operationName"].endswith("(running)"))
        marker_id = next(s.span_id for _, s in found if s.name == "invoke_agent long-agent (running)")
        assert marker["spanID"] == marker_id.hex()

        # The run ends: its root arrives and the marker sits under it.
        end = [
            {**llm, "kind": "llm.completed", "call_id": "c2", "timestamp": time.time_ns()},
            {**run, "kind": "run.finished", "timestamp": time.time_ns()},
        ]
        assert httpx.post(f"{sidecar.url}/v1/events", json=end, timeout=10).status_code == 202
        spans = {}
        deadline = time.monotonic() + 20
        while "invoke_agent long-agent" not in spans:
            body = stack.jaeger.trace(trace_id)
            spans = {s.name: s for _, s in spans_from_otlp_json(body["result"])} if body else {}
            assert time.monotonic() < deadline, sorted(spans)
            time.sleep(0.2)
        root = spans["invoke_agent long-agent"]
        assert spans["invoke_agent long-agent (running)"].parent_span_id == root.span_id
        assert root.end_time_unix_nano - root.start_time_unix_nano >= 10 * minute
    finally:
        sidecar.stop()
