"""The in-process batch sender: encode one batch, send it through the retry link, count the result.

Every span ends in exactly one counter: ``spans_exported``, or
``spans_export_failed`` plus a named drop (``export_rejected_by_receiver`` for a
partial success, ``export_permanent_error``), or ``export_encode_error`` for a
span that cannot be encoded (the encoders clamp what OTLP cannot carry, so this is
a bug; a batch that fails is encoded span by span and only the spans that fail
alone are dropped). A batch still failing with a retryable error when its budget
runs out is answered ``UNDELIVERED`` and counted by the link in front (the queue
decides whether it is lost or tried again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from otel_bridge.sinks.export.batching import Delivery
from otel_bridge.sinks.export.encoded import Item, span_count
from otel_bridge.sinks.export.result import Outcome
from otel_bridge.sinks.export.retry import RetrySender
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)


class OtlpBatchSender:
    """A :class:`~otel_bridge.sinks.export.batching.BatchSender`; ``connect`` builds the retry link at ``start``."""

    held = 0

    def __init__(
        self,
        stats: Stats,
        encode: Callable[[Sequence[Item]], bytes],
        connect: Callable[[], RetrySender],
        name: str,
    ) -> None:
        self._stats = stats
        self._encode = encode
        self._connect = connect
        self._name = name
        self._retry: RetrySender | None = None
        # Both counters exist from the start (at 0), so a scrape shows the series before the first failure.
        stats.spans_exported[name] += 0
        stats.spans_export_failed[name] += 0

    @property
    def last_error(self) -> str | None:
        return self._retry.last_error if self._retry is not None else None

    async def start(self) -> None:
        if self._retry is None:
            self._retry = self._connect()

    async def send_batch(self, batch: list[Item], budget_s: float) -> Delivery:
        assert self._retry is not None, "start() first"
        try:
            body = self._encode(batch)
        except Exception:  # a bug here must not kill the exporter task, nor cost the neighbours
            log.exception("OTLP encoding of a batch failed; encoding its %d spans one by one", span_count(batch))
            batch = self._encodable(batch)
            if not batch:
                return Delivery.SETTLED
            body = self._encode(batch)
        result = await self._retry.send(body, budget_s)
        n = span_count(batch)
        if result.outcome is Outcome.SUCCESS:
            self._stats.spans_exported[self._name] += n - result.rejected
            if result.rejected:
                self._stats.spans_export_failed[self._name] += result.rejected
                self._stats.drop("export_rejected_by_receiver", result.rejected)
                log.warning("receiver rejected %d spans: %s", result.rejected, result.detail)
            return Delivery.SETTLED
        if result.outcome is Outcome.RETRYABLE:
            return Delivery.UNDELIVERED
        self._stats.spans_export_failed[self._name] += n
        self._stats.drop("export_permanent_error", n)
        log.warning("OTLP export of %d spans failed (export_permanent_error): %s", n, result.detail)
        return Delivery.SETTLED

    def _encodable(self, batch: list[Item]) -> list[Item]:
        """The items that encode alone; each one that does not is dropped and counted (``export_encode_error``)."""
        good: list[Item] = []
        for item in batch:
            try:
                self._encode([item])
            except Exception:
                n = span_count([item])
                self._stats.spans_export_failed[self._name] += n
                self._stats.drop("export_encode_error", n)
            else:
                good.append(item)
        return good

    async def close(self) -> None:
        if self._retry is not None:
            await self._retry.close()
