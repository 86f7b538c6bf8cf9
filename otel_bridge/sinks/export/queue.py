"""The exporters' span queues: the interface, and the bounded in-memory one.

A queue hands the drain loop one batch at a time (``take``) and learns what
became of it: ``done`` (exported, or dropped and counted by the sender) or
``release`` (not delivered, still deliverable). The in-memory
:class:`BatchQueue` forgets a batch when it is taken, so ``release`` can only
count it lost; a durable queue (:mod:`.durable_queue`) keeps a batch until
``done``, so an outage of any length or a restart loses nothing.

Past ``max_spans`` new spans are dropped and counted (``export_queue_full``):
ingest must never wait on a slow backend. A batch that arrived already
encoded (:mod:`.encoded`) is kept or dropped whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from otel_bridge.aio import wait_event
from otel_bridge.model import SpanRecord
from otel_bridge.sinks.export.encoded import EncodedSpans, Item, unpack
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)


def salvage_records(body: bytes) -> tuple[list[SpanRecord], int] | None:
    """A msgpack batch that did not decode as a whole, span by span: the records that do, and how many do not.

    ``None`` when it is not a msgpack list at all. A record msgpack could carry but a
    :class:`SpanRecord` cannot hold (a bug's record) is thus dropped alone, not with its batch.
    """
    try:
        items = msgspec.msgpack.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(items, list):
        return None
    good: list[SpanRecord] = []
    for item in items:
        try:
            good.append(msgspec.convert(item, SpanRecord))
        except msgspec.ValidationError:
            log.error("a span the export worker cannot read is dropped (export_encode_error)")
    return good, len(items) - len(good)


class SpanQueue(Protocol):
    """What the drain loop needs of a queue. ``offer`` never blocks and never raises."""

    durable: bool
    """``True``: a released batch stays queued (and is tried again); ``False``: it is gone."""

    def __len__(self) -> int: ...

    def offer(self, spans: Sequence[SpanRecord]) -> None: ...

    def offer_encoded(self, body: bytes, spans: int) -> None:
        """``spans`` spans as a worker pipe frame: OTLP bytes (:mod:`.encoded`) or a msgpack ``list[SpanRecord]``."""
        ...

    async def wait_batch(self, seconds: float) -> None: ...

    def wake(self) -> None: ...

    def take(self) -> list[Item]:
        """Up to one batch (in spans), oldest first; the next ``take`` comes after ``done`` or ``release``."""
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


class BatchSignal:
    """When the drain loop takes a batch: a full batch queued, ``wake()``, or ``seconds`` after a span came.

    An empty queue waits for its first span with no timer, so an idle exporter never wakes (before, the
    drain loop woke every ``schedule_delay_s``, each wake-up a timer, a timeout and an exception). Shared
    by the in-memory and the durable queue.
    """

    def __init__(self, batch_spans: int) -> None:
        self._batch = batch_spans
        self._first = asyncio.Event()  # the queue went from empty to not empty (or wake())
        self._full = asyncio.Event()  # a full batch is queued (or wake())

    def queued(self, before: int, after: int) -> None:
        """Spans were added: the queue held ``before`` spans and now holds ``after``."""
        if before == 0 < after:
            self._first.set()
        if after >= self._batch:
            self._full.set()

    async def wait(self, count: Callable[[], int], seconds: float) -> None:
        if count() == 0:
            self._first.clear()
            await self._first.wait()
            if count() == 0:  # woken with nothing queued (shutdown)
                return
        if count() < self._batch and seconds > 0:  # 0: take what is queued now, no timer
            self._full.clear()
            await wait_event(self._full, seconds)

    def wake(self) -> None:
        self._first.set()
        self._full.set()


class BatchQueue:
    """Spans in memory in arrival order, taken a batch at a time."""

    durable = False

    def __init__(self, max_spans: int, batch_spans: int, stats: Stats) -> None:
        self._spans: deque[Item] = deque()
        self._count = 0  # spans (an encoded batch counts its spans)
        self._max = max_spans
        self._batch = batch_spans
        self._stats = stats
        self._signal = BatchSignal(batch_spans)
        self._decode = msgspec.msgpack.Decoder(list[SpanRecord]).decode

    def __len__(self) -> int:
        return self._count

    def offer_encoded(self, body: bytes, spans: int) -> None:
        batch = unpack(body)
        if batch is not None:
            if self._count + batch.count > self._max:
                self._stats.drop("export_queue_full", batch.count)
                return
            self._spans.append(batch)
            self._count += batch.count
            self._signal.queued(self._count - batch.count, self._count)
            return
        try:
            decoded = self._decode(body)
        except msgspec.DecodeError:
            salvaged = salvage_records(body)
            if salvaged is None:
                log.error("an unreadable batch of %d spans is dropped", spans)
                self._stats.drop("export_encode_error", spans)
                return
            decoded, bad = salvaged
            if bad:
                self._stats.drop("export_encode_error", bad)
        self.offer(decoded)

    def offer(self, spans: Sequence[SpanRecord]) -> None:
        room = self._max - self._count
        if room < len(spans):
            self._stats.drop("export_queue_full", len(spans) - max(room, 0))
            spans = spans[: max(room, 0)]
        self._spans.extend(spans)
        self._count += len(spans)
        self._signal.queued(self._count - len(spans), self._count)

    async def wait_batch(self, seconds: float) -> None:
        """Until a full batch is queued, ``wake()`` is called, or ``seconds`` pass once a span is queued."""
        await self._signal.wait(self.__len__, seconds)

    def wake(self) -> None:
        self._signal.wake()

    def take(self) -> list[Item]:
        """Up to one batch, oldest first (an encoded batch whole, alone if it is larger)."""
        out: list[Item] = []
        n = 0
        spans = self._spans
        while spans:
            head = spans[0]
            size = head.count if type(head) is EncodedSpans else 1
            if out and n + size > self._batch:
                break
            out.append(spans.popleft())
            n += size
            if n >= self._batch:
                break
        self._count -= n
        return out

    def done(self) -> None:
        return None

    def release(self) -> None:
        return None  # already forgotten: the caller counts the batch as lost

    def clear(self) -> int:
        n = self._count
        self._spans.clear()
        self._count = 0
        return n

    def close(self) -> None:
        return None
