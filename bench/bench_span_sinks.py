"""The span sinks' cost per span: GenAiMetrics.consume and TraceStore.consume, against an earlier checkout.

The spans are what the sidecar really emits: bench_pipeline's workload mapped through the real
pipeline (bench_encoder.workload_spans). Each round feeds all of them, in batches as the mapper
hands them over (500), to a fresh sink of each version; rounds alternate the order. With
``--before PATH`` the same sinks are loaded from another checkout's ``otel_bridge/sinks`` (a
worktree of main, say) and measured interleaved; the figure is CPU time (``process_time``) per
span, median and spread over the rounds.

Usage: python bench/bench_span_sinks.py [--rounds 15] [--runs 2000] [--before ../main]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from otel_bridge.config import MetricsSettings, StoreSettings
from otel_bridge.model import SpanRecord
from otel_bridge.sinks import metrics, store
from otel_bridge.stats import Stats

REPO = Path(__file__).resolve().parents[1]
BATCH = 500


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def cpu_per_span(make: Callable[[], Callable[[Sequence[SpanRecord]], None]], spans: list[SpanRecord]) -> float:
    consume = make()
    cpu0 = time.process_time()
    for i in range(0, len(spans), BATCH):
        consume(spans[i : i + BATCH])
    return (time.process_time() - cpu0) / len(spans) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--before", type=Path, help="a checkout of an earlier otel-bridge, measured interleaved")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    import bench_encoder

    with tempfile.TemporaryDirectory() as tmp:
        spans = bench_encoder.workload_spans(args.runs, Path(tmp))
    versions: dict[str, tuple[ModuleType, ModuleType]] = {"now": (metrics, store)}
    if args.before is not None:
        sinks = args.before / "otel_bridge" / "sinks"
        versions["before"] = (load(sinks / "metrics.py", "before_metrics"), load(sinks / "store.py", "before_store"))
    sinks_of: dict[str, Callable[[tuple[ModuleType, ModuleType]], Callable[[Sequence[SpanRecord]], None]]] = {
        "metrics": lambda m: m[0].GenAiMetrics(MetricsSettings(), Stats()).consume,
        # max_traces above the workload's runs: no eviction, the consume path alone
        "store": lambda m: m[1].TraceStore(StoreSettings(max_traces=100_000, max_spans=10**7), Stats()).consume,
    }
    results = {(sink, v): [] for sink in sinks_of for v in versions}
    for i in range(args.rounds):
        order = list(versions) if i % 2 == 0 else list(versions)[::-1]
        for sink, make in sinks_of.items():
            for v in order:
                results[sink, v].append(cpu_per_span(lambda make=make, v=v: make(versions[v]), spans))
    print(f"{len(spans)} spans, {args.rounds} interleaved rounds; CPU us per span, median (min-max)")
    for sink in sinks_of:
        line = f"  {sink:8}"
        for v in versions:
            xs = results[sink, v]
            line += f"  {v} {statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"
        if "before" in versions:
            ratio = [b / n for b, n in zip(results[sink, "before"], results[sink, "now"], strict=True)]
            line += f"  before/now {statistics.median(ratio):.2f}x ({min(ratio):.2f}-{max(ratio):.2f})"
        print(line)


if __name__ == "__main__":
    main()
