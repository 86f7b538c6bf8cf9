"""OTLP trace export over gRPC, HTTP/protobuf or HTTP/JSON: batch, encode, send, retry.

``consume`` only appends to a bounded queue (it never blocks ingest); one
background task drains it in batches of ``max_batch_spans`` or every
``schedule_delay_s``. Transient failures (HTTP 429/502/503/504, gRPC
UNAVAILABLE and friends, connection errors) are retried with exponential
backoff and jitter, honouring ``Retry-After``, for up to ``max_retry_s``;
permanent ones (other 4xx, INVALID_ARGUMENT...) drop the batch at once. Every
dropped span is counted in :class:`Stats` under a named reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gzip
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

import httpx

from otel_bridge.config import OtlpEndpoint, OtlpSettings
from otel_bridge.model import AttributeValue, SpanRecord
from otel_bridge.sinks import otlp_json
from otel_bridge.sinks.base import BatchQueue
from otel_bridge.sinks.otlp_proto import ProtoEncoder
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

GRPC_TRACES_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_BACKOFF_BASE_S = 0.25
_BACKOFF_MAX_S = 5.0


class Outcome(enum.Enum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    retry_after_s: float | None = None
    rejected_spans: int = 0


class Transport(Protocol):
    async def send(self, body: bytes, timeout_s: float) -> SendResult: ...

    async def close(self) -> None: ...


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def rejected_spans_in(response: bytes) -> tuple[int, str]:
    """``partial_success`` of an ``ExportTraceServiceResponse``: (rejected spans, message)."""
    try:
        pos = 0
        while pos < len(response):
            tag, pos = _read_varint(response, pos)
            if tag != (1 << 3 | 2):
                return 0, ""
            length, pos = _read_varint(response, pos)
            inner, pos = response[pos : pos + length], pos + length
            rejected, message, ipos = 0, "", 0
            while ipos < len(inner):
                itag, ipos = _read_varint(inner, ipos)
                if itag == (1 << 3 | 0):
                    rejected, ipos = _read_varint(inner, ipos)
                elif itag == (2 << 3 | 2):
                    ilen, ipos = _read_varint(inner, ipos)
                    message, ipos = inner[ipos : ipos + ilen].decode(errors="replace"), ipos + ilen
                else:
                    return rejected, message
            return rejected, message
    except IndexError:
        pass
    return 0, ""


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class HttpTransport:
    """OTLP/HTTP with a keep-alive connection pool."""

    def __init__(self, settings: OtlpEndpoint, *, json_body: bool = False) -> None:
        assert settings.endpoint is not None
        self._url = settings.endpoint
        self._json = json_body
        headers = {"Content-Type": "application/json" if json_body else "application/x-protobuf", **settings.headers}
        self._gzip = settings.compression == "gzip"
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
        verify: str | bool = settings.certificate or True
        self._client = httpx.AsyncClient(headers=headers, verify=verify, timeout=settings.timeout_s)

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        if self._gzip:
            body = gzip.compress(body, compresslevel=5)
        try:
            response = await self._client.post(self._url, content=body, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return SendResult(Outcome.RETRYABLE, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            rejected, message = (0, "") if self._json else rejected_spans_in(response.content)
            return SendResult(Outcome.SUCCESS, message, rejected_spans=rejected)
        detail = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code in _RETRYABLE_HTTP:
            return SendResult(Outcome.RETRYABLE, detail, _retry_after(response.headers.get("retry-after")))
        return SendResult(Outcome.PERMANENT, detail)

    async def close(self) -> None:
        await self._client.aclose()


class GrpcTransport:
    """OTLP/gRPC: the already-encoded request bytes go out through a generic unary call."""

    def __init__(self, settings: OtlpEndpoint, method: str = GRPC_TRACES_METHOD) -> None:
        import grpc
        import grpc.aio

        assert settings.endpoint is not None
        self._grpc = grpc
        endpoint = settings.endpoint
        parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
        target = parsed.netloc or endpoint
        insecure = settings.insecure if settings.insecure is not None else parsed.scheme in ("http", "")
        compression = grpc.Compression.Gzip if settings.compression == "gzip" else grpc.Compression.NoCompression
        if insecure:
            self._channel = grpc.aio.insecure_channel(target, compression=compression)
        else:
            root = None
            if settings.certificate:
                with open(settings.certificate, "rb") as fh:
                    root = fh.read()
            creds = grpc.ssl_channel_credentials(root_certificates=root)
            self._channel = grpc.aio.secure_channel(target, creds, compression=compression)
        self._call = self._channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        self._metadata = tuple((k.lower(), v) for k, v in settings.headers.items())
        codes = grpc.StatusCode
        self._retryable = frozenset(
            {
                codes.UNAVAILABLE,
                codes.RESOURCE_EXHAUSTED,
                codes.DEADLINE_EXCEEDED,
                codes.ABORTED,
                codes.CANCELLED,
                codes.OUT_OF_RANGE,
                codes.DATA_LOSS,
            }
        )

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        try:
            response = await self._call(body, timeout=timeout_s, metadata=self._metadata)
        except self._grpc.aio.AioRpcError as exc:
            detail = f"gRPC {exc.code().name}: {exc.details()}"
            outcome = Outcome.RETRYABLE if exc.code() in self._retryable else Outcome.PERMANENT
            return SendResult(outcome, detail)
        rejected, message = rejected_spans_in(response or b"")
        return SendResult(Outcome.SUCCESS, message, rejected_spans=rejected)

    async def close(self) -> None:
        await self._channel.close()


def make_transport(settings: OtlpEndpoint, grpc_method: str = GRPC_TRACES_METHOD) -> Transport:
    """The transport for one signal; ``grpc_method`` names the service (traces unless told)."""
    if settings.protocol == "grpc":
        return GrpcTransport(settings, grpc_method)
    return HttpTransport(settings, json_body=settings.protocol == "http/json")


class OtlpExporter:
    """A :class:`SpanSink` that batches and exports to one OTLP endpoint."""

    name = "otlp"

    def __init__(
        self,
        settings: OtlpSettings,
        stats: Stats,
        resource: dict[str, AttributeValue],
        scope: tuple[str, str],
        schema_url: str,
        transport: Transport | None = None,
    ) -> None:
        self._s = settings
        self._stats = stats
        self._queue = BatchQueue(settings.max_queue_spans, settings.max_batch_spans, stats)
        self._task: asyncio.Task[None] | None = None
        self._transport = transport
        self._proto = ProtoEncoder(resource, scope[0], scope[1], schema_url)
        self._resource, self._scope, self._schema_url = resource, scope, schema_url
        self._stopping = False
        self.last_error: str | None = None

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self._queue.offer(spans)

    def encode(self, batch: Sequence[SpanRecord]) -> bytes:
        if self._s.protocol == "http/json":
            return otlp_json.encode_request(batch, self._resource, self._scope[0], self._scope[1], self._schema_url)
        return self._proto.encode(batch)

    async def start(self) -> None:
        if self._transport is None:
            self._transport = make_transport(self._s)
        self._task = asyncio.create_task(self._run(), name="otlp-exporter")

    async def _run(self) -> None:
        while True:
            if not self._stopping:
                await self._queue.wait_batch(self._s.schedule_delay_s)
            if self._stopping:
                # Final drain, bounded by one export timeout.
                await self._drain(time.monotonic() + self._s.timeout_s)
                return
            await self._drain(time.monotonic() + self._s.max_retry_s)

    async def _drain(self, deadline: float) -> None:
        while self._queue:
            await self._export(self._queue.take(), deadline)

    async def _export(self, batch: list[SpanRecord], deadline: float) -> None:
        assert self._transport is not None
        try:
            body = self.encode(batch)
        except Exception:  # a bug here must not kill the exporter task
            log.exception("OTLP encoding failed; %d spans dropped", len(batch))
            self._stats.drop("export_encode_error", len(batch))
            return
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            result = await self._transport.send(body, max(0.1, min(self._s.timeout_s, remaining)))
            if result.outcome is Outcome.SUCCESS:
                accepted = len(batch) - result.rejected_spans
                self._stats.spans_exported[self.name] += accepted
                if result.rejected_spans:
                    self._stats.spans_export_failed[self.name] += result.rejected_spans
                    self._stats.drop("export_rejected_by_receiver", result.rejected_spans)
                    log.warning("receiver rejected %d spans: %s", result.rejected_spans, result.detail)
                self.last_error = None
                return
            self.last_error = result.detail
            delay = min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2**attempt) * (0.5 + random.random() / 2)
            if result.retry_after_s is not None:
                delay = max(delay, result.retry_after_s)
            if result.outcome is Outcome.PERMANENT or time.monotonic() + delay > deadline:
                reason = "export_permanent_error" if result.outcome is Outcome.PERMANENT else "export_retries_exhausted"
                self._stats.spans_export_failed[self.name] += len(batch)
                self._stats.drop(reason, len(batch))
                log.warning("OTLP export of %d spans failed (%s): %s", len(batch), reason, result.detail)
                return
            attempt += 1
            await asyncio.sleep(delay)

    async def force_flush(self, timeout_s: float | None = None) -> None:
        """Export everything queued now (used by ``replay --export`` and shutdown)."""
        await self._drain(time.monotonic() + (timeout_s if timeout_s is not None else self._s.timeout_s))

    async def shutdown(self) -> None:
        """Export what is queued (bounded by the export timeout, twice), then close."""
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
        if self._transport is not None:
            await self._transport.close()
