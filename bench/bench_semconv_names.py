"""What the GenAI conventions' naming costs: v1.41.0 names (the default) and v0.1.0 names
(``gen_ai_latest_experimental``), and the default against a tree from before the naming table.

Each measurement is one fresh process (``--worker``) that decodes bench_pipeline.py's canonical
events (with cache token counts on every call, so the renamed attribute is written) and then,
timed, submits them to an assembled pipeline with the naming's consumers on: the mapper (span
attributes), the GenAI metrics sink and the live feed (records encoded and framed); no store,
no export. CPU seconds of that process over the submit, per event. Configurations alternate
round by round; medians are printed. ``--baseline DIR``: a directory holding another checkout's
``otel_bridge`` package (``git archive <commit> otel_bridge | tar -x -C DIR``), measured with
the default names as ``baseline``.

Usage: python bench/bench_semconv_names.py [--runs 5000] [--rounds 7] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_pipeline import REPO, make_events


def with_cache(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """The bench's events with cache read and cache write counts on every completed call."""
    out = []
    for e in events:
        e = dict(e)
        if e["kind"] == "llm.completed":
            e["usage"] = {**e["usage"], "cache_read": 512, "cache_creation": 128}  # type: ignore[dict-item]
        out.append(e)
    return out


def worker(runs: int, latest: bool) -> None:
    import otel_bridge
    from otel_bridge.assembly import assemble
    from otel_bridge.config import MappingSettings, Settings, StoreSettings
    from otel_bridge.dialects.base import StreamContext
    from otel_bridge.dialects.framing import sniff_text_frames
    from otel_bridge.dialects.stream import StreamDecoder

    text = "\n".join(json.dumps(e) for e in with_cache(make_events(runs)))
    decoder = StreamDecoder(StreamContext(source="bench", stream_key="k"), None, on_reject=lambda *a: None)
    events = decoder.feed(sniff_text_frames(text)) + decoder.close()
    settings = Settings(
        store=StoreSettings(enabled=False), mapping=MappingSettings(run_end_grace_s=0.0, latest_semconv=latest)
    )
    pipeline = assemble(settings, clock=lambda: 0.0, pricer=None)
    t0 = time.process_time()
    for i in range(0, len(events), 500):
        pipeline.bridge.submit(events[i : i + 500])
    pipeline.bridge.close_all("shutdown")
    cpu = time.process_time() - t0
    tree = str(pathlib.Path(otel_bridge.__file__).resolve().parents[1])
    print(json.dumps({"us_per_event": cpu / len(events) * 1e6, "events": len(events), "tree": tree}))


def measure(tree: pathlib.Path, runs: int, latest: bool) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [sys.executable, __file__, "--worker", "latest" if latest else "default", "--runs", str(runs)]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["tree"] == str(tree), f"measured {result['tree']}, not {tree}"
    return float(result["us_per_event"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", type=pathlib.Path)
    parser.add_argument("--worker", choices=("default", "latest"))
    args = parser.parse_args()
    if args.worker:
        worker(args.runs, args.worker == "latest")
        return
    configs: dict[str, tuple[pathlib.Path, bool]] = {"default": (REPO, False), "latest": (REPO, True)}
    if args.baseline is not None:
        configs = {"baseline": (args.baseline.resolve(), False), **configs}
    results: dict[str, list[float]] = {name: [] for name in configs}
    for r in range(args.rounds):
        for name, (tree, latest) in configs.items():
            results[name].append(measure(tree, args.runs, latest))
        print(f"round {r + 1}: " + "  ".join(f"{n}={v[-1]:.2f}" for n, v in results.items()), flush=True)
    print(f"runs={args.runs} ({args.runs * 8} events) rounds={args.rounds}; CPU us/event, median (min):")
    for name, values in results.items():
        print(f"{name:9} {statistics.median(values):6.2f}  ({min(values):.2f})")


if __name__ == "__main__":
    main()
