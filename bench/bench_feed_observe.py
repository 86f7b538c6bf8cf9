"""What the live feed costs the ingest path with nobody subscribed: ``Feed.observe`` CPU per event.

The workload is bench_pipeline's (runs of 16 events: a run, 3 LLM calls, 2 tools, progress,
messages), decoded and mapped once by a real pipeline (so each event has its placement),
then published into a fresh feed built as ``serve`` builds it (both UI forms, the default
ring) in batches of ``--batch`` events; ``/v1/health``'s ``Feed.snapshot`` is timed too
(the benchmarks poll it). Process CPU seconds per event, median (min-max) of ``--rounds``.

``--against PATH`` (another checkout of otel-bridge, say the last release) runs the same
measurement in a subprocess from each tree, rounds interleaved, and prints both.

Usage: python bench/bench_feed_observe.py [--runs 2000] [--batch 500] [--rounds 7] [--against PATH]
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

REPO = pathlib.Path(__file__).resolve().parents[1]


def measure(runs: int, batch: int, repeat: int) -> dict[str, float]:
    """CPU µs per event of ``Feed.observe`` and ms of one ``Feed.snapshot``, in the tree on ``sys.path``."""
    sys.path.insert(0, str(REPO / "bench"))
    import bench_pipeline as bp

    from otel_bridge.assembly import assemble, build_feed
    from otel_bridge.config import Settings
    from otel_bridge.sources.http_ingest import decode_body
    from otel_bridge.stats import Stats

    settings = Settings()
    bridge = assemble(settings, pricer=None).bridge
    batches = []
    for body in bp.bodies_of(bp.make_workload(runs), batch):
        placed = bridge.submit(decode_body(body, "application/x-ndjson").events)
        batches.append(([e for e, _ in placed], [p for _, p in placed]))
    events = sum(len(e) for e, _ in batches)
    observe = snapshot = 0.0
    for _ in range(repeat):
        feed = build_feed(settings, Stats())
        started = time.process_time()
        for evs, placements in batches:
            feed.observe(evs, placements)
        observe += time.process_time() - started
        started = time.process_time()
        feed.snapshot()
        snapshot += time.process_time() - started
    return {"observe_us": observe / repeat / events * 1e6, "snapshot_ms": snapshot / repeat * 1e3}


def _spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="feeds published per round")
    parser.add_argument("--against", type=pathlib.Path, help="another checkout, measured interleaved")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.runs, args.batch, args.repeat)))
        return
    trees = {"this": REPO, **({"other": args.against.resolve()} if args.against else {})}
    results: dict[str, dict[str, list[float]]] = {name: {"observe_us": [], "snapshot_ms": []} for name in trees}
    for i in range(args.rounds):
        order = list(trees) if i % 2 == 0 else list(trees)[::-1]
        for name in order:
            tree = trees[name]
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--one", "--runs", str(args.runs)]
            cmd += ["--batch", str(args.batch), "--repeat", str(args.repeat)]
            out = subprocess.run(cmd, env=env, cwd=tree, check=True, capture_output=True, text=True).stdout
            for key, value in json.loads(out.splitlines()[-1]).items():
                results[name][key].append(value)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.runs} runs x 16 events, {args.rounds} rounds")
    for name, tree in trees.items():
        r = results[name]
        print(
            f"{name:>5} ({tree}): Feed.observe {_spread(r['observe_us'])} us/event, "
            f"Feed.snapshot {_spread(r['snapshot_ms'])} ms"
        )


if __name__ == "__main__":
    main()
