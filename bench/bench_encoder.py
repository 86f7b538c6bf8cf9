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
- ``msgpack hop``: what the worker pipe cost per span before (msgpack encode in the sidecar,
  decode in the worker), for scale.

Usage: python -m bench.bench_encoder [--rounds 9] [--runs 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

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
    args = parser.parse_args()
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
    pack = msgspec.msgpack.Encoder().encode
    unpack = msgspec.msgpack.Decoder(list[SpanRecord]).decode
    encoders["msgpack hop"] = lambda batch: unpack(pack(batch))

    for corpus, spans in corpora.items():
        for name, encode in encoders.items():  # identical output first: a bench of wrong bytes is worthless
            if name not in ("pure", "msgpack hop"):
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
                f"  {name:12s} {med:6.2f} us/span CPU (min {min(values):.2f}, max {max(values):.2f})"
                f"   {base / med:5.2f}x pure"
            )


if __name__ == "__main__":
    main()
