"""``otel-bridge replay``: captured streams (SSE text, JSON, NDJSON) to traces, offline.

Each file is one stream. Runs without ids of their own (agent-event-stream...)
are keyed by a hash of the file's bytes, so replaying the same capture gives
the same trace ids on any machine. At the end of the input every open run is
closed (``close_reason=end_of_input``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from otel_bridge import semconv as sc
from otel_bridge.dialects import registry
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import sniff_text_frames
from otel_bridge.dialects.stream import Rejection, StreamDecoder
from otel_bridge.pipeline import EventConsumer


@dataclass
class FileReport:
    path: str
    dialect: str | None
    frames: int
    events: int
    rejections: list[Rejection]
    runs: dict[str, str] = field(default_factory=dict)  # run id -> trace id


def replay_files(
    consumer: EventConsumer,
    paths: Sequence[str | Path],
    dialect: str | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
) -> list[FileReport]:
    """Decode and map every file through ``consumer``; then close all runs."""
    forced = registry.get(dialect) if dialect is not None else None
    reports: list[FileReport] = []
    for path in paths:
        data = Path(path).read_bytes()
        key = hashlib.sha256(data).hexdigest()[:32]
        ctx = StreamContext(source="replay", stream_key=key, clock_ns=clock_ns)
        decoder = StreamDecoder(ctx, forced, on_reject=consumer.reject)
        events = decoder.feed(sniff_text_frames(data.decode("utf-8", errors="replace"))) + decoder.close()
        pairs = consumer.submit(events)
        runs: dict[str, str] = {}
        for event, placement in pairs:
            runs.setdefault(event.run_id, placement.trace_id.hex())
        reports.append(
            FileReport(str(path), decoder.dialect, decoder.frames_seen, len(events), decoder.rejections, runs)
        )
    consumer.close_all(sc.CLOSE_END_OF_INPUT)
    return reports
