"""The batching exporter: a queue and one drain loop, in front of any :class:`BatchSender`.

``consume`` only appends to the queue (it never blocks ingest); one background
task takes batches of ``max_batch_spans`` whenever a full batch is queued or
every ``schedule_delay_s`` (in front of the export worker with a durable
queue, which batches by ``schedule_delay_s`` itself, every
``process.HANDOVER_S`` at most), and hands
each to the sender with its own retry budget (``max_retry_s``). What the sender
does with a batch (encode and send it here, or pass it to the worker process)
is the sender's business; it answers whether the batch is settled or still
deliverable (:class:`Delivery`).

What becomes of a batch the collector did not take within its budget is the
queue's business: the in-memory :class:`BatchQueue` has already let it go, so
it is counted (``export_retries_exhausted``); a durable queue keeps it at its
head, and the loop tries it again after ``RETRY_PAUSE_S``, for as long as the
outage lasts (the batches behind it wait on disk, in order).

Shutdown order: stop waiting for full batches; drain what is queued, all of it
within one export timeout (each batch gets what is left of it; with a durable
queue the first undelivered batch ends the drain and the rest stays on disk);
wait for the drain loop at most twice the export timeout plus a second, then
cancel it; count what is still queued in memory as ``export_shutdown``; close
the sender, then the queue. ``shutdown`` is safe without ``start``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from otel_bridge.aio import cancel_and_wait, wait_event
from otel_bridge.config import OtlpSettings
from otel_bridge.model import SpanRecord
from otel_bridge.sinks.export.durable_queue import DirLock
from otel_bridge.sinks.export.encoded import Item, span_count
from otel_bridge.sinks.export.queue import BatchQueue, SpanQueue
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

RETRY_PAUSE_S = 5.0
"""With a durable queue, the wait before a batch whose retry budget ran out is tried again."""


class Delivery(enum.Enum):
    """What a sender made of one batch."""

    SETTLED = "settled"
    """Exported, or dropped and counted by the sender: the queue forgets it."""
    UNDELIVERED = "undelivered"
    """A retryable failure outlasted the budget; nothing was counted: the queue decides."""


class BatchSender(Protocol):
    """The link after the queue. ``send_batch`` never raises: what it cannot deliver it counts in ``Stats``."""

    @property
    def last_error(self) -> str | None: ...

    @property
    def held(self) -> int:
        """Spans handed over but not yet exported (a worker process's own queue)."""
        ...

    async def start(self) -> None: ...

    async def send_batch(self, batch: list[Item], budget_s: float) -> Delivery:
        """``batch``: span records and batches already encoded (:mod:`.encoded`), in order."""
        ...

    async def close(self) -> None: ...


class BatchingExporter:
    """A :class:`SpanSink` with a lifecycle: queue, drain loop, then ``sender``."""

    name = "otlp"

    def __init__(
        self,
        settings: OtlpSettings,
        stats: Stats,
        sender: BatchSender,
        queue: SpanQueue | None = None,
        lock: DirLock | None = None,
        delay_s: float | None = None,
    ) -> None:
        """``lock``: the queue folder's lock this exporter holds, released at the end of ``shutdown``;
        ``delay_s``: the longest a span waits for its batch to be taken (``schedule_delay_s`` unless given)."""
        self._s = settings
        self._delay_s = settings.schedule_delay_s if delay_s is None else delay_s
        self._stats = stats
        self._sender = sender
        self._queue: SpanQueue = (
            queue if queue is not None else BatchQueue(settings.max_queue_spans, settings.max_batch_spans, stats)
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop = asyncio.Event()
        self._lock = lock

    @property
    def queue_depth(self) -> int:
        return len(self._queue) + self._sender.held

    @property
    def last_error(self) -> str | None:
        return self._sender.last_error

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self._queue.offer(spans)

    def consume_encoded(self, body: bytes, spans: int) -> None:
        """A worker pipe frame (OTLP bytes or msgpack records): a durable queue stores it as it is."""
        self._queue.offer_encoded(body, spans)

    async def start(self) -> None:
        await self._sender.start()
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-exporter")

    async def _run(self) -> None:
        while not self._stopping:
            await self._queue.wait_batch(self._delay_s)
            while self._queue and not self._stopping:
                if not await self._send(self._s.max_retry_s):
                    await wait_event(self._stop, RETRY_PAUSE_S)  # the outage goes on: the batch waits on disk
        end = time.monotonic() + self._s.timeout_s  # the final drain, bounded by one export timeout
        while self._queue:
            if not await self._send(max(0.0, end - time.monotonic())):
                log.warning("export queue: %d spans stay on disk for the next start", len(self._queue))
                return

    async def _send(self, budget_s: float) -> bool:
        """One batch from the queue to the sender; ``False`` when it is still queued (durable, undelivered)."""
        batch = self._queue.take()
        if not batch:
            return True
        try:
            delivery = await self._sender.send_batch(batch, budget_s)
        except Exception:  # a bug in a link must not end export for good
            log.exception("OTLP export failed unexpectedly; %d spans dropped", span_count(batch))
            self._stats.drop("export_internal_error", span_count(batch))
            self._queue.done()
            return True
        if delivery is not Delivery.UNDELIVERED:
            self._queue.done()
            return True
        if self._queue.durable:
            self._queue.release()
            return False
        self._queue.done()
        n = span_count(batch)
        self._stats.spans_export_failed[self.name] += n
        self._stats.drop("export_retries_exhausted", n)
        log.warning("OTLP export of %d spans failed (export_retries_exhausted): %s", n, self.last_error)
        return True

    async def shutdown(self) -> None:
        """Export what is queued (bounded by the export timeout, twice), then close the sender."""
        self._stopping = True
        self._stop.set()
        self._queue.wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 2 * self._s.timeout_s + 1)
            except TimeoutError:
                await cancel_and_wait(self._task)
        if self._queue and not self._queue.durable:
            self._stats.drop("export_shutdown", self._queue.clear())
        try:
            await self._sender.close()
        finally:
            self._queue.close()
            if self._lock is not None:
                self._lock.release()
