"""The MCP proxy's client to its upstream: HTTP/1.1 to one origin over kept-alive connections, lean on purpose.

A proxied call costs the sidecar a second HTTP exchange, and on a busy machine
that hop's CPU is the latency it adds. httpx spent most of its share in layers
the proxy does not need (auth and redirect flows, cookies, URL and header
models, anyio) and wrote each request in two socket writes (head, then body).
This client is the part that is needed: a :class:`otel_bridge.http1.Connection`
(``h11``, asyncio streams, one write per request; shared with the OTLP/HTTP
exporter), a pool of idle connections to the one origin, and the answer's body
handed over chunk by chunk as it arrives (chunked framing removed, content
encoding untouched).

A kept-alive connection the server has since closed is found when the request
on it gets no answer at all; the request is then sent once more on a new
connection (as browsers do), never after any byte of an answer arrived.
Reading has no timeout (an MCP stream may idle for hours); connecting has one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import h11

from otel_bridge.http1 import READ_CHUNK as _READ
from otel_bridge.http1 import Connection as _Connection
from otel_bridge.http1 import Headers as _Headers
from otel_bridge.http1 import reusable


class UpstreamUnreachable(Exception):
    """No answer could be had: connection refused or timed out, HTTP broken before an answer (either side)."""


class UpstreamResponse:
    """An answer whose status and headers have arrived; :meth:`body` yields its content as it comes."""

    def __init__(self, pool: Upstream, connection: _Connection, status: int, headers: _Headers) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self.status = status
        self.headers = headers

    async def body(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        while True:
            event = await connection.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._connection = None
                self._pool.release(connection)
                return
            else:
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} in a response body")

    async def aclose(self) -> None:
        """Done with the answer: a connection whose answer was not read to its end is closed, not reused."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class Upstream:
    """Requests to the one origin of ``url``; a request's target is ``url``'s path and query plus the caller's."""

    def __init__(self, url: str, connect_timeout_s: float, max_idle: int = 100) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._host_header = parts.netloc.rpartition("@")[2].encode("ascii")
        self._path = ((parts.path or "/") + ("?" + parts.query if parts.query else "")).encode("ascii")
        self._join = b"&" if parts.query else b"?"
        self._connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle
        self._idle: list[_Connection] = []

    async def request(self, method: bytes, query: bytes, headers: _Headers, body: bytes) -> UpstreamResponse:
        """Send one request (``headers`` already without hop-by-hop ones) and wait for the answer's head."""
        target = self._path + self._join + query if query else self._path
        head = [(b"host", self._host_header), *headers]
        if body or method in (b"POST", b"PUT", b"PATCH"):
            head.append((b"content-length", b"%d" % len(body)))
        for connection in reusable(self._idle):
            try:
                return await self._exchange(connection, method, target, head, body)
            except (ConnectionError, h11.ProtocolError) as exc:
                connection.close()
                if connection.received:
                    raise UpstreamUnreachable(type(exc).__name__) from exc
                # no byte of an answer: the server had closed this idle connection; send on a new one
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(self._host, self._port, ssl=self._ssl, limit=_READ)
        except (OSError, TimeoutError) as exc:
            raise UpstreamUnreachable(type(exc).__name__) from exc
        connection = _Connection(reader, writer)
        try:
            return await self._exchange(connection, method, target, head, body)
        except (ConnectionError, h11.ProtocolError) as exc:
            connection.close()
            raise UpstreamUnreachable(type(exc).__name__) from exc

    async def _exchange(
        self, connection: _Connection, method: bytes, target: bytes, head: _Headers, body: bytes
    ) -> UpstreamResponse:
        await connection.send_request(method, target, head, body)
        event = await connection.response()
        return UpstreamResponse(self, connection, event.status_code, list(event.headers.raw_items()))

    def release(self, connection: _Connection) -> None:
        """A connection whose exchange ended: kept for the next request when both sides may go on."""
        if len(self._idle) < self._max_idle and connection.reusable():
            self._idle.append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
