"""CPU per event: otel-bridge against a plain OpenTelemetry-SDK server, each a whole process tree.

The workload: ``--runs`` runs of 16 events each (the run's start and end, 3 LLM calls, 2 tool
calls, 2 progress events and 2 messages: 6 spans and 4 span events a run), POSTed as NDJSON
to ``POST /v1/events`` in bodies of ``--batch`` events (and of 10 and of 1 event, with
``--small-runs`` runs, since a POST per event takes far longer). Both servers export over
OTLP/HTTP to the same real rotel collector (blackhole exporter), and the clock stops when each
says it has delivered every span.

(a) otel-bridge: the real ``otel-bridge serve``; "export only" has the store, metrics and feed
    off; "full sidecar" is the default configuration (embedded store, GenAI metrics, live feed
    with no subscriber). Its tree is the server and its export worker process.
(b) the SDK baseline: bench/sdk_baseline_server.py (FastAPI + uvicorn like the sidecar,
    TracerProvider + BatchSpanProcessor + OTLPSpanExporter), one process.

What is measured is CPU seconds (user + system, from /proc) of each server's whole process tree
from the first POST until every span is delivered, divided by the events: two processes do not
look cheaper than one, and a shared, noisy machine moves CPU time far less than wall time.
Rounds are interleaved (each round runs every configuration of both servers, the order of the
two alternating), each measurement in a fresh server; medians and the min-max spread are printed,
as per-event figures and as ratios (baseline CPU / otel-bridge CPU: above 1 means otel-bridge is
cheaper).

``--check`` first sends a few runs through both servers to an in-process OTLP receiver and
compares the spans they emit (names, kinds, parents, links, attributes, span events, times).

Usage: python bench/bench_pipeline.py [--runs 4000] [--small-runs 500] [--rounds 3] [--batch 500] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import rotel

REPO = pathlib.Path(__file__).resolve().parents[1]
ROTEL = pathlib.Path(rotel.__file__).parent / "rotel-agent"
BASELINE = REPO / "bench" / "sdk_baseline_server.py"
EVENTS_PER_RUN = 16
WORKLOAD_SPANS_PER_RUN = 6
SPANS_PER_RUN = 4
"""Spans a run of :func:`make_events` (the earlier 8-event runs other benches still use) gives."""
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_workload(runs: int, prefix: str = "bench") -> list[dict[str, object]]:
    """16 canonical events a run: 6 spans (run, 3 chat, 2 tools), 4 span events (2 progress, 2 messages)."""
    t0 = 1_800_000_000_000_000_000
    out: list[dict[str, object]] = []
    for r in range(runs):
        run = f"{prefix}-{r}"
        t = t0 + r * 100_000_000
        llm = {"run_id": run, "provider": "openai", "model": "gpt-4o-mini"}
        out.append({"kind": "run.started", "run_id": run, "agent": "bench-agent", "timestamp": t})
        for c in range(3):
            call, t = f"{run}-l{c}", t + 1_000_000
            out.append({**llm, "kind": "llm.started", "call_id": call, "temperature": 0.2, "timestamp": t})
            t += 5_000_000
            out.append({**llm, "kind": "llm.completed", "call_id": call, "usage": {"input": 812, "output": 96},
                        "finish_reasons": ["tool_calls" if c < 2 else "stop"], "response_id": f"resp-{r}-{c}",
                        "timestamp": t})  # fmt: skip
            if c < 2:
                tool, t = f"{run}-t{c}", t + 1_000_000
                out.append({"kind": "tool.started", "run_id": run, "tool_name": "search", "call_id": tool,
                            "parent_call_id": call, "timestamp": t})  # fmt: skip
                t += 3_000_000
                out.append({"kind": "tool.completed", "run_id": run, "tool_name": "search", "call_id": tool,
                            "timestamp": t})  # fmt: skip
                t += 100_000
                out.append({"kind": "progress", "run_id": run, "status": f"searched {c + 1}", "timestamp": t})
            else:
                for m in range(2):
                    t += 100_000
                    out.append({"kind": "message", "run_id": run, "text": f"answer part {m}", "timestamp": t})
        out.append({"kind": "run.finished", "run_id": run, "status": "completed", "timestamp": t + 100_000})
    assert len(out) == runs * EVENTS_PER_RUN
    return out


def make_events(runs: int) -> list[dict[str, object]]:
    """8 canonical events per run: 4 spans (run, 2 chat, 1 tool), one span event."""
    t0 = 1_800_000_000_000_000_000
    out: list[dict[str, object]] = []
    for r in range(runs):
        run = f"bench-{r}"
        t = t0 + r * 10_000_000
        llm = {"run_id": run, "provider": "openai", "model": "gpt-4o-mini"}
        out += [
            {"kind": "run.started", "run_id": run, "agent": "bench-agent", "timestamp": t},
            {**llm, "kind": "llm.started", "call_id": f"{run}-1", "stream": True, "temperature": 0.2,
             "timestamp": t + 1},
            {**llm, "kind": "llm.completed", "call_id": f"{run}-1", "usage": {"input": 812, "output": 96},
             "finish_reasons": ["tool_calls"], "response_id": f"resp-{r}", "timestamp": t + 2_000_000},
            {"kind": "tool.started", "run_id": run, "tool_name": "search", "call_id": f"{run}-t",
             "parent_call_id": f"{run}-1", "timestamp": t + 2_100_000},
            {"kind": "tool.completed", "run_id": run, "tool_name": "search", "call_id": f"{run}-t",
             "timestamp": t + 4_000_000},
            {**llm, "kind": "llm.started", "call_id": f"{run}-2", "timestamp": t + 4_100_000},
            {**llm, "kind": "llm.completed", "call_id": f"{run}-2", "usage": {"input": 1020, "output": 210},
             "finish_reasons": ["stop"], "timestamp": t + 6_000_000},
            {"kind": "run.finished", "run_id": run, "status": "completed", "timestamp": t + 6_100_000},
        ]  # fmt: skip
    return out


def bodies_of(events: list[dict[str, object]], batch: int) -> list[bytes]:
    lines = [json.dumps(e).encode() for e in events]
    return [b"\n".join(lines[i : i + batch]) for i in range(0, len(lines), batch)]


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every live descendant."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICK
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(p, 0.0) for p in tree)


class Rotel:
    def __init__(self) -> None:
        self.grpc, self.http = free_port(), free_port()
        self.proc = subprocess.Popen(
            [str(ROTEL), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc}", "--otlp-http-endpoint",
             f"127.0.0.1:{self.http}", "--otlp-receiver-metrics-disabled", "--otlp-receiver-logs-disabled",
             "--exporter", "blackhole"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise SystemExit("rotel did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    delivered: Callable[[httpx.Client], int]  # spans delivered (or failed) so far

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_bridge(
    traces_base: str,
    tmp: pathlib.Path,
    full: bool,
    max_body: int,
    repo: pathlib.Path = REPO,
    pythonpath: pathlib.Path | None = None,
) -> Server:
    """``otel-bridge serve`` from ``repo``; ``pythonpath`` goes first on its module path (an earlier
    checkout's own native encoder build, which the running checkout's may not match)."""
    port = free_port()
    config = tmp / "bench.toml"
    on = "true" if full else "false"
    config.write_text(
        "[mapping]\nrun_end_grace_s = 0.0\n"
        '[otlp]\nschedule_delay_s = 0.1\nmax_queue_spans = 1000000\nqueue_dir = "memory"\n'
        f"[store]\nenabled = {on}\n[metrics]\nenabled = {on}\n[feed]\nenabled = {on}\n"
        f"[ingest]\nmax_body_bytes = {max_body}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = traces_base
    env["OTEL_METRICS_EXPORTER"] = "none"  # this collector takes traces only
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_bridge", "serve", "--port", str(port), "--config", str(config),
         "--log-level", "warning"],
        env=env, cwd=repo,  # python -m runs the package found in cwd first
    )  # fmt: skip

    def delivered(client: httpx.Client) -> int:
        health = client.get(f"http://127.0.0.1:{port}/v1/health").json()
        failed = sum(health["spans_export_failed"].values())
        if failed:
            raise SystemExit(f"otel-bridge export failures: {health}")
        return int(health["spans_exported"].get("otlp", 0))

    return Server(proc, f"http://127.0.0.1:{port}", delivered)


def start_baseline(traces_url: str) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.Popen([sys.executable, str(BASELINE), str(port), traces_url], env=env, cwd=REPO)

    def delivered(client: httpx.Client) -> int:
        health = client.get(f"http://127.0.0.1:{port}/health").json()
        if health["failed"]:
            raise SystemExit(f"baseline export failures: {health}")
        return int(health["exported"])

    return Server(proc, f"http://127.0.0.1:{port}", delivered)


WARMUP_RUNS = 20


def warm_up(server: Server, client: httpx.Client, batch: int = 500) -> int:
    """Wait for ``server`` to answer, then send :data:`WARMUP_RUNS` runs in bodies of ``batch`` events and
    wait until their spans are delivered; returns how many spans that was. Not measured: what a server
    does once (imports on first use, the first connection to the collector) is not a cost per event."""
    for _ in range(600):
        try:
            server.delivered(client)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise SystemExit(f"{server.url} did not start")
    warm_spans = WARMUP_RUNS * WORKLOAD_SPANS_PER_RUN
    post_all(server, client, bodies_of(make_workload(WARMUP_RUNS, prefix="warmup"), batch), warm_spans)
    time.sleep(0.3)  # let startup settle (the worker process, the first sweep)
    return warm_spans


def post_all(server: Server, client: httpx.Client, bodies: list[bytes], delivered: int) -> None:
    """POST every body (each must be accepted: else the wait never ends), then wait until the server has
    delivered ``delivered`` spans in all."""
    for body in bodies:
        r = client.post(server.url + "/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
        if r.status_code != 202:
            raise SystemExit(f"{server.url}: {r.status_code} {r.text[:500]}")
    while server.delivered(client) < delivered:
        time.sleep(0.01)


def measure(server: Server, bodies: list[bytes], n_spans: int, batch: int = 500) -> tuple[float, float]:
    """(CPU seconds of the server's tree, wall seconds) from the first POST to the last span delivered,
    after :func:`warm_up` in bodies of ``batch`` events."""
    try:
        with httpx.Client(timeout=120) as client:
            warm_spans = warm_up(server, client, batch)
            cpu0, wall0 = tree_cpu(server.proc.pid), time.perf_counter()
            post_all(server, client, bodies, warm_spans + n_spans)
            return tree_cpu(server.proc.pid) - cpu0, time.perf_counter() - wall0
    finally:
        server.stop()


def run_bridge(
    endpoint: str, bodies: list[bytes], n_spans: int, tmp: pathlib.Path, with_store: bool, queue_dir: str = "memory"
) -> float:
    """Wall seconds for the earlier bench's sidecar run (bench_faults.py's queue-cost still times it)."""
    port = free_port()
    config = tmp / "bench.toml"
    config.write_text(
        "[mapping]\nrun_end_grace_s = 0.0\nsweep_interval_s = 0.02\n"
        f"[otlp]\nschedule_delay_s = 0.02\nmax_queue_spans = 1000000\nqueue_dir = {json.dumps(queue_dir)}\n"
        f"[store]\nenabled = {'true' if with_store else 'false'}\n"
        f"[metrics]\nenabled = {'true' if with_store else 'false'}\n"
        f"[feed]\nenabled = {'true' if with_store else 'false'}\n"
        f"[ingest]\nmax_body_bytes = {max(len(b) for b in bodies) + 1}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env["OTEL_METRICS_EXPORTER"] = "none"  # this collector takes traces only
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_bridge", "serve", "--port", str(port), "--config", str(config),
         "--log-level", "warning"],
        env=env, cwd=REPO,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(200):
                try:
                    if client.get(base + "/v1/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            start = time.perf_counter()
            for body in bodies:
                r = client.post(base + "/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
                r.raise_for_status()
            while True:
                health = client.get(base + "/v1/health").json()
                done = health["spans_exported"].get("otlp", 0) + sum(health["spans_export_failed"].values())
                if done >= n_spans:
                    break
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
            if any(health["spans_export_failed"].values()):  # the counters exist at 0 from the start
                raise SystemExit(f"export failures: {health}")
            return elapsed
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


# -- --check: the two servers emit the same spans -------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _spans(bodies: list[bytes]) -> list[dict[str, Any]]:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def value(v: dict[str, Any]) -> object:
        ((kind, inner),) = v.items()
        if kind == "arrayValue":
            return tuple(value(x) for x in inner.get("values", []))
        return int(inner) if kind == "intValue" else inner

    def attrs(items: list[dict[str, Any]]) -> dict[str, object]:
        return {a["key"]: value(a["value"]) for a in items}

    raw = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for rs in MessageToDict(request).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                raw.extend(ss.get("spans", []))
    names = {s["spanId"]: s["name"] for s in raw}
    return sorted(
        (
            {
                "name": s["name"],
                "kind": s.get("kind"),
                "parent": names.get(s.get("parentSpanId", "")),
                "start": int(s["startTimeUnixNano"]),
                "end": int(s["endTimeUnixNano"]),
                "attributes": attrs(s.get("attributes", [])),
                "events": [
                    (e["name"], int(e["timeUnixNano"]), attrs(e.get("attributes", []))) for e in s.get("events", [])
                ],
                "links": [names.get(lk["spanId"]) for lk in s.get("links", [])],
            }
            for s in raw
        ),
        key=lambda s: (s["attributes"].get("otel_bridge.run.id", ""), s["start"], s["name"]),
    )


def check(tmp: pathlib.Path, runs: int = 3) -> None:
    events = make_workload(runs)
    bodies = bodies_of(events, 500)
    emitted = []
    for start in (
        lambda url: start_bridge(url, tmp, False, 10_000_000),
        lambda url: start_baseline(url + "/v1/traces"),
    ):
        _Receiver.bodies = []
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        measure(start(f"http://127.0.0.1:{receiver.server_address[1]}"), bodies, runs * WORKLOAD_SPANS_PER_RUN)
        receiver.shutdown()
        emitted.append(_spans(_Receiver.bodies))
    bridge, sdk = emitted
    if bridge != sdk:
        for a, b in zip(bridge, sdk, strict=False):
            if a != b:
                print("otel-bridge:", json.dumps(a, default=str), "\nSDK:        ", json.dumps(b, default=str))
                break
        raise SystemExit(f"the two servers emit different spans ({len(bridge)} vs {len(sdk)})")
    print(f"check: both servers emit the same {len(bridge)} spans for {runs} runs")


# -- the bench ------------------------------------------------------------------------------------


@dataclass
class Config:
    label: str
    bodies: list[bytes]
    events: int
    spans: int
    full: bool
    goal: float
    batch: int
    """Issue 9's goal for the ratio (SDK CPU / otel-bridge CPU)."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--small-runs", type=int, default=500, help="runs for the 1- and 10-event POSTs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="events per POST")
    parser.add_argument(
        "--only", action="append", default=[], help="run the configurations whose label holds this (repeatable)"
    )
    parser.add_argument("--check", action="store_true", help="first check that both servers emit the same spans")
    parser.add_argument(
        "--before", type=pathlib.Path, help="a checkout of an earlier otel-bridge, measured too (interleaved)"
    )
    parser.add_argument(
        "--before-path",
        type=pathlib.Path,
        help="a folder put first on the before checkout's module path (e.g. its own build of otel_bridge_native)",
    )
    args = parser.parse_args()
    big, small = make_workload(args.runs), make_workload(args.small_runs)
    per_run = WORKLOAD_SPANS_PER_RUN
    big_spans, small_spans = args.runs * per_run, args.small_runs * per_run
    n = args.batch
    configs = [
        Config(f"export only, {n} events a POST", bodies_of(big, n), len(big), big_spans, False, 4.0, n),
        Config(f"full sidecar, {n} events a POST", bodies_of(big, n), len(big), big_spans, True, 3.0, n),
        Config("export only, 10 events a POST", bodies_of(small, 10), len(small), small_spans, False, 3.0, 10),
        Config("export only, 1 event a POST", bodies_of(small, 1), len(small), small_spans, False, 2.0, 1),
    ]
    if args.only:
        configs = [c for c in configs if any(w in c.label for w in args.only)]
    # The warm-up's bodies too: its run ids ("warmup-19") can be longer than the workload's ("bench-49").
    warmup = make_workload(WARMUP_RUNS, "warmup")
    max_body = max(len(b) for c in configs for b in [*c.bodies, *bodies_of(warmup, c.batch)]) + 1
    collector = Rotel()
    base = f"http://127.0.0.1:{collector.http}"
    servers = ["bridge", "sdk", *(["before"] if args.before else [])]
    results = {c.label: {key: [] for key in [*servers, "ratio", "ratio_before"]} for c in configs}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = pathlib.Path(tmpdir)
        try:
            if args.check:
                check(tmp)
            for i in range(args.rounds):
                for config in configs:
                    order = servers if i % 2 == 0 else servers[::-1]
                    cpu: dict[str, float] = {}
                    for who in order:
                        if who == "sdk":
                            server = start_baseline(base + "/v1/traces")
                        else:
                            if who == "before":
                                server = start_bridge(base, tmp, config.full, max_body, args.before, args.before_path)
                            else:
                                server = start_bridge(base, tmp, config.full, max_body)
                        cpu[who], _ = measure(server, config.bodies, config.spans, config.batch)
                        results[config.label][who].append(cpu[who] / config.events * 1e6)
                    results[config.label]["ratio"].append(cpu["sdk"] / cpu["bridge"])
                    if "before" in cpu:
                        results[config.label]["ratio_before"].append(cpu["sdk"] / cpu["before"])
                    print(
                        f"round {i + 1} {config.label}: "
                        + ", ".join(f"{who} {cpu[who] / config.events * 1e6:.1f} us/event" for who in order)
                        + f", ratio {cpu['sdk'] / cpu['bridge']:.2f}x",
                        flush=True,
                    )
        finally:
            collector.stop()
    if not args.rounds:
        return
    print(
        f"\n{args.runs} runs x {EVENTS_PER_RUN} events ({args.small_runs} runs for 10 and 1 a POST), {args.rounds} "
        "interleaved rounds; CPU us per event of each server's process tree: median (min-max)\n"
    )

    def spread(xs: list[float], fmt: str) -> str:
        return f"{statistics.median(xs):{fmt}} ({min(xs):{fmt}}-{max(xs):{fmt}})" if xs else "-"

    print("| configuration | otel-bridge | SDK baseline | ratio (SDK / otel-bridge) | goal | before | ratio before |")
    print("|---|---|---|---|---|---|---|")
    for config in configs:
        r = results[config.label]
        met = "met" if statistics.median(r["ratio"]) >= config.goal else "not met"
        print(
            f"| {config.label} | {spread(r['bridge'], '.1f')} | {spread(r['sdk'], '.1f')} "
            f"| **{spread(r['ratio'], '.2f')}x** | >= {config.goal:g}x: {met} "
            f"| {spread(r.get('before', []), '.1f')} | {spread(r['ratio_before'], '.2f')}x |"
        )


if __name__ == "__main__":
    main()
