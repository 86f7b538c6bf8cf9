"""OTLP/gRPC over one grpc.aio channel: the gRPC leaf of the export chain.

The request is already encoded, so it goes out through a generic unary call
(no generated stubs, no protobuf runtime); ``method`` names the signal's
service. Status codes are classified as the OTLP/gRPC specification says;
a ``RetryInfo`` in the status details (``RESOURCE_EXHAUSTED``/``UNAVAILABLE``
throttling) is the receiver's own wait.

Recovery after an outage: the channel reconnects on its own backoff, which
gRPC lets grow to 120 s by default, so a collector that came back could wait
that long to be seen (a drill measured 33 s). ``CHANNEL_OPTIONS`` bound it
to ``RECONNECT_MAX_MS`` (the export retry's own longest wait), and every call
is ``wait_for_ready``: while the channel is reconnecting a call waits for it
(within its timeout) instead of failing at once with ``UNAVAILABLE``, so the
first attempt after the collector returns goes out as soon as it is reachable.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from otel_bridge.config import OtlpEndpoint
from otel_bridge.sinks.export.response import rejected_in, retry_delay_in
from otel_bridge.sinks.export.result import Outcome, SendResult

GRPC_TRACES_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE_CODES = frozenset(
    {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED", "CANCELLED", "OUT_OF_RANGE", "DATA_LOSS"}
)
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
RECONNECT_INITIAL_MS = 250
RECONNECT_MAX_MS = 5_000
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", RECONNECT_INITIAL_MS),
    ("grpc.min_reconnect_backoff_ms", RECONNECT_INITIAL_MS),
    ("grpc.max_reconnect_backoff_ms", RECONNECT_MAX_MS),
)


def _retry_delay(trailing_metadata: Any) -> float | None:
    for key, value in trailing_metadata or ():
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            return retry_delay_in(value)
    return None


class GrpcTransport:
    """OTLP/gRPC: the already-encoded request bytes go out through a generic unary call."""

    def __init__(self, settings: OtlpEndpoint, method: str = GRPC_TRACES_METHOD) -> None:
        import grpc  # only the processes that export over gRPC pay for importing it
        import grpc.aio

        assert settings.endpoint is not None
        self._grpc = grpc
        endpoint = settings.endpoint
        parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
        target = parsed.netloc or endpoint
        self._target = target
        insecure = settings.insecure if settings.insecure is not None else parsed.scheme in ("http", "")
        compression = grpc.Compression.Gzip if settings.compression == "gzip" else grpc.Compression.NoCompression
        if insecure:
            self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, compression=compression)
        else:
            root = None
            if settings.certificate:
                with open(settings.certificate, "rb") as fh:
                    root = fh.read()
            creds = grpc.ssl_channel_credentials(root_certificates=root)
            self._channel = grpc.aio.secure_channel(target, creds, options=CHANNEL_OPTIONS, compression=compression)
        self._call = self._channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        self._metadata = tuple((k.lower(), v) for k, v in settings.headers.items())

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        try:
            response = await self._call(body, timeout=timeout_s, metadata=self._metadata, wait_for_ready=True)
        except self._grpc.aio.AioRpcError as exc:
            code = exc.code()
            detail = f"gRPC {code.name}: {exc.details()}"
            if code.name == "DEADLINE_EXCEEDED" and self._channel.get_state() != self._grpc.ChannelConnectivity.READY:
                # wait_for_ready: an unreachable receiver shows as a deadline spent waiting for the channel.
                detail = f"gRPC UNAVAILABLE: no connection to {self._target} within {timeout_s:.1f} s"
            if code.name not in RETRYABLE_CODES:
                return SendResult(Outcome.PERMANENT, detail)
            return SendResult(Outcome.RETRYABLE, detail, _retry_delay(exc.trailing_metadata()))
        rejected, message = rejected_in(response or b"")
        return SendResult(Outcome.SUCCESS, message, rejected=rejected)

    async def close(self) -> None:
        await self._channel.close()
