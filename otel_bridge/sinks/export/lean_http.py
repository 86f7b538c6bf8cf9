"""OTLP/HTTP over kept-alive HTTP/1.1 connections of our own: the HTTP leaf of the export chain.

The worker process sends a request every batch, and httpx spent most of its share of the
worker's CPU in layers an OTLP POST does not need (auth and redirect flows, cookies, URL
and header models, anyio, its pool's locks): about 60 % of the worker's CPU in the profile
of a sidecar exporting to a local collector (BENCHMARKS.md, "OTLP/HTTP send"). This leaf is
a :class:`~otel_bridge.sinks.export.http_exchange.Connection` (asyncio streams, the request's
head built once and the request written in one call, the answer read by hand by ``h11``'s
rules: cheaper than ``h11`` itself, which this leaf used before) and a small pool of idle
connections to the one origin.

It answers exactly as :class:`~otel_bridge.sinks.export.http_transport.HttpTransport` (the
httpx leaf) does, by the same :func:`~otel_bridge.sinks.export.http_transport.classify`: the
same headers (``Content-Type``, ``Content-Encoding: gzip`` when compressing, the configured
ones), TLS against the same trust store (``http_transport.tls_context``: ``certificate`` when
set, else certifi's roots, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), one deadline per attempt
(connect, write and read together), Retry-After, partial success. Proxies are httpx's:
:func:`otel_bridge.sinks.export.factory.make_transport` picks the httpx leaf when a proxy
variable could apply to the endpoint.

A kept-alive connection the collector has since closed is found when the request on it
gets no byte of an answer; the request is then sent once more on a new connection (OTLP
exports are idempotent: the span ids are deterministic). A connection whose exchange did
not end cleanly (a timeout, a cancelled send, an answer too large to read) is closed, never
reused.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import zlib
from urllib.parse import unquote, urlsplit

from otel_bridge.config import OtlpEndpoint
from otel_bridge.http1 import reusable
from otel_bridge.sinks.export.http_exchange import (
    Answer,
    AnswerTooLarge,
    Connection,
    RemoteProtocolError,
    request_head,
)
from otel_bridge.sinks.export.http_transport import classify, request_headers, tls_context
from otel_bridge.sinks.export.result import Outcome, SendResult

MAX_IDLE = 4
"""Idle connections kept: the exporter sends one batch at a time, so one is the usual case."""
MAX_ANSWER_BYTES = 4 << 20
"""An export answer is a few bytes (a partial success at most); past this the rest is not read."""


class ConnectError(Exception):
    """No connection could be made (refused, unreachable, TLS failed): named as the httpx leaf names it."""


class LeanHttpTransport:
    """OTLP/HTTP (protobuf or JSON) to one endpoint over kept-alive HTTP/1.1 connections."""

    def __init__(self, settings: OtlpEndpoint, *, json_body: bool = False) -> None:
        assert settings.endpoint is not None
        parts = urlsplit(settings.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {settings.endpoint!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = tls_context(settings.certificate) if parts.scheme == "https" else None
        if self._ssl is not None:
            self._ssl.set_alpn_protocols(["http/1.1"])
        self._target = ((parts.path or "/") + ("?" + parts.query if parts.query else "")).encode("ascii")
        self._json = json_body
        self._gzip = settings.compression == "gzip"
        fixed = request_headers(settings, json_body=json_body)
        if not any(k.lower() == "host" for k in fixed):
            fixed = {"Host": parts.netloc.rpartition("@")[2], **fixed}
        if parts.username is not None:  # as httpx does: the URL's user and password as basic auth, over any header
            fixed = {k: v for k, v in fixed.items() if k.lower() != "authorization"}
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            fixed["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode("ascii")
        self._head = b""
        self._invalid: str | None = None  # a header that cannot be sent: every send says so, as h11 did
        try:
            self._head = request_head(
                b"POST", self._target, [(k.encode("latin-1"), v.encode("latin-1")) for k, v in fixed.items()]
            )
        except (ValueError, UnicodeEncodeError) as exc:
            self._invalid = f"LocalProtocolError: {exc}"
        self._idle: list[Connection] = []
        self._closed = False

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        if self._invalid is not None:
            return SendResult(Outcome.RETRYABLE, self._invalid)
        if self._gzip:
            body = gzip.compress(body, compresslevel=5)
        try:
            async with asyncio.timeout(timeout_s):
                answer = await self._exchange(body)
        except TimeoutError:
            return SendResult(Outcome.RETRYABLE, f"TimeoutError: no answer within {timeout_s:g} s")
        except (OSError, RemoteProtocolError, AnswerTooLarge, ConnectError) as exc:
            return SendResult(Outcome.RETRYABLE, f"{type(exc).__name__}: {exc}")
        content = _decoded(answer.body, answer.headers.get(b"content-encoding"))
        return classify(answer.status, content, answer.headers.get(b"retry-after"), json_body=self._json)

    async def _exchange(self, body: bytes) -> Answer:
        for connection in reusable(self._idle):
            try:
                return await self._on(connection, body)
            except (OSError, RemoteProtocolError):
                if connection.received:
                    raise
                # no byte of an answer: the collector had closed this idle connection; send on a new one
        try:
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._ssl else None
            )
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        return await self._on(Connection(reader, writer), body)

    async def _on(self, connection: Connection, body: bytes) -> Answer:
        """One exchange; the connection goes back to the pool only when it ended cleanly."""
        clean = False
        try:
            answer = await connection.exchange(self._head, body, MAX_ANSWER_BYTES)
            clean = True
        finally:
            if clean and not self._closed and len(self._idle) < MAX_IDLE and connection.reusable:
                self._idle.append(connection)
            else:
                connection.close()
        return answer

    async def close(self) -> None:
        """Close the idle connections; one in use closes when its exchange ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _decoded(body: bytes, encoding: bytes | None) -> bytes:
    """The answer's content as httpx would read it: gzip and deflate undone (nothing else is asked for)."""
    try:
        if encoding == b"gzip":
            return gzip.decompress(body)
        if encoding == b"deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error):
        return b""  # unreadable: no partial success, no detail
    return body
