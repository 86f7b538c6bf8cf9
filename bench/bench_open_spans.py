"""Memory per open span and per remembered event id, measured with tracemalloc.

Opens ``--runs`` runs with ``--spans`` open tool spans each (every tool start
carrying a producer event id, as an at-least-once producer sends them) through
the real :class:`SpanMapper`, and prints the traced bytes per open span, with
and without the event ids, and per event id; then the same for open chat spans
(provider, model, temperature: a larger attribute set). These are the figures a
memory budget (``limits.max_memory_mb``) would be converted from. The goal
(issue 9): under 1 KB an open span, event id included.

Usage: python -m bench.bench_open_spans [--runs 200] [--spans 500]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

from otel_bridge.config import MappingSettings
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind
from otel_bridge.pipeline import ListSink
from otel_bridge.stats import Stats

T0 = 1_767_225_600_000_000_000


def events(runs: int, spans: int, with_ids: bool, chat: bool = False) -> list[AgentEvent]:
    out: list[AgentEvent] = []
    for r in range(runs):
        run = f"run-{r:06d}"
        out.append(AgentEvent(kind=EventKind.RUN_STARTED, run_id=run, timestamp_ns=T0, dialect="bench",
                              original_type="run.started", agent="bench-agent"))  # fmt: skip
        for s in range(spans):
            event_id = f"evt-{r:06d}-{s:06d}" if with_ids else None
            if chat:
                out.append(
                    AgentEvent(kind=EventKind.LLM_STARTED, run_id=run, timestamp_ns=T0 + s, dialect="bench",
                               original_type="llm.started", call_id=f"call-{s:06d}", provider="openai",
                               model="gpt-4o-mini", temperature=0.2, event_id=event_id)
                )  # fmt: skip
                continue
            out.append(
                AgentEvent(
                    kind=EventKind.TOOL_STARTED,
                    run_id=run,
                    timestamp_ns=T0 + s,
                    dialect="bench",
                    original_type="tool.started",
                    call_id=f"call-{s:06d}",
                    tool_name="search",
                    event_id=event_id,
                )
            )
    return out


def traced_bytes(runs: int, spans: int, with_ids: bool, chat: bool = False) -> int:
    """What the mapper keeps once the events are gone (their strings included, as a real producer's)."""
    settings = MappingSettings(
        max_open_runs=runs + 1,
        max_open_spans_per_run=spans + 1,
        max_open_spans=max(runs * spans, spans + 1),
        max_event_ids=runs * spans + runs,
    )
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    mapper = SpanMapper(settings, ListSink(), Stats())
    batch = events(runs, spans, with_ids, chat)
    mapper.process(batch)
    del batch
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert mapper.open_runs == runs
    return after - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--spans", type=int, default=500)
    args = parser.parse_args()
    n = args.runs * args.spans
    plain = traced_bytes(args.runs, args.spans, with_ids=False)
    with_ids = traced_bytes(args.runs, args.spans, with_ids=True)
    print(f"runs={args.runs} open tool spans per run={args.spans} ({n:,} open spans)")
    print(f"per open span (no event ids): {plain / n:,.0f} B")
    print(f"per open span (with event ids): {with_ids / n:,.0f} B")
    print(f"per remembered event id: {(with_ids - plain) / n:,.0f} B")
    chat_plain = traced_bytes(args.runs, args.spans, with_ids=False, chat=True)
    chat_ids = traced_bytes(args.runs, args.spans, with_ids=True, chat=True)
    print(f"per open chat span (no event ids): {chat_plain / n:,.0f} B")
    print(f"per open chat span (with event ids): {chat_ids / n:,.0f} B")


if __name__ == "__main__":
    main()
