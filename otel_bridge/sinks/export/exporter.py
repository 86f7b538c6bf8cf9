"""``OtlpExporter``: the in-process assembly of the export chain for traces.

Queue and drain loop (:class:`BatchingExporter`; the queue is durable, on disk,
when ``queue_dir`` names a folder), then encode (OTLP protobuf, or OTLP/JSON for
``http/json``), count, retry with the shared backoff for up to ``max_retry_s``
per batch, and send over the transport the settings name. Protobuf comes from the
native span encoder when it is installed, else the pure one (the same bytes;
``otlp_proto.ProtoEncoder``); batches that arrived already encoded (the worker's,
:mod:`.encoded`) are only framed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from otel_bridge.config import OtlpSettings
from otel_bridge.model import AttributeValue, SpanRecord
from otel_bridge.sinks import otlp_json
from otel_bridge.sinks.export.batching import BatchingExporter
from otel_bridge.sinks.export.durable_queue import SIDECAR_LOCK, DirLock, DurableQueue
from otel_bridge.sinks.export.encoded import EncodedSpans, Item
from otel_bridge.sinks.export.factory import make_transport
from otel_bridge.sinks.export.result import Transport
from otel_bridge.sinks.export.retry import RetrySender
from otel_bridge.sinks.export.sender import OtlpBatchSender
from otel_bridge.sinks.otlp_proto import ProtoEncoder
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)


class OtlpExporter(BatchingExporter):
    """A :class:`SpanSink` that batches and exports to one OTLP endpoint.

    ``transport`` replaces the network (tests; the export worker passes the settings' own, wrapped); by default
    the settings pick it at ``start``.
    ``lock_queue_dir``: take the durable queue folder for this sidecar (a second one fails with a
    :class:`~otel_bridge.config.ConfigError`); the export worker takes its own lock instead.
    ``delay_s``: as :class:`BatchingExporter`'s (the export worker sends what the sidecar batched at once).
    """

    def __init__(
        self,
        settings: OtlpSettings,
        stats: Stats,
        resource: dict[str, AttributeValue],
        scope: tuple[str, str],
        schema_url: str,
        transport: Transport | None = None,
        *,
        lock_queue_dir: bool = True,
        delay_s: float | None = None,
    ) -> None:
        self._proto = ProtoEncoder(resource, scope[0], scope[1], schema_url)
        self._json = settings.protocol == "http/json"
        self._resource, self._scope, self._schema_url = resource, scope, schema_url

        def connect() -> RetrySender:
            return RetrySender(transport or make_transport(settings), settings.timeout_s)

        queue, lock = None, None
        if settings.durable_queue_dir is not None:
            folder = Path(settings.durable_queue_dir)
            if lock_queue_dir:
                lock = DirLock(folder, SIDECAR_LOCK)
                lock.acquire_or_fail()
            max_bytes = int(settings.queue_max_mb * 2**20)
            queue = DurableQueue(folder, max_bytes, settings.max_batch_spans, stats, self.name)
        sender = OtlpBatchSender(stats, self.encode, connect, self.name)
        super().__init__(settings, stats, sender, queue, lock, delay_s)

    @property
    def encoder(self) -> str:
        """Which encoder writes the requests (for the startup log)."""
        return "OTLP/JSON" if self._json else f"OTLP protobuf, {self._proto.description}"

    async def start(self) -> None:
        log.info("OTLP trace export: %s", self.encoder)
        await super().start()

    def encode(self, batch: Sequence[Item]) -> bytes:
        records = [item for item in batch if isinstance(item, SpanRecord)]
        if self._json:
            if len(records) != len(batch):
                raise ValueError("spans queued as OTLP protobuf cannot be sent as OTLP/JSON (the protocol changed)")
            return otlp_json.encode_request(records, self._resource, self._scope[0], self._scope[1], self._schema_url)
        if len(records) == len(batch):
            return self._proto.encode(records)
        fields = [item.fields if isinstance(item, EncodedSpans) else self._proto.span_fields([item]) for item in batch]
        return self._proto.encode_fields(b"".join(fields))
