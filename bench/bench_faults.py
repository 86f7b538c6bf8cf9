"""Fault drill figures: a long collector outage with a sidecar restart, and the durable queue's cost.

outage (default): a real rotel collector is killed for ``--outage-s`` (300 s) while
runs are posted at ``--rate`` runs/s (3 spans each); halfway through the
sidecar is stopped with SIGTERM and a new one starts on the same queue folder;
then the collector comes back. Printed: spans sent, received, duplicated, lost,
counted as dropped, re-sends counted, and the recovery time (collector back to
the last span received). The bounded 60 s variant is tests/test_faults.py.

queue-cost: bench/bench_pipeline.py's sidecar run (HTTP ingest -> OTLP/HTTP
export into a blackhole rotel), with ``otlp.queue_dir = "memory"`` and with a
durable queue in a tmp folder, interleaved over ``--rounds``; the figure is the
CPU seconds of the sidecar's process tree (the sidecar and its export worker,
from ``RUSAGE_CHILDREN`` once each has been waited for) and the wall time.

Usage: python -m bench.bench_faults [outage|queue-cost] [--outage-s 300] [--rate 5] [--rounds 5] [--runs 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import signal
import statistics
import tempfile
import time

from bench.bench_pipeline import SPANS_PER_RUN as PIPELINE_SPANS_PER_RUN
from bench.bench_pipeline import Rotel as BlackholeRotel
from bench.bench_pipeline import make_events, run_bridge
from tests.support.faults import GroupSidecar, Load, RestartableRotel, wait_all_arrived


def outage(outage_s: float, rate: float) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = pathlib.Path(tmpdir)
        collector = RestartableRotel(tmp / "rotel.log")
        collector.start()
        env = {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BRIDGE_QUEUE_DIR": str(tmp / "queue"),
        }
        load = Load()
        dropped: dict[str, int] = {}
        resent = 0
        try:
            first = GroupSidecar(tmp / "first.log", env)
            load.post(first, "before", 10)
            wait_all_arrived(collector, load.expected_spans, 30)
            collector.stop()
            load.post_for(first, "outage-a", outage_s / 2, rate)
            health = first.health()
            code_first = first.signal_group(signal.SIGTERM)
            for k, v in health["dropped"].items():
                dropped[k] = dropped.get(k, 0) + v
            second = GroupSidecar(tmp / "second.log", env)
            load.post_for(second, "outage-b", outage_s / 2, rate)
            collector.start()
            back = time.monotonic()
            arrived, recovery_s = wait_all_arrived(collector, load.expected_spans, 300)
            time.sleep(2)  # late duplicates, if any
            arrived = collector.arrived()
            health = second.health()
            for k, v in health["dropped"].items():
                dropped[k] = dropped.get(k, 0) + v
            resent = sum(health["spans_resent"].values())
            code_second = second.signal_group(signal.SIGTERM)
            del back
        finally:
            collector.close()
        sent = load.expected_spans
        received = len(arrived)
        duplicated = sum(n - 1 for n in arrived.values() if n > 1)
        figures = {
            "outage_s": outage_s,
            "rate_spans_per_s": rate * 3,
            "spans_sent": sent,
            "spans_received": received,
            "duplicated": duplicated,
            "lost": sent - received,
            "counted_dropped": dropped,
            "resent_counted": resent,
            "recovery_s": round(recovery_s, 2),
            "exit_codes": [code_first, code_second],
        }
        print(json.dumps(figures, indent=2))


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def queue_cost(rounds: int, runs: int, batch: int) -> None:
    events = make_events(runs)
    lines = [json.dumps(e).encode() for e in events]
    bodies = [b"\n".join(lines[i : i + batch]) for i in range(0, len(lines), batch)]
    n_spans = runs * PIPELINE_SPANS_PER_RUN
    collector = BlackholeRotel()
    base = f"http://127.0.0.1:{collector.http}"
    cpu: dict[str, list[float]] = {"memory": [], "durable": []}
    wall: dict[str, list[float]] = {"memory": [], "durable": []}
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = pathlib.Path(tmpdir)
            os.environ["XDG_STATE_HOME"] = str(tmp / "state")  # the default folder, never the real one
            for i in range(rounds):
                order = ("memory", "durable") if i % 2 == 0 else ("durable", "memory")
                for mode in order:
                    queue_dir = "memory" if mode == "memory" else str(tmp / f"queue-{i}")
                    before = _cpu_children()
                    wall[mode].append(run_bridge(base, bodies, n_spans, tmp, with_store=False, queue_dir=queue_dir))
                    cpu[mode].append(_cpu_children() - before)
                print(
                    f"round {i + 1}: memory {cpu['memory'][-1]:.2f} CPU s / {wall['memory'][-1]:.2f} s wall   "
                    f"durable {cpu['durable'][-1]:.2f} CPU s / {wall['durable'][-1]:.2f} s wall"
                )
    finally:
        collector.stop()
    m_cpu, d_cpu = statistics.median(cpu["memory"]), statistics.median(cpu["durable"])
    m_wall, d_wall = statistics.median(wall["memory"]), statistics.median(wall["durable"])
    paired = statistics.median(d / m for d, m in zip(cpu["durable"], cpu["memory"], strict=True))
    print(f"events={len(events)} spans={n_spans} rounds={rounds} (medians)")
    print(f"durable / memory CPU, round by round (median of the pairs): {paired - 1:+.1%}")
    print(f"CPU s of the sidecar's process tree: memory {m_cpu:.2f}, durable {d_cpu:.2f} ({d_cpu / m_cpu - 1:+.1%})")
    print(f"wall s to export everything: memory {m_wall:.2f}, durable {d_wall:.2f} ({d_wall / m_wall - 1:+.1%})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", choices=("outage", "queue-cost"), default="outage")
    parser.add_argument("--outage-s", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=5.0, help="runs per second during the outage (3 spans each)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    if args.mode == "outage":
        outage(args.outage_s, args.rate)
    else:
        queue_cost(args.rounds, args.runs, args.batch)


if __name__ == "__main__":
    main()
