"""CPU per event of the ingest stages in process: decode, redaction, mapping (A/B against another checkout).

The workload is bench/bench_pipeline.py's (16 canonical events a run, NDJSON bodies of ``--batch``),
run through the real assembly in the "export only" configuration (store, metrics and feed off; the
default redaction and pricing), with the sidecar's garbage-collector settings, its spans going to an
in-memory sink. Each body is timed, in CPU
seconds of this process (``time.process_time``), through:

* ``decode``: :func:`otel_bridge.sources.http_ingest.decode_body` (framing, JSON, dialect, checks);
* ``redact``: the bridge's redaction of the decoded batch alone (it is also part of ``submit``);
* ``submit``: :meth:`Bridge.submit` (redaction, mapping, spans to the sink), then a timeout sweep
  (which emits the ended runs' root spans, as the sidecar's sweeper does every second);
* ``total``: ``decode`` + ``submit``, what ingest costs short of HTTP and export.

Each measurement is a fresh process with a fresh pipeline; the figure is the best of ``--repeat``
passes. ``--ab DIR`` measures this checkout and the one in DIR alternately, each pass in its own
process with that checkout's package first on ``sys.path``, for ``--rounds`` rounds, and prints
medians and the min-max spread of both and of their ratio (DIR / this: above 1, this one is cheaper).

Usage: python bench/bench_ingest_stages.py [--runs 2000] [--batch 500] [--repeat 5] [--ab DIR --rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
STAGES = ("decode", "redact", "submit", "total")


def measure(runs: int, batch: int, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` CPU microseconds per event of each stage, in this process."""
    sys.path.insert(0, str(REPO / "bench"))
    from bench_pipeline import bodies_of, make_workload

    from otel_bridge.assembly import assemble
    from otel_bridge.config import MappingSettings, MetricsSettings, Settings, StoreSettings
    from otel_bridge.config.settings import FeedSettings
    from otel_bridge.pipeline import ListSink
    from otel_bridge.sources.http_ingest import decode_body

    events = make_workload(runs)
    bodies = bodies_of(events, batch)
    settings = Settings(
        mapping=MappingSettings(run_end_grace_s=0.0),
        store=StoreSettings(enabled=False),
        metrics=MetricsSettings(enabled=False),
        feed=FeedSettings(enabled=False),
    )
    best = dict.fromkeys(STAGES, float("inf"))
    cpu = time.process_time
    # The sidecar's collector settings (otel_bridge/cli.py): what is loaded is frozen, collections are rare.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    for _ in range(repeat):
        sink = ListSink()
        pipeline = assemble(settings, extra_sinks=[sink])
        bridge = pipeline.bridge
        prepare = bridge._prepare  # the redactor's batch method (None when redaction is off)
        took = dict.fromkeys(STAGES, 0.0)
        for body in bodies:
            t0 = cpu()
            decoded = decode_body(body, "application/x-ndjson")
            t1 = cpu()
            if prepare is not None:
                prepare(decoded.events)
            t2 = cpu()
            bridge.submit(decoded.events)
            bridge.sweep()
            t3 = cpu()
            took["decode"] += t1 - t0
            took["redact"] += t2 - t1
            took["submit"] += t3 - t2
            sink.spans.clear()
        bridge.close_all("shutdown")
        took["total"] = took["decode"] + took["submit"]
        for stage in STAGES:
            best[stage] = min(best[stage], took[stage] / len(events) * 1e6)
    return best


def _child(repo: pathlib.Path, runs: int, batch: int, repeat: int) -> dict[str, float]:
    code = (
        f"import sys; sys.path.insert(0, {str(repo)!r}); sys.path.insert(1, {str(REPO / 'bench')!r});"
        "import json, bench_ingest_stages as b;"
        f"print(json.dumps(b.measure({runs}, {batch}, {repeat})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=repo)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _spread(xs: list[float], fmt: str) -> str:
    return f"{statistics.median(xs):{fmt}} ({min(xs):{fmt}}-{max(xs):{fmt}})"


def ab(other: pathlib.Path, rounds: int, runs: int, batch: int, repeat: int) -> None:
    this: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    for r in range(rounds):
        pair = [(REPO, this), (other, base)]
        for repo, into in pair if r % 2 == 0 else pair[::-1]:
            into.append(_child(repo, runs, batch, repeat))
        print(f"round {r + 1}: " + ", ".join(f"{s} {base[-1][s]:.2f}->{this[-1][s]:.2f}" for s in STAGES), flush=True)
    print(f"\n{rounds} rounds, us/event, median (min-max); ratio = other / this")
    print(f"{'stage':8} {'other':>20} {'this':>20} {'ratio':>22}")
    for s in STAGES:
        ratios = [b[s] / t[s] for b, t in zip(base, this, strict=True)]
        print(
            f"{s:8} {_spread([b[s] for b in base], '.2f'):>20} {_spread([t[s] for t in this], '.2f'):>20}"
            f" {_spread(ratios, '.2f'):>20}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="passes per process; the best is kept")
    parser.add_argument("--ab", type=pathlib.Path, help="another checkout to compare with, interleaved")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.ab is not None:
        ab(args.ab.resolve(), args.rounds, args.runs, args.batch, args.repeat)
        return
    result = measure(args.runs, args.batch, args.repeat)
    print(", ".join(f"{s} {v:.2f} us/event" for s, v in result.items()))


if __name__ == "__main__":
    main()
