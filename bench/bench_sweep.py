"""What the timeout sweep costs while nothing is due: ``--runs`` idle open runs, one open tool span each.

The bridge sweeps once a second (``mapping.sweep_interval_s``). Before issue 9 every sweep walked
every open run and span (100,000 idle runs cost 10-11 % of a core); now ended runs wait in a FIFO,
idle runs are found from the oldest end of the run table and span timeouts and markers come from a
deadline heap, so a sweep with nothing due touches nothing. Prints CPU per sweep and the share of a
core at one sweep a second.

Usage: python -m bench.bench_sweep [--runs 100000] [--sweeps 50]
"""

from __future__ import annotations

import argparse
import time

from otel_bridge.config import MappingSettings
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind
from otel_bridge.pipeline import ListSink
from otel_bridge.stats import Stats

T0 = 1_767_225_600_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--sweeps", type=int, default=50)
    args = parser.parse_args()
    now = [0.0]
    mapper = SpanMapper(
        MappingSettings(max_open_runs=args.runs + 1, max_open_spans=args.runs + 1_000),
        ListSink(),
        Stats(),
        clock=lambda: now[0],
    )
    events: list[AgentEvent] = []
    for r in range(args.runs):
        run = f"run-{r:06d}"
        events.append(AgentEvent(kind=EventKind.RUN_STARTED, run_id=run, timestamp_ns=T0, dialect="bench",
                                 original_type="run.started", agent="idle"))  # fmt: skip
        events.append(AgentEvent(kind=EventKind.TOOL_STARTED, run_id=run, timestamp_ns=T0 + 1, dialect="bench",
                                 original_type="tool.started", call_id="c", tool_name="wait"))  # fmt: skip
    mapper.process(events)
    start = time.process_time()
    for i in range(args.sweeps):
        now[0] = 1.0 + i  # a second later each time: nothing is due (idle 300 s, span 600 s, marker 30 s)
        if now[0] >= 30.0:
            break
        mapper.sweep()
    sweeps = min(args.sweeps, 29)
    per_sweep = (time.process_time() - start) / sweeps
    assert mapper.open_runs == args.runs
    print(f"{args.runs:,} idle open runs: {per_sweep * 1e3:.2f} ms CPU a sweep, {per_sweep * 100:.2f} % of a core")


if __name__ == "__main__":
    main()
