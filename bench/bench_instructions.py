"""Instructions per event: the in-process pipeline counted by cachegrind, a figure noise cannot move.

CPU time on a shared 2-core machine moves by 10-30 % between runs, so a change worth 5 %
cannot be told from noise by timing it. Instructions executed can: this runs the sidecar's
ingest path in process (decode, redaction, mapping and the configured sinks, the way
``POST /v1/events`` calls it, with the garbage collector tuned as ``otel-bridge serve``
tunes it) under ``valgrind --tool=cachegrind``, once with the warm-up alone and once with
``--runs`` more runs of bench_pipeline's 16-event workload, and prints the difference per
event. Start-up, imports and the warm-up cancel out; the process leaves with ``os._exit``,
so the interpreter's final collection is not counted either.

What it does not show: the HTTP server, the export worker and the kernel (see
bench_pipeline.py for the whole process tree's CPU), and cache misses (a larger working set
costs time without costing instructions). Read it beside the CPU figures, as the figure that
says whether a change did less work.

Configurations: ``none`` (export only: the store, metrics and feed off), any of ``store``,
``metrics``, ``feed`` joined by commas, and ``full`` (all three, the default sidecar).
``--repo DIR`` counts another checkout of otel-bridge (an earlier commit) the same way.
Needs valgrind (Debian: ``apt-get install valgrind``).

Usage: python bench/bench_instructions.py [--configs none,full] [--batch 500] [--runs 400] [--repo DIR]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import pickle
import re
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
WARMUP_RUNS = 200
EVENTS_PER_RUN = 16
_SINKS = ("store", "metrics", "feed")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _child(repo: str, config: str, bodies_path: str) -> None:
    """The counted process: assemble the pipeline and answer every body, as the inline lane does."""
    sys.path.insert(0, repo)
    import gc

    import msgspec

    from otel_bridge.assembly import assemble
    from otel_bridge.config import Settings
    from otel_bridge.web.ingest import IngestResponder

    with open(bodies_path, "rb") as f:
        bodies: list[bytes] = pickle.load(f)
    on = set(_SINKS) if config == "full" else set(config.split(",")) - {"none"}
    overrides: dict[str, object] = {name: {"enabled": name in on} for name in _SINKS}
    overrides["otlp"] = {"worker_process": False}  # spans are queued; nothing is sent (no drain task runs)
    settings = msgspec.convert(overrides, Settings)
    responder = IngestResponder(assemble(settings).bridge, settings.ingest, None)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)  # as `otel-bridge serve` does (runtime.tune_gc)
    headers = [(b"content-type", b"application/x-ndjson")]
    for body in bodies:
        status, _, answer = responder.answer(b"", headers, body)
        if status != 202:
            raise SystemExit(f"{status} {answer[:300]!r}")
    sys.stdout.flush()
    os._exit(0)


def _count(repo: pathlib.Path, config: str, bodies_path: pathlib.Path) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", sys.executable,
         __file__, "--child", str(repo), config, str(bodies_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = _REFS.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"cachegrind run failed ({config}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="none,full", help="comma-separated: none, full, or sinks joined by '+'")
    parser.add_argument("--batch", type=int, default=500, help="events per POST body")
    parser.add_argument("--runs", type=int, default=400, help="runs counted after the warm-up")
    parser.add_argument("--repo", action="append", help="a checkout of otel-bridge to count (repeatable)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("bench_instructions needs valgrind (Debian: apt-get install valgrind)")
    sys.path.insert(0, str(REPO / "bench"))
    from bench_pipeline import bodies_of, make_workload

    repos = [pathlib.Path(r).resolve() for r in args.repo] if args.repo else [REPO]
    with tempfile.TemporaryDirectory() as tmp:
        warm = pathlib.Path(tmp, "warm.pkl")
        more = pathlib.Path(tmp, "more.pkl")
        warm.write_bytes(pickle.dumps(bodies_of(make_workload(WARMUP_RUNS, prefix="w"), args.batch)))
        events = bodies_of(make_workload(WARMUP_RUNS + args.runs, prefix="w"), args.batch)
        more.write_bytes(pickle.dumps(events))
        print(f"{args.runs} runs x {EVENTS_PER_RUN} events after {WARMUP_RUNS} warm-up runs, {args.batch} a POST")
        print("| checkout | configuration | instructions per event |")
        print("|---|---|---|")
        for repo in repos:
            for config in args.configs.split(","):
                config = config.replace("+", ",")
                per_event = (_count(repo, config, more) - _count(repo, config, warm)) / (args.runs * EVENTS_PER_RUN)
                print(f"| {repo.name} | {config} | {per_event:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
