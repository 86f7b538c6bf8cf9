"""Spans/s the sidecar pushes through the real collector into Jaeger, against the same run straight into rotel.

(a) collector path: `otel-bridge serve` -> the OpenTelemetry Collector built by
    scripts/install-tools.sh, running collector-config/collector.yaml -> Jaeger v2
    (jaeger/config.yaml, memory storage); the collector's Tempo exporter sends to a
    rotel collector (blackhole exporter). The clock stops when Jaeger's own
    telemetry says it has stored every span.
(b) rotel path: the same sidecar configuration exporting straight to a rotel
    collector (blackhole exporter); the clock stops when the sidecar's /v1/health
    says every span was exported.

Same events (bench_pipeline's canonical runs, NDJSON batches of 500), rounds
interleaved; the medians are printed. CPU seconds of every process involved are
reported beside the wall-clock rate: the machine is shared (2 cores).

Usage: python bench/bench_collector_path.py [--runs 2500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
import rotel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


from bench.bench_pipeline import SPANS_PER_RUN, free_port, make_events
from bench.proctree import tree_cpu_seconds

REPO = pathlib.Path(__file__).resolve().parents[1]
ROTEL = pathlib.Path(rotel.__file__).parent / "rotel-agent"


def _version(var: str) -> str:
    match = re.search(rf"^{var}=(\S+)$", (REPO / "scripts/install-tools.sh").read_text(), re.MULTILINE)
    assert match is not None
    return match.group(1)


def _collector() -> pathlib.Path:
    found = sorted((REPO / ".tools").glob(f"otelcol-{_version('COLLECTOR_VERSION')}-*/otelcol-bridge"))
    if not found:
        sys.exit("the collector is not built: run scripts/install-tools.sh")
    return found[-1]


def _jaeger() -> pathlib.Path:
    path = REPO / ".tools" / f"jaeger-{_version('JAEGER_VERSION')}" / "jaeger"
    if not path.exists():
        sys.exit("jaeger is not built: run scripts/install-tools.sh")
    return path


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


class Procs:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL")}
        full_env.update(env or {})
        proc = subprocess.Popen(args, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self.procs.append(proc)
        return proc

    def cpu(self) -> float:
        return sum(tree_cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _rotel(procs: Procs) -> tuple[int, int]:
    """A rotel collector with the blackhole exporter: its (gRPC, HTTP) ports."""
    grpc, http = free_port(), free_port()
    procs.start(
        "rotel",
        [str(ROTEL), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc}", "--otlp-http-endpoint",
         f"127.0.0.1:{http}", "--exporter", "blackhole"],
    )  # fmt: skip
    time.sleep(0.5)
    return grpc, http


def _sidecar(procs: Procs, endpoint: str, protocol: str) -> str:
    port = free_port()
    config = procs.workdir / "bench.toml"
    config.write_text("[store]\nenabled = false\n[metrics]\nenabled = false\n[feed]\nenabled = false\n")
    procs.start(
        "sidecar",
        [sys.executable, "-m", "otel_bridge", "serve", "--port", str(port), "--config", str(config),
         "--log-level", "warning"],
        env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": protocol},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/v1/health")
    return url


def _post(url: str, body_batches: list[bytes]) -> None:
    with httpx.Client(timeout=30) as client:
        for body in body_batches:
            response = client.post(url + "/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
            assert response.status_code == 202, response.text


def _exported(url: str) -> int:
    return int(sum(httpx.get(url + "/v1/health", timeout=5).json()["spans_exported"].values()))


def _jaeger_stored(telemetry: str) -> int:
    text = httpx.get(telemetry, timeout=5).text
    return int(sum(float(v) for v in re.findall(r"^otelcol_exporter_sent_spans_total\{[^}]*\} (\S+)$", text, re.M)))


def run_collector_path(batches: list[bytes], spans: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        procs = Procs(pathlib.Path(tmp))
        try:
            tempo, _ = _rotel(procs)
            j = {k: free_port() for k in ("grpc", "http", "query", "qgrpc", "health", "telemetry")}
            procs.start(
                "jaeger",
                [str(_jaeger()), "--config", str(REPO / "jaeger/config.yaml")],
                env={
                    "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{j['grpc']}",
                    "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{j['http']}",
                    "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{j['query']}",
                    "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{j['qgrpc']}",
                    "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{j['health']}",
                    "JAEGER_TELEMETRY_HOST": "127.0.0.1",
                    "JAEGER_TELEMETRY_PORT": str(j["telemetry"]),
                    "JAEGER_MAX_TRACES": "1000000",
                },
            )
            _wait_http(f"http://127.0.0.1:{j['health']}/status")
            c = {k: free_port() for k in ("grpc", "http", "health", "prom", "telemetry")}
            procs.start(
                "collector",
                [str(_collector()), "--config", str(REPO / "collector-config/collector.yaml")],
                env={
                    "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{c['grpc']}",
                    "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{c['http']}",
                    "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{c['health']}",
                    "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{c['prom']}",
                    "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
                    "OTELCOL_TELEMETRY_PORT": str(c["telemetry"]),
                    "JAEGER_OTLP_ENDPOINT": f"127.0.0.1:{j['grpc']}",
                    "TEMPO_OTLP_ENDPOINT": f"127.0.0.1:{tempo}",
                },
            )
            _wait_http(f"http://127.0.0.1:{c['health']}/")
            url = _sidecar(procs, f"http://127.0.0.1:{c['http']}/v1/traces", "http/protobuf")
            jaeger_telemetry = f"http://127.0.0.1:{j['telemetry']}/metrics"
            cpu0, t0 = procs.cpu(), time.perf_counter()
            _post(url, batches)
            while _jaeger_stored(jaeger_telemetry) < spans:
                time.sleep(0.02)
            return spans / (time.perf_counter() - t0), procs.cpu() - cpu0
        finally:
            procs.stop()


def run_rotel_path(batches: list[bytes], spans: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        procs = Procs(pathlib.Path(tmp))
        try:
            _, port = _rotel(procs)
            url = _sidecar(procs, f"http://127.0.0.1:{port}/v1/traces", "http/protobuf")
            cpu0, t0 = procs.cpu(), time.perf_counter()
            _post(url, batches)
            while _exported(url) < spans:
                time.sleep(0.02)
            return spans / (time.perf_counter() - t0), procs.cpu() - cpu0
        finally:
            procs.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    events = make_events(args.runs)
    batches = [
        "\n".join(json.dumps(e) for e in events[i : i + args.batch]).encode() for i in range(0, len(events), args.batch)
    ]
    spans = args.runs * SPANS_PER_RUN
    results: dict[str, list[tuple[float, float]]] = {"collector -> jaeger": [], "rotel": []}
    for _ in range(args.rounds):
        results["collector -> jaeger"].append(run_collector_path(batches, spans))
        results["rotel"].append(run_rotel_path(batches, spans))
    print(f"{spans} spans per round, {args.rounds} rounds interleaved (median, min-max)")
    for name, rows in results.items():
        rates = [r for r, _ in rows]
        cpus = [c for _, c in rows]
        print(
            f"  {name:20s} {statistics.median(rates):9.0f} spans/s ({min(rates):.0f}-{max(rates):.0f}); "
            f"CPU of every process {statistics.median(cpus):.2f} s"
        )


if __name__ == "__main__":
    main()
