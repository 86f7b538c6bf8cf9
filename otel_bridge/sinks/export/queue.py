"""The exporters' span queues: the interface, and the bounded in-memory one.

A queue hands the drain loop one batch at a time (``take``) and learns what
became of it: ``done`` (exported, or dropped and counted by the sender) or
``release`` (not delivered, still deliverable). The in-memory
:class:`BatchQueue` forgets a batch when it is taken, so ``release`` can only
count it lost; a durable queue (:mod:`.durable_queue`) keeps a batch until
``done``, so an outage of any length or a restart loses nothing.

Past ``max_spans`` new spans are dropped and counted (``export_queue_full``):
ingest must never wait on a slow backend.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Protocol

import msgspec

from otel_bridge.aio import wait_event
from otel_bridge.model import SpanRecord
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)


class SpanQueue(Protocol):
    """What the drain loop needs of a queue. ``offer`` never blocks and never raises."""

    durable: bool
    """``True``: a released batch stays queued (and is tried again); ``False``: it is gone."""

    def __len__(self) -> int: ...

    def offer(self, spans: Sequence[SpanRecord]) -> None: ...

    def offer_encoded(self, body: bytes, spans: int) -> None:
        """``spans`` spans already msgpack-encoded as one ``list[SpanRecord]`` (the worker pipe's frames)."""
        ...

    async def wait_batch(self, seconds: float) -> None: ...

    def wake(self) -> None: ...

    def take(self) -> list[SpanRecord]:
        """Up to one batch, oldest first; the next ``take`` comes after ``done`` or ``release``."""
        ...

    def done(self) -> None:
        """The batch last taken is settled: forget it."""
        ...

    def release(self) -> None:
        """The batch last taken was not delivered: keep it at the head (durable) or let it go."""
        ...

    def clear(self) -> int:
        """Drop what is queued (shutdown); the number of spans dropped."""
        ...

    def close(self) -> None: ...


class BatchQueue:
    """Spans in memory in arrival order, taken a batch at a time."""

    durable = False

    def __init__(self, max_spans: int, batch_spans: int, stats: Stats) -> None:
        self._spans: deque[SpanRecord] = deque()
        self._max = max_spans
        self._batch = batch_spans
        self._stats = stats
        self._full_batch = asyncio.Event()
        self._decode = msgspec.msgpack.Decoder(list[SpanRecord]).decode

    def __len__(self) -> int:
        return len(self._spans)

    def offer_encoded(self, body: bytes, spans: int) -> None:
        try:
            decoded = self._decode(body)
        except msgspec.DecodeError:
            log.error("an unreadable batch of %d spans is dropped", spans)
            self._stats.drop("export_encode_error", spans)
            return
        self.offer(decoded)

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

    def done(self) -> None:
        return None

    def release(self) -> None:
        return None  # already forgotten: the caller counts the batch as lost

    def clear(self) -> int:
        n = len(self._spans)
        self._spans.clear()
        return n

    def close(self) -> None:
        return None
