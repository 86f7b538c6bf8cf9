"""The batching exporter: a bounded queue and one drain loop, in front of any :class:`BatchSender`.

``consume`` only appends to the :class:`BatchQueue` (it never blocks ingest);
one background task takes batches of ``max_batch_spans`` whenever a full batch
is queued or every ``schedule_delay_s``, and hands each to the sender with its
own retry budget (``max_retry_s``). What the sender does with a batch (encode
and send it here, or pass it to the worker process) is the sender's business.

Shutdown order: stop waiting for full batches; drain what is queued, all of it
within one export timeout (each batch gets what is left of it); wait for the
drain loop at most twice the export timeout plus a second, then cancel it;
count what is still queued as ``export_shutdown``; close the sender.
``shutdown`` is safe without ``start``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from otel_bridge.config import OtlpSettings
from otel_bridge.model import SpanRecord
from otel_bridge.sinks.export.queue import BatchQueue
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)


class BatchSender(Protocol):
    """The link after the queue. ``send_batch`` never raises: what it cannot deliver it counts in ``Stats``."""

    @property
    def last_error(self) -> str | None: ...

    @property
    def held(self) -> int:
        """Spans handed over but not yet exported (a worker process's own queue)."""
        ...

    async def start(self) -> None: ...

    async def send_batch(self, batch: list[SpanRecord], budget_s: float) -> None: ...

    async def close(self) -> None: ...


class BatchingExporter:
    """A :class:`SpanSink` with a lifecycle: queue, drain loop, then ``sender``."""

    name = "otlp"

    def __init__(self, settings: OtlpSettings, stats: Stats, sender: BatchSender) -> None:
        self._s = settings
        self._stats = stats
        self._sender = sender
        self._queue = BatchQueue(settings.max_queue_spans, settings.max_batch_spans, stats)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def queue_depth(self) -> int:
        return len(self._queue) + self._sender.held

    @property
    def last_error(self) -> str | None:
        return self._sender.last_error

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self._queue.offer(spans)

    async def start(self) -> None:
        await self._sender.start()
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-exporter")

    async def _run(self) -> None:
        while not self._stopping:
            await self._queue.wait_batch(self._s.schedule_delay_s)
            while self._queue and not self._stopping:
                await self._send(self._queue.take(), self._s.max_retry_s)
        end = time.monotonic() + self._s.timeout_s  # the final drain, bounded by one export timeout
        while self._queue:
            await self._send(self._queue.take(), max(0.0, end - time.monotonic()))

    async def _send(self, batch: list[SpanRecord], budget_s: float) -> None:
        try:
            await self._sender.send_batch(batch, budget_s)
        except Exception:  # a bug in a link must not end export for good
            log.exception("OTLP export failed unexpectedly; %d spans dropped", len(batch))
            self._stats.drop("export_internal_error", len(batch))

    async def shutdown(self) -> None:
        """Export what is queued (bounded by the export timeout, twice), then close the sender."""
        self._stopping = True
        self._queue.wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 2 * self._s.timeout_s + 1)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._queue:
            self._stats.drop("export_shutdown", self._queue.clear())
        await self._sender.close()
