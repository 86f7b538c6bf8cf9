"""Pipeline throughput: otel-bridge (HTTP batch ingest -> OTLP export) vs an OpenTelemetry SDK baseline.

Both push the same event load to the same real rotel collector (blackhole
exporter) in one run, interleaved over several rounds; the medians and their
ratio are printed. The machine is shared and noisy: read the ratio.

(a) otel-bridge: the real `otel-bridge serve` process; this script POSTs the
    events as NDJSON batches and waits until /v1/health says every span was
    exported over OTLP/HTTP.
(b) baseline: a separate process decodes the same JSON and builds the same
    spans with the SDK's Tracer, BatchSpanProcessor and OTLPSpanExporter
    (OTLP/HTTP), then force-flushes.

Usage: python bench/bench_pipeline.py [--runs 2500] [--rounds 3] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
import rotel

REPO = pathlib.Path(__file__).resolve().parents[1]
ROTEL = pathlib.Path(rotel.__file__).parent / "rotel-agent"
EVENTS_PER_RUN = 8
SPANS_PER_RUN = 4


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


BASELINE = r"""
import json, sys, time
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

endpoint, path = sys.argv[1], sys.argv[2]
lines = open(path, "rb").read().splitlines()
provider = TracerProvider(resource=Resource.create({"service.name": "baseline"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), max_queue_size=1_000_000,
                                               max_export_batch_size=512, schedule_delay_millis=100))
tracer = provider.get_tracer("baseline")
start = time.perf_counter()
runs, calls = {}, {}
for line in lines:
    e = json.loads(line)
    kind, run = e["kind"], e["run_id"]
    if kind == "run.started":
        runs[run] = tracer.start_span(f"invoke_agent {e['agent']}", start_time=e["timestamp"],
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": e["agent"],
                        "otel_bridge.run.id": run, "otel_bridge.dialect": "generic"})
    elif kind == "llm.started":
        ctx = trace.set_span_in_context(runs[run])
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": e["provider"],
                 "gen_ai.request.model": e["model"], "otel_bridge.call.id": e["call_id"],
                 "otel_bridge.dialect": "generic"}
        if e.get("stream"):
            attrs["gen_ai.request.stream"] = True
        if "temperature" in e:
            attrs["gen_ai.request.temperature"] = e["temperature"]
        calls[e["call_id"]] = tracer.start_span(f"chat {e['model']}", context=ctx, kind=trace.SpanKind.CLIENT,
                                                start_time=e["timestamp"], attributes=attrs)
    elif kind == "llm.completed":
        span = calls.pop(e["call_id"])
        span.set_attributes({"gen_ai.response.model": e["model"], "gen_ai.response.finish_reasons": e["finish_reasons"],
                             "gen_ai.usage.input_tokens": e["usage"]["input"],
                             "gen_ai.usage.output_tokens": e["usage"]["output"]})
        if "response_id" in e:
            span.set_attribute("gen_ai.response.id", e["response_id"])
        span.end(end_time=e["timestamp"])
    elif kind == "tool.started":
        ctx = trace.set_span_in_context(runs[run])
        calls[e["call_id"]] = tracer.start_span(f"execute_tool {e['tool_name']}", context=ctx,
            start_time=e["timestamp"], attributes={"gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": e["tool_name"], "gen_ai.tool.call.id": e["call_id"], "gen_ai.tool.type": "function",
            "otel_bridge.dialect": "generic"})
    elif kind == "tool.completed":
        calls.pop(e["call_id"]).end(end_time=e["timestamp"])
    elif kind == "run.finished":
        span = runs.pop(run)
        span.add_event("status", {"otel_bridge.status": e["status"]}, timestamp=e["timestamp"])
        span.end(end_time=e["timestamp"])
provider.force_flush(120_000)
elapsed = time.perf_counter() - start
provider.shutdown()
print(json.dumps({"events": len(lines), "elapsed": elapsed}))
"""


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


def run_bridge(
    endpoint: str, bodies: list[bytes], n_spans: int, tmp: pathlib.Path, with_store: bool, queue_dir: str = "memory"
) -> float:
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


# The same GC tuning `otel-bridge serve` applies to itself, for a like-for-like second baseline.
GC_TUNING = "import gc\ngc.collect()\ngc.freeze()\ngc.set_threshold(50_000, 20, 20)\n"


def run_baseline(endpoint: str, ndjson: pathlib.Path, tuned_gc: bool = False) -> float:
    code = (GC_TUNING if tuned_gc else "") + BASELINE
    out = subprocess.run([sys.executable, "-c", code, endpoint, str(ndjson)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["elapsed"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="events per POST")
    args = parser.parse_args()
    events = make_events(args.runs)
    lines = [json.dumps(e).encode() for e in events]
    bodies = [b"\n".join(lines[i : i + args.batch]) for i in range(0, len(lines), args.batch)]
    n_events, n_spans = len(events), args.runs * SPANS_PER_RUN
    collector = Rotel()
    base = f"http://127.0.0.1:{collector.http}"
    bridge_rates, baseline_rates, full_rates, tuned_rates = [], [], [], []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = pathlib.Path(tmpdir)
        ndjson = tmp / "events.ndjson"
        ndjson.write_bytes(b"\n".join(lines))
        try:
            for i in range(args.rounds):
                b = run_bridge(base, bodies, n_spans, tmp, with_store=False)  # OTEL_EXPORTER_OTLP_ENDPOINT: base URL
                s = run_baseline(base + "/v1/traces", ndjson)  # the SDK exporter's endpoint= is the full URL
                f = run_bridge(base, bodies, n_spans, tmp, with_store=True)
                g = run_baseline(base + "/v1/traces", ndjson, tuned_gc=True)
                bridge_rates.append(n_events / b)
                baseline_rates.append(n_events / s)
                full_rates.append(n_events / f)
                tuned_rates.append(n_events / g)
                print(
                    f"round {i + 1}: otel-bridge {n_events / b:,.0f} ev/s   SDK baseline {n_events / s:,.0f} ev/s   "
                    f"full sidecar {n_events / f:,.0f} ev/s   SDK baseline, GC tuned {n_events / g:,.0f} ev/s"
                )
        finally:
            collector.stop()
    b_med, s_med = statistics.median(bridge_rates), statistics.median(baseline_rates)
    print(f"events={n_events} spans={n_spans} batch={args.batch} rounds={args.rounds}")
    print(f"otel-bridge (HTTP ingest -> OTLP/HTTP export): {b_med:,.0f} events/s (median)")
    print(f"SDK baseline (Tracer + BatchSpanProcessor + OTLPSpanExporter): {s_med:,.0f} events/s (median)")
    f_med = statistics.median(full_rates)
    print(f"otel-bridge, full sidecar (embedded store, metrics, live feed on): {f_med:,.0f} events/s (median)")
    g_med = statistics.median(tuned_rates)
    print(f"SDK baseline with the sidecar's GC tuning: {g_med:,.0f} events/s (median)")
    print(
        f"ratio: {b_med / s_med:.2f}x (full sidecar: {f_med / s_med:.2f}x; "
        f"against the GC-tuned SDK: {b_med / g_med:.2f}x)"
    )


if __name__ == "__main__":
    main()
