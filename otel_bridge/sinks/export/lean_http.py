"""OTLP/HTTP over kept-alive HTTP/1.1 connections of our own: the HTTP leaf of the export chain.

The worker process sends a request every batch, and httpx spent most of its share of the
worker's CPU in layers an OTLP POST does not need (auth and redirect flows, cookies, URL
and header models, anyio, its pool's locks): about 60 % of the worker's CPU in the profile
of a sidecar exporting to a local collector (BENCHMARKS.md, "OTLP/HTTP send"). This leaf is
an :class:`otel_bridge.http1.Connection` (``h11``, asyncio streams, the request in one write)
and a small pool of idle connections to the one origin.

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

import h11

from otel_bridge.config import OtlpEndpoint
from otel_bridge.http1 import Connection, Headers, reusable
from otel_bridge.sinks.export.http_transport import classify, request_headers, tls_context
from otel_bridge.sinks.export.result import Outcome, SendResult

MAX_IDLE = 4
"""Idle connections kept: the exporter sends one batch at a time, so one is the usual case."""
MAX_ANSWER_BYTES = 4 << 20
"""An export answer is a few bytes (a partial success at most); past this the rest is not read."""


class _TooLarge(Exception):
    pass


class ConnectError(Exception):
    """No connection could be made (refused, unreachable, TLS failed): named as the httpx leaf names it."""


class LeanHttpTransport:
    """OTLP/HTTP (protobuf or JSON) to one endpoint over kept-alive h11 connections."""

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
        self._headers: Headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in fixed.items()]
        self._idle: list[Connection] = []
        self._closed = False

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        if self._gzip:
            body = gzip.compress(body, compresslevel=5)
        headers = [*self._headers, (b"content-length", b"%d" % len(body))]
        try:
            async with asyncio.timeout(timeout_s):
                status, answer, answer_headers = await self._exchange(headers, body)
        except TimeoutError:
            return SendResult(Outcome.RETRYABLE, f"TimeoutError: no answer within {timeout_s:g} s")
        except (OSError, h11.ProtocolError, _TooLarge, ConnectError) as exc:
            return SendResult(Outcome.RETRYABLE, f"{type(exc).__name__}: {exc}")
        return classify(status, answer, answer_headers.get(b"retry-after"), json_body=self._json)

    async def _exchange(self, headers: Headers, body: bytes) -> tuple[int, bytes, dict[bytes, bytes]]:
        for connection in reusable(self._idle):
            try:
                return await self._on(connection, headers, body)
            except (OSError, h11.ProtocolError):
                if connection.received:
                    raise
                # no byte of an answer: the collector had closed this idle connection; send on a new one
        try:
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._ssl else None
            )
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        return await self._on(Connection(reader, writer), headers, body)

    async def _on(self, connection: Connection, headers: Headers, body: bytes) -> tuple[int, bytes, dict[bytes, bytes]]:
        """One exchange; the connection goes back to the pool only when it ended cleanly."""
        clean = False
        try:
            await connection.send_request(b"POST", self._target, headers, body)
            head = await connection.response()
            answer = bytearray()
            while True:
                event = await connection.next_event()
                if isinstance(event, h11.Data):
                    answer += event.data
                    if len(answer) > MAX_ANSWER_BYTES:
                        raise _TooLarge(f"an answer over {MAX_ANSWER_BYTES} bytes")
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} in a response body")
            answer_headers = dict(head.headers)  # h11 gives names lower-cased
            clean = True
        finally:
            if clean and not self._closed and len(self._idle) < MAX_IDLE and connection.reusable():
                self._idle.append(connection)
            else:
                connection.close()
        return head.status_code, _decoded(bytes(answer), answer_headers.get(b"content-encoding")), answer_headers

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
