"""OTLP/HTTP (protobuf or JSON) over one keep-alive httpx client: the HTTP leaf for proxied endpoints.

The sidecar sends through :mod:`~otel_bridge.sinks.export.lean_http` (its own HTTP/1.1
connections, cheaper per request) unless a proxy variable could apply to the endpoint: proxies
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) are httpx's, so such an endpoint
keeps this leaf. Both answer through :func:`classify`.

Classification follows the OTLP/HTTP specification: 2xx is success (a
protobuf body may carry a partial success), 429/502/503/504 and connection
errors are retryable (honouring ``Retry-After``, in seconds or as an HTTP
date), every other status is permanent.
"""

from __future__ import annotations

import gzip
import os
import ssl
import time
from email.utils import parsedate_to_datetime

import httpx

from otel_bridge import __version__
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


def request_headers(settings: OtlpEndpoint, *, json_body: bool) -> dict[str, str]:
    """What both HTTP leaves send besides framing: ours, then the configured ones (which replace ours, any case)."""
    ours = {
        "User-Agent": f"otel-bridge/{__version__}",
        "Content-Type": "application/json" if json_body else "application/x-protobuf",
    }
    configured = {k.lower() for k in settings.headers}
    headers = {k: v for k, v in ours.items() if k.lower() not in configured} | settings.headers
    if settings.compression == "gzip":
        headers["Content-Encoding"] = "gzip"
    return headers


def tls_context(certificate: str | None) -> ssl.SSLContext:
    """What both HTTP leaves trust: ``certificate`` (a CA bundle, or a folder of them) when set, else
    httpx's default (certifi's roots, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set)."""
    if certificate is None:
        return httpx.create_ssl_context()
    if os.path.isdir(certificate):
        return ssl.create_default_context(capath=certificate)
    return ssl.create_default_context(cafile=certificate)


def classify(status: int, content: bytes, retry_after: bytes | str | None, *, json_body: bool) -> SendResult:
    """One HTTP answer as a :class:`SendResult` (both HTTP leaves): success with its partial success, or why not."""
    if 200 <= status < 300:
        rejected, message = (0, "") if json_body else rejected_in(content)
        return SendResult(Outcome.SUCCESS, message, rejected=rejected)
    detail = f"HTTP {status}: {content[: _DETAIL_CHARS * 4].decode(errors='replace')[:_DETAIL_CHARS]}"
    if status in RETRYABLE_STATUS:
        if isinstance(retry_after, bytes):
            retry_after = retry_after.decode("latin-1")
        return SendResult(Outcome.RETRYABLE, detail, retry_after_s(retry_after))
    return SendResult(Outcome.PERMANENT, detail)


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
        self._gzip = settings.compression == "gzip"
        headers = request_headers(settings, json_body=json_body)
        self._client = httpx.AsyncClient(
            headers=headers,
            verify=tls_context(settings.certificate),
            timeout=settings.timeout_s,
            transport=client_transport,
        )

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        if self._gzip:
            body = gzip.compress(body, compresslevel=5)
        try:
            response = await self._client.post(self._url, content=body, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return SendResult(Outcome.RETRYABLE, f"{type(exc).__name__}: {exc}")
        return classify(
            response.status_code, response.content, response.headers.get("retry-after"), json_body=self._json
        )

    async def close(self) -> None:
        await self._client.aclose()
