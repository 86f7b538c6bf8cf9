"""OTLP/HTTP (protobuf or JSON) over one keep-alive httpx client: the HTTP leaf of the export chain.

Classification follows the OTLP/HTTP specification: 2xx is success (a
protobuf body may carry a partial success), 429/502/503/504 and connection
errors are retryable (honouring ``Retry-After``, in seconds or as an HTTP
date), every other status is permanent.
"""

from __future__ import annotations

import gzip
import time
from email.utils import parsedate_to_datetime

import httpx

from otel_bridge.config import OtlpEndpoint
from otel_bridge.sinks.export.response import rejected_in
from otel_bridge.sinks.export.result import Outcome, SendResult

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
_DETAIL_CHARS = 200


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now; ``None`` when absent or unreadable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpTransport:
    """OTLP/HTTP with a keep-alive connection pool. ``client_transport`` replaces the network in tests."""

    def __init__(
        self,
        settings: OtlpEndpoint,
        *,
        json_body: bool = False,
        client_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert settings.endpoint is not None
        self._url = settings.endpoint
        self._json = json_body
        headers = {"Content-Type": "application/json" if json_body else "application/x-protobuf", **settings.headers}
        self._gzip = settings.compression == "gzip"
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
        verify: str | bool = settings.certificate or True
        self._client = httpx.AsyncClient(
            headers=headers, verify=verify, timeout=settings.timeout_s, transport=client_transport
        )

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        if self._gzip:
            body = gzip.compress(body, compresslevel=5)
        try:
            response = await self._client.post(self._url, content=body, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return SendResult(Outcome.RETRYABLE, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            rejected, message = (0, "") if self._json else rejected_in(response.content)
            return SendResult(Outcome.SUCCESS, message, rejected=rejected)
        detail = f"HTTP {response.status_code}: {response.text[:_DETAIL_CHARS]}"
        if response.status_code in RETRYABLE_STATUS:
            return SendResult(Outcome.RETRYABLE, detail, retry_after_s(response.headers.get("retry-after")))
        return SendResult(Outcome.PERMANENT, detail)

    async def close(self) -> None:
        await self._client.aclose()
