"""The exporters' bounded span queue: ``offer`` never blocks, ``wait_batch`` wakes a drainer.

Past ``max_spans`` new spans are dropped and counted (``export_queue_full``):
ingest must never wait on a slow backend.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from otel_bridge.aio import wait_event
from otel_bridge.model import SpanRecord
from otel_bridge.stats import Stats


class BatchQueue:
    """Spans in arrival order, taken a batch at a time."""

    def __init__(self, max_spans: int, batch_spans: int, stats: Stats) -> None:
        self._spans: deque[SpanRecord] = deque()
        self._max = max_spans
        self._batch = batch_spans
        self._stats = stats
        self._full_batch = asyncio.Event()

    def __len__(self) -> int:
        return len(self._spans)

    def offer(self, spans: Sequence[SpanRecord]) -> None:
        room = self._max - len(self._spans)
        if room < len(spans):
            self._stats.drop("export_queue_full", len(spans) - max(room, 0))
            spans = spans[: max(room, 0)]
        self._spans.extend(spans)
        if len(self._spans) >= self._batch:
            self._full_batch.set()

    async def wait_batch(self, seconds: float) -> None:
        """Until a full batch is queued, ``wake()`` is called, or ``seconds`` pass."""
        if len(self._spans) < self._batch:
            self._full_batch.clear()
            await wait_event(self._full_batch, seconds)

    def wake(self) -> None:
        self._full_batch.set()

    def take(self) -> list[SpanRecord]:
        """Up to one batch, oldest first."""
        n = min(len(self._spans), self._batch)
        return [self._spans.popleft() for _ in range(n)]

    def clear(self) -> int:
        n = len(self._spans)
        self._spans.clear()
        return n
