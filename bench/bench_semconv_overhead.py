"""What OpenInference output and redaction cost on the pipeline benchmark's load (bench/bench_pipeline.py).

The same 80,000 canonical events (10,000 runs of 8; 40,000 spans) go to the real
`otel-bridge serve` process exporting over OTLP/HTTP to a real rotel collector, as in
bench_pipeline.py, with content capture on (so both features have work: chat answers
and tool arguments, ~100 bytes each, and every event's original payload). Four
configurations alternate round by round: neither, redaction only (the built-in secret
detectors: the default), OpenInference only, both. Per configuration: the CPU seconds
of the sidecar's process tree (the sidecar and its export worker, from the bench's
RUSAGE_CHILDREN once the sidecar has exited; startup included, the same for all) and the
wall-clock event rate. Medians; read the differences, the machine is shared.

`--in-process` measures the stages alone instead, in this process (CPU time, interleaved,
best of the rounds): decoding the same NDJSON, redacting the decoded events, mapping them, and
adding the OpenInference attributes to the mapped spans.

Usage: python bench/bench_semconv_overhead.py [--runs 10000] [--rounds 5] [--batch 500] [--in-process]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_pipeline import REPO, SPANS_PER_RUN, Rotel, free_port, make_events

CONFIGS = {
    "neither": "[redaction]\nsecrets = false\n[semconv]\nopeninference = false\n",
    "redaction": "[redaction]\nsecrets = true\n[semconv]\nopeninference = false\n",
    "openinference": "[redaction]\nsecrets = false\n[semconv]\nopeninference = true\n",
    "both": "[redaction]\nsecrets = true\n[semconv]\nopeninference = true\n",
}


def with_content(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """The bench's events with an answer on each chat completion and arguments on each tool call."""
    out = []
    for e in events:
        e = dict(e)
        if e["kind"] == "llm.completed":
            e["text"] = "The weather in Lisbon is 18C and sunny; no umbrella is needed today, see the forecast."
        elif e["kind"] == "tool.started":
            e["arguments"] = json.dumps({"city": "Lisbon", "units": "metric", "days": 3, "lang": "en-GB"})
        out.append(e)
    return out


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_bridge(endpoint: str, bodies: list[bytes], n_spans: int, tmp: pathlib.Path, extra: str) -> tuple[float, float]:
    """(wall seconds from the first POST to the last span exported, CPU seconds of the sidecar's process tree)."""
    port = free_port()
    config = tmp / "bench.toml"
    config.write_text(
        "[mapping]\nrun_end_grace_s = 0.0\nsweep_interval_s = 0.02\ncapture_content = true\n"
        "[otlp]\nschedule_delay_s = 0.02\nmax_queue_spans = 1000000\n"
        "[store]\nenabled = false\n[metrics]\nenabled = false\n[feed]\nenabled = false\n"
        f"[ingest]\nmax_body_bytes = {max(len(b) for b in bodies) + 1}\n" + extra
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env["OTEL_METRICS_EXPORTER"] = "none"
    cpu0 = children_cpu()
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_bridge", "serve", "--port", str(port), "--config", str(config),
         "--log-level", "warning"],
        env=env, cwd=REPO,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(400):
                try:
                    if client.get(base + "/v1/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            start = time.perf_counter()
            for body in bodies:
                client.post(base + "/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
            while True:
                health = client.get(base + "/v1/health").json()
                done = health["spans_exported"].get("otlp", 0) + sum(health["spans_export_failed"].values())
                if done >= n_spans:
                    break
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
            if sum(health["spans_export_failed"].values()):
                raise SystemExit(f"export failures: {health}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return elapsed, children_cpu() - cpu0


def in_process(runs: int, rounds: int) -> None:
    """CPU microseconds per event (decode, redaction, mapping) and per span (OpenInference), best of ``rounds``."""
    from collections import Counter

    from otel_bridge.config import MappingSettings, RedactionSettings
    from otel_bridge.dialects.base import StreamContext
    from otel_bridge.dialects.framing import sniff_text_frames
    from otel_bridge.dialects.stream import StreamDecoder
    from otel_bridge.mapping.lifecycle import SpanMapper
    from otel_bridge.mapping.openinference import with_openinference
    from otel_bridge.mapping.redaction import Redactor
    from otel_bridge.pipeline import ListSink
    from otel_bridge.stats import Stats

    text = "\n".join(json.dumps(e) for e in with_content(make_events(runs)))

    def decode() -> list:  # type: ignore[type-arg]
        decoder = StreamDecoder(StreamContext(source="bench", stream_key="k"), None, on_reject=lambda *a: None)
        return decoder.feed(sniff_text_frames(text)) + decoder.close()

    events = decode()
    redactor = Redactor(RedactionSettings(), Counter())

    def mapped() -> list:  # type: ignore[type-arg]
        sink = ListSink()
        mapper = SpanMapper(MappingSettings(capture_content=True, run_end_grace_s=0.0), sink, Stats())
        mapper.process(events)
        mapper.close_all()
        return sink.spans

    spans = mapped()
    stages = {
        "decode": (decode, len(events)),
        "redaction": (lambda: redactor.events(events), len(events)),
        "mapping": (mapped, len(events)),
        "openinference": (lambda: [with_openinference(s) for s in spans], len(spans)),
    }
    best: dict[str, float] = dict.fromkeys(stages, float("inf"))
    for _ in range(rounds):
        for name, (fn, n) in stages.items():
            t0 = time.process_time()
            fn()
            best[name] = min(best[name], (time.process_time() - t0) / n * 1e6)
    print(f"events={len(events)} spans={len(spans)} rounds={rounds}, CPU, best round:")
    for name in stages:
        unit = "span" if name == "openinference" else "event"
        print(f"{name:14} {best[name]:6.2f} us/{unit}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--in-process", action="store_true", help="the stages alone, in this process")
    args = parser.parse_args()
    if args.in_process:
        in_process(args.runs, args.rounds)
        return
    events = with_content(make_events(args.runs))
    lines = [json.dumps(e).encode() for e in events]
    bodies = [b"\n".join(lines[i : i + args.batch]) for i in range(0, len(lines), args.batch)]
    n_events, n_spans = len(events), args.runs * SPANS_PER_RUN
    collector = Rotel()
    base = f"http://127.0.0.1:{collector.http}"
    cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    rate: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmpdir:
        try:
            for i in range(args.rounds):
                order = list(CONFIGS) if i % 2 == 0 else list(reversed(CONFIGS))
                for name in order:
                    wall, seconds = run_bridge(base, bodies, n_spans, pathlib.Path(tmpdir), CONFIGS[name])
                    cpu[name].append(seconds)
                    rate[name].append(n_events / wall)
                print(f"round {i + 1}: " + "  ".join(f"{n} {cpu[n][-1]:.2f} s CPU" for n in CONFIGS), flush=True)
        finally:
            collector.stop()
    base_cpu = statistics.median(cpu["neither"])
    print(f"events={n_events} spans={n_spans} rounds={args.rounds} (content captured in every configuration)")
    for name in CONFIGS:
        c = statistics.median(cpu[name])
        print(
            f"{name:14} CPU {c:6.2f} s (min {min(cpu[name]):.2f}, max {max(cpu[name]):.2f})  "
            f"{(c - base_cpu) / n_events * 1e6:+6.2f} us/event vs neither  "
            f"{statistics.median(rate[name]):8,.0f} events/s"
        )


if __name__ == "__main__":
    main()
