"""What the feed's UI forms (AG-UI, AI SDK) cost: on the ingest path, and when a UI asks.

Both forms keep their runs (a start, what is open, the end) in publish order, but
lazily: publishing queues a reference, and the runs are worked through when a UI
asks (``sinks/feed/runs.py``). This measures, on the events of every capture
under ``tests/fixtures`` (mapped once by a real bridge, so each has its
placement), in interleaved rounds, as process CPU seconds per event:

* publishing (``Feed.observe``) with no formats (the baseline) and with both UI forms;
* the work a UI's first request does per queued event (the run book, the
  translation, and the event's enrichment, which a feed nobody reads defers to its
  first reader), and the framing of an event in each form (once, shared by every
  subscriber of that form).

Usage: python bench/bench_feed_ui_forms.py [--rounds 7] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from otel_bridge.assembly import assemble
from otel_bridge.config import FeedSettings, Settings
from otel_bridge.model import AgentEvent, Placement
from otel_bridge.sinks.feed import Feed, FeedFormat
from otel_bridge.sinks.feed.agui import AguiFormat
from otel_bridge.sinks.feed.ai_sdk import AiSdkFormat
from otel_bridge.sources.http_ingest import decode_body

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TYPES = {".sse": "text/event-stream", ".json": "application/json", ".ndjson": "application/x-ndjson"}


def mapped_events() -> list[tuple[AgentEvent, Placement]]:
    """Every capture's events with their placements, as the feed receives them."""
    settings = Settings()
    bridge = assemble(settings, pricer=None).bridge
    out: list[tuple[AgentEvent, Placement]] = []
    for n, path in enumerate(sorted(FIXTURES.rglob("*"))):
        if path.suffix not in TYPES or path.name.endswith((".expected.json", ".options.json")):
            continue
        decoded = decode_body(path.read_bytes(), TYPES[path.suffix], run_id=f"bench-{n}")
        out.extend(bridge.submit(decoded.events))
    return out


def publish(batch: Sequence[tuple[AgentEvent, Placement]], ui: bool, repeat: int) -> float:
    """CPU seconds per event to publish ``batch`` into a fresh feed (every run new), ``repeat`` times."""
    events = [e for e, _ in batch]
    placements = [p for _, p in batch]
    spent = 0.0
    for _ in range(repeat):
        formats: list[FeedFormat] = [AguiFormat(content=True), AiSdkFormat(content=True)] if ui else []
        feed = Feed(FeedSettings(ring_size=100_000), content=True, formats=formats)
        started = time.process_time()
        feed.observe(events, placements)
        spent += time.process_time() - started
    return spent / (repeat * len(batch))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    batch = mapped_events()
    base: list[float] = []
    ui: list[float] = []
    for _ in range(args.rounds):  # interleaved, so load on the shared machine hits both alike
        base.append(publish(batch, False, args.repeat))
        ui.append(publish(batch, True, args.repeat))
    b, u = statistics.median(base), statistics.median(ui)
    print(f"{len(batch)} events x {args.repeat}, {args.rounds} interleaved rounds, median CPU per event:")
    print(f"  publish, canonical only       {b * 1e6:7.2f} us")
    print(f"  publish, + ag-ui + ai-sdk     {u * 1e6:7.2f} us   (+{(u - b) * 1e6:.2f} us)")
    events = [e for e, _ in batch]
    placements = [p for _, p in batch]
    for make in (AguiFormat, AiSdkFormat):
        catch_up, framing = [], []
        for _ in range(args.rounds):
            fmt = make(content=True, max_pending=100_000)
            feed = Feed(FeedSettings(ring_size=100_000), content=True, formats=[fmt])
            feed.observe(events, placements)
            items = list(feed.backend.ring)
            started = time.process_time()
            fmt.latest("")  # what a UI's first request does: the queued events, translated in order
            catch_up.append((time.process_time() - started) / len(items))
            started = time.process_time()
            for item in items:
                fmt.frame(item)
            framing.append((time.process_time() - started) / len(items))
        print(
            f"  {fmt.name:7} when a UI asks: {statistics.median(catch_up) * 1e6:6.2f} us to translate, "
            f"{statistics.median(framing) * 1e6:6.2f} us to frame (once, for every subscriber)"
        )


if __name__ == "__main__":
    main()
