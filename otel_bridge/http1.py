"""One HTTP/1.1 client connection over asyncio streams and ``h11``: the lean client of the MCP proxy's upstream hop.

The MCP proxy's upstream client (:mod:`otel_bridge.sources.mcp_upstream`) pays for an
HTTP exchange per request it forwards, and httpx spent most of that in layers it does
not need (auth and redirect flows, cookies, URL and header models, anyio, a pool with
its own locks). What it does need is here: ``h11`` for the protocol (the parser httpx
uses underneath; its answers stream, event by event), asyncio streams, and the whole
request written in one ``write``. The OTLP/HTTP exporter, whose answers are small and
read whole, frames its exchanges by hand instead (:mod:`otel_bridge.sinks.export.http_exchange`)
and shares only the pool's :func:`reusable`. Each caller keeps its own pool of idle
connections and its own policy for timeouts and retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Protocol, TypeVar

import h11

READ_CHUNK = 65536
Headers = list[tuple[bytes, bytes]]


class Connection:
    """One connection to an origin; ``received`` tells whether any byte of the current exchange's answer came.

    A kept-alive connection the server has since closed shows as an exchange with no byte
    of an answer (``received`` still false): the caller may then send the request again on
    a new connection, as browsers do, and never after any byte of an answer arrived.
    """

    __slots__ = ("h11", "reader", "received", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.received = False

    @property
    def stale(self) -> bool:
        """Closed by either side while idle (a cheap check; a reused connection can still turn out closed)."""
        return self.reader.at_eof() or self.writer.is_closing()

    async def send_request(self, method: bytes, target: bytes, headers: Headers, body: bytes) -> None:
        """The whole request in one write (``headers`` carry the framing: content-length or none)."""
        state = self.h11
        self.received = False
        wire = state.send(h11.Request(method=method, target=target, headers=headers)) or b""
        if body:
            wire += state.send(h11.Data(data=body)) or b""
        self.writer.write(wire + (state.send(h11.EndOfMessage()) or b""))
        await self.writer.drain()

    async def next_event(self) -> object:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(READ_CHUNK)
            self.received = self.received or bool(data)
            self.h11.receive_data(data)  # b"" at the end: h11 turns it into an error or the end

    async def response(self) -> h11.Response:
        """The answer's head (informational answers skipped)."""
        while True:
            event = await self.next_event()
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} before a response")

    def reusable(self) -> bool:
        """Both sides finished the exchange and may go on: ready for the next request (its cycle started)."""
        state = self.h11
        if state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
            return True
        return False

    def close(self) -> None:
        self.writer.close()


class Pooled(Protocol):
    """What a pool of idle connections needs of one (this module's, or the exporter's hand-framed one)."""

    @property
    def stale(self) -> bool: ...

    def close(self) -> None: ...


PooledT = TypeVar("PooledT", bound=Pooled)


def reusable(idle: list[PooledT]) -> Iterator[PooledT]:
    """The pool's idle connections to try, most recent first; a stale one is closed and skipped.

    Each one yielded has left the pool: the caller puts it back only after a clean exchange.
    """
    while idle:
        connection = idle.pop()
        if connection.stale:
            connection.close()
            continue
        yield connection
