"""OTLP span encoding: CPU microseconds per span, for each encoder, on realistic span records.

The spans are what the sidecar really exports: bench_pipeline's workload (run, two chat
calls, one tool call per run) mapped in process through the real pipeline, plus every
golden capture under tests/fixtures replayed the same way (content capture on for the
ones that ask for it). Each encoder turns the same spans into one ``ExportTraceServiceRequest``
per batch of 512 spans; rounds are interleaved and the figure is CPU time (``process_time``)
per span, median and spread over the rounds.

Encoders:

- ``pure``: ``otel_bridge.sinks.otlp_proto`` with the native extension switched off (the reference,
  unchanged by this work: the encoder before it);
- ``pure-lean``: a leaner pure-Python rewrite with the same bytes (``bench/encoder_lean.py``), measured
  and not adopted;
- ``native``: the same with ``otel_bridge_native`` (skipped with a note when it is not built);
- ``msgpack encode``, ``msgpack hop``: what the worker pipe costs per span without the native
  encoder (msgpack encode in the sidecar; that and the decode in the worker), for scale.

With ``--pipeline``: the real ``otel-bridge serve`` (export only: store, metrics and feed off) fed
bench_pipeline's events over HTTP and exporting to a real rotel collector, once with
``OTEL_BRIDGE_OTLP_ENCODER=pure`` (msgpack across the pipe, the worker encodes: the path as it was)
once with ``native`` (the sidecar encodes, OTLP bytes across the pipe) and once as ``native-hop`` (the
native encoder in the worker, records still crossing as msgpack: the hop alone), alternating; the figure
is CPU seconds of the sidecar's whole process tree (it and its export worker, from /proc) from the
first POST to the last span exported, per event.

With ``--instructions``: instructions per span of the native span encoder alone
(``otel_bridge_native.encode_span_fields``, C-API calls included), counted by valgrind's cachegrind:
this script runs itself under it twice, encoding the same spans ``passes`` and ``3 * passes`` times
in batches of ``--batch`` (4: about what the sidecar hands the export worker at 10 events a POST),
and the difference, divided by the extra spans encoded, is the figure (start-up and mapping cancel out).

``--other-build PATH``: also measure another build of the extension (its shared library, e.g. one built
from an earlier commit with ``cargo build --release`` in ``native/``), loaded from PATH beside the installed
one: as ``native (other)`` in the per-span rounds, or instead of the installed one with ``--instructions``.

Usage: python bench/bench_encoder.py [--rounds 9] [--runs 2000] [--pipeline | --instructions [--batch 4]]
       [--other-build PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, Settings, StoreSettings
from otel_bridge.model import SpanRecord
from otel_bridge.pipeline import ListSink
from otel_bridge.sinks import otlp_proto
from otel_bridge.sources.replay import replay_files

REPO = Path(__file__).resolve().parents[1]
BATCH = 512
RESOURCE = {sc.SERVICE_NAME: "bench", "host.name": "h"}


def workload_spans(runs: int, tmp: Path) -> list[SpanRecord]:
    """bench_pipeline's events, mapped through the real pipeline."""
    sys.path.insert(0, str(REPO / "bench"))
    from bench_pipeline import make_events

    path = tmp / "events.ndjson"
    path.write_bytes(b"\n".join(msgspec.json.encode(e) for e in make_events(runs)))
    return _replay([path], content=False)


def fixture_spans() -> list[SpanRecord]:
    """Every golden capture, replayed with content capture on (bigger strings, span events)."""
    captures = sorted(
        p
        for p in (REPO / "tests" / "fixtures").rglob("*")
        if p.suffix in (".sse", ".json", ".ndjson", ".jsonl")
        and not p.name.endswith((".expected.json", ".options.json"))
    )
    return _replay(captures, content=True)


def _replay(paths: Sequence[Path], content: bool) -> list[SpanRecord]:
    settings = Settings(
        store=StoreSettings(enabled=False),
        mapping=MappingSettings(capture_content=content, content_events=content),
    )
    sink = ListSink()
    bridge = assemble(settings, clock=lambda: 0.0, extra_sinks=[sink], pricer=None).bridge
    for path in paths:
        replay_files(bridge, [path], clock_ns=iter(range(1_800_000_000_000_000_000, 2**62, 1_000_000)).__next__)
    return sink.spans


def cpu_per_span(encode: Callable[[Sequence[SpanRecord]], object], spans: list[SpanRecord], repeat: int) -> float:
    batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
    start = time.process_time()
    for _ in range(repeat):
        for batch in batches:
            encode(batch)
    return (time.process_time() - start) / (repeat * len(spans)) * 1e6


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=2000, help="bench_pipeline runs to map (4 spans each)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the spans per round")
    parser.add_argument("--pipeline", action="store_true", help="the sidecar's process tree, pure vs native")
    parser.add_argument("--instructions", action="store_true", help="native: instructions per span (cachegrind)")
    parser.add_argument("--batch", type=int, default=4, help="with --instructions: spans per call")
    parser.add_argument("--corpus", choices=("workload", "fixtures"), default="workload")
    parser.add_argument("--other-build", help="another build of otel_bridge_native (its .so) to measure too")
    parser.add_argument("--passes", type=int, default=0, help=argparse.SUPPRESS)  # the run under cachegrind
    args = parser.parse_args()
    if args.pipeline:
        pipeline(args.runs, args.rounds)
        return
    if args.passes:
        encode_passes(args.corpus, args.runs, args.batch, args.passes, args.other_build)
        return
    if args.instructions:
        instructions(args.corpus, args.runs, args.batch, args.other_build)
        return
    with tempfile.TemporaryDirectory() as tmp:
        corpora = {"workload": workload_spans(args.runs, Path(tmp)), "fixtures": fixture_spans()}

    sys.path.insert(0, str(REPO / "bench"))
    import encoder_lean

    old = otlp_proto.ProtoEncoder(RESOURCE, "otel-bridge", "0", sc.SCHEMA_URL, native=False)
    res, scope = otlp_proto.encode_resource(RESOURCE), otlp_proto.encode_scope("otel-bridge", "0")

    def lean(batch: Sequence[SpanRecord]) -> bytes:
        return otlp_proto.encode_request_fields(res, scope, encoder_lean.span_fields(list(batch)), sc.SCHEMA_URL)

    encoders: dict[str, Callable[[Sequence[SpanRecord]], object]] = {"pure": old.encode, "pure-lean": lean}
    if otlp_proto.native_available():
        encoders["native"] = otlp_proto.ProtoEncoder(RESOURCE, "otel-bridge", "0", sc.SCHEMA_URL, native=True).encode
    else:
        print(f"native: not measured ({otlp_proto.native_unavailable_reason()})")
    if args.other_build:
        other_fields = load_build(args.other_build).encode_span_fields

        def other(batch: Sequence[SpanRecord]) -> bytes:
            fields = other_fields(batch, otlp_proto.StatusCode.UNSET, otlp_proto.encode_span)
            return otlp_proto.encode_request_fields(res, scope, fields, sc.SCHEMA_URL)

        encoders["native (other)"] = other
    pack = msgspec.msgpack.Encoder().encode
    unpack = msgspec.msgpack.Decoder(list[SpanRecord]).decode
    encoders["msgpack encode"] = pack  # the sidecar's half of the hop
    encoders["msgpack hop"] = lambda batch: unpack(pack(batch))

    for corpus, spans in corpora.items():
        for name, encode in encoders.items():  # identical output first: a bench of wrong bytes is worthless
            if not name.startswith(("pure", "msgpack")) or name == "pure-lean":
                assert encode(spans) == old.encode(spans), f"{name} differs from pure"
        results: dict[str, list[float]] = {name: [] for name in encoders}
        for _ in range(args.rounds):
            for name, encode in encoders.items():
                results[name].append(cpu_per_span(encode, spans, args.repeat))
        print(f"\n{corpus}: {len(spans)} spans, batches of {BATCH}, {args.rounds} interleaved rounds")
        base = statistics.median(results["pure"])
        for name, values in results.items():
            med = statistics.median(values)
            print(
                f"  {name:14s} {med:6.2f} us/span CPU (min {min(values):.2f}, max {max(values):.2f})"
                f"   {base / med:5.2f}x pure"
            )


# --- instructions per span of the native encoder (cachegrind) -------------------------------------


def load_build(path: str) -> ModuleType:
    """Another build of ``otel_bridge_native``, from its shared library, beside the installed one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("otel_bridge_native", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a loadable extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def encode_passes(corpus: str, runs: int, batch: int, passes: int, other: str | None) -> None:
    """The body run under cachegrind: map the spans, then encode them ``passes`` times."""
    import tempfile

    import otel_bridge_native

    native = load_build(other) if other else otel_bridge_native
    with tempfile.TemporaryDirectory() as tmp:
        spans = workload_spans(runs, Path(tmp)) if corpus == "workload" else fixture_spans()
    batches = [spans[i : i + batch] for i in range(0, len(spans), batch)]
    fields, unset, fallback = native.encode_span_fields, otlp_proto.StatusCode.UNSET, otlp_proto.encode_span
    for b in batches:  # the same bytes as the reference, or the count is of the wrong work
        assert fields(b, unset, fallback) == otlp_proto.encode_span_fields(b)
    for _ in range(passes):
        for b in batches:
            fields(b, unset, fallback)
    print(f"spans={len(spans)}")


def instructions(corpus: str, runs: int, batch: int, other: str | None) -> None:
    import os
    import re
    import shutil
    import subprocess

    if not otlp_proto.native_available():
        raise SystemExit(f"native: not measured ({otlp_proto.native_unavailable_reason()})")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    counts, spans = [], 0
    passes = (2, 6)
    for p in passes:
        out = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", sys.executable,
             __file__, "--corpus", corpus, "--runs", str(runs), "--batch", str(batch), "--passes", str(p),
             *(["--other-build", other] if other else [])],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
        refs = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
        assert refs is not None, out.stderr
        counts.append(int(refs.group(1).replace(",", "")))
        spans = int(out.stdout.split("spans=")[1])
    per_span = (counts[1] - counts[0]) / ((passes[1] - passes[0]) * spans)
    build = other or "installed"
    print(f"native ({build}), {corpus} ({spans} spans), batches of {batch}: {per_span:,.0f} instructions/span")


# --- the whole pipeline: CPU of the sidecar's process tree per event, pure vs native ---------------


def _tree_cpu_s(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of ``pid`` itself, and of every live descendant (the export worker)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    main, rest, stack = 0.0, 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick
            if p == pid:
                main += cpu
            else:
                rest += cpu
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return main, rest


def _idle_cpu_s(pid: int) -> tuple[float, float]:
    """The tree's CPU once it has settled: both processes started and idle (under 20 ms in 300 ms)."""
    before = _tree_cpu_s(pid)
    for _ in range(60):
        time.sleep(0.3)
        now = _tree_cpu_s(pid)
        if sum(now) - sum(before) < 0.02:
            return now
        before = now
    raise SystemExit("the sidecar did not settle")


SERVE = "import sys\nfrom otel_bridge.cli import main\nsys.exit(main())\n"
# The native encoder in the worker, with records still crossing as msgpack: the hop measured alone.
NATIVE_HOP = (
    "from otel_bridge.sinks.export import process\n"
    "init = process.WorkerPipe.__init__\n"
    "def records_only(self, *args, **kwargs):\n"
    "    init(self, *args, **kwargs)\n"
    "    self._span_fields = None\n"
    "process.WorkerPipe.__init__ = records_only\n" + SERVE
)


def pipeline_round(encoder: str, bodies: list[bytes], n_spans: int, endpoint: str, tmp: Path) -> tuple[float, float]:
    """CPU seconds of the sidecar and of its worker from the first POST to the last span exported."""
    import json
    import os
    import signal
    import subprocess

    import httpx
    from bench_pipeline import free_port

    port = free_port()
    config = tmp / "bench.toml"
    config.write_text(
        "[mapping]\nrun_end_grace_s = 0.0\nsweep_interval_s = 0.02\n"
        '[otlp]\nschedule_delay_s = 0.02\nmax_queue_spans = 1000000\nqueue_dir = "memory"\n'
        "[store]\nenabled = false\n[metrics]\nenabled = false\n[feed]\nenabled = false\n"
        f"[ingest]\nmax_body_bytes = {max(len(b) for b in bodies) + 1}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_METRICS_EXPORTER": "none"}
    env[otlp_proto.ENCODER_ENV] = "native" if encoder == "native-hop" else encoder
    code = NATIVE_HOP if encoder == "native-hop" else SERVE
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port), "--config", str(config)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(400):
                try:
                    if client.get(base + "/v1/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            cpu0 = _idle_cpu_s(proc.pid)  # the worker's start-up (imports) is not part of the load
            for body in bodies:
                client.post(base + "/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
            while True:
                health = client.get(base + "/v1/health").json()
                if health["spans_exported"].get("otlp", 0) + sum(health["spans_export_failed"].values()) >= n_spans:
                    break
                time.sleep(0.02)
            main, rest = _tree_cpu_s(proc.pid)
            if any(health["spans_export_failed"].values()):
                raise SystemExit(f"export failures: {json.dumps(health)}")
            return main - cpu0[0], rest - cpu0[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def pipeline(runs: int, rounds: int) -> None:
    import tempfile

    sys.path.insert(0, str(REPO / "bench"))
    from bench_pipeline import SPANS_PER_RUN, Rotel, make_events

    events = make_events(runs)
    lines = [msgspec.json.encode(e) for e in events]
    bodies = [b"\n".join(lines[i : i + 500]) for i in range(0, len(lines), 500)]
    encoders = ["pure", "native-hop", "native"] if otlp_proto.native_available() else ["pure"]
    results: dict[str, list[float]] = {e: [] for e in encoders}
    sidecar: dict[str, list[float]] = {e: [] for e in encoders}
    collector = Rotel()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(rounds):
                for encoder in encoders if i % 2 == 0 else encoders[::-1]:
                    main, rest = pipeline_round(
                        encoder, bodies, runs * SPANS_PER_RUN, f"http://127.0.0.1:{collector.http}", Path(tmp)
                    )
                    results[encoder].append((main + rest) / len(events) * 1e6)
                    sidecar[encoder].append(main / len(events) * 1e6)
                    print(
                        f"round {i + 1} {encoder:10s}: {results[encoder][-1]:.1f} us CPU per event (process tree;"
                        f" the sidecar process {sidecar[encoder][-1]:.1f})"
                    )
    finally:
        collector.stop()
    print(f"\n{len(events)} events ({runs} runs, {runs * SPANS_PER_RUN} spans), NDJSON batches of 500, {rounds} rounds")
    for encoder, values in results.items():
        worker = [total - main for total, main in zip(values, sidecar[encoder], strict=True)]
        print(
            f"  {encoder:10s} {statistics.median(values):6.1f} us CPU/event"
            f" (min {min(values):.1f}, max {max(values):.1f}); the sidecar process alone"
            f" {statistics.median(sidecar[encoder]):.1f}, the export worker {statistics.median(worker):.1f}"
        )


if __name__ == "__main__":
    main()
