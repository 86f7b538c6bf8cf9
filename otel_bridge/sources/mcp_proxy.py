"""The MCP proxy: a transparent Streamable-HTTP reverse proxy in front of an MCP server, tracing every exchange.

MCP is request/response: only a party in the path sees both sides, so this
source is one. :class:`McpProxy` is an ASGI app (mounted at ``mcp.path`` by
:mod:`otel_bridge.web.mcp`) that forwards each request to ``mcp.upstream``
(over :class:`~otel_bridge.sources.mcp_upstream.Upstream`'s kept-alive
connections) and streams the answer back as it comes: SSE chunk by chunk, JSON
as is, status and headers unchanged (hop-by-hop headers aside). It knows
nothing of the protocol's eras: the 2025-11-25 handshake (``Mcp-Session-Id``,
the standalone GET stream, ``DELETE``) and the stateless 2026-07-28 era pass
through alike.

Tracing never blocks, breaks or slows the traffic. The request path only
puts the pieces of an exchange (the request body, the answer's status and
headers, each chunk, the end) on a bounded queue without waiting, stamped with
the time the proxy saw them. One task (:meth:`McpProxy._trace_forever`) drains
the queue: it builds the exchange-log records from the pieces (the form
:mod:`otel_bridge.dialects.mcp` reads: one record per request, and per SSE
event of a streamed response), appends them to the ``mcp.record`` file, decodes
them with the ``mcp`` dialect and submits the events to the
:class:`~otel_bridge.pipeline.EventConsumer`. A full queue drops the rest of
that exchange from tracing; it, a body over ``mcp.max_traced_body_bytes`` or a
record that fails to trace is counted (``consumer.reject``), never raised into
the request. Because live tracing decodes the very records the log holds,
``otel-bridge replay --dialect mcp`` of the log rebuilds the same spans.

The records hold only the headers MCP defines (no ``Authorization``, no
cookies). The upstream is asked for an identity encoding so that the proxy can
read what it traces.

Concurrency: each request runs in its own handler task; a streamed response
is pumped by one task while another waits for the client to go away (then the
upstream stream is closed). The tracing task is started by :meth:`start` and,
at :meth:`shutdown`, drains what is queued, closes the log file and the
upstream client.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.types import Message, Receive, Scope, Send

from otel_bridge.config import McpSettings
from otel_bridge.dialects import mcp as mcp_dialect
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame, SSEParser
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.pipeline import EventConsumer
from otel_bridge.sources.mcp_upstream import Upstream, UpstreamResponse, UpstreamUnreachable

log = logging.getLogger(__name__)

SOURCE = "mcp_proxy"
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the transport sets itself: never forwarded.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"accept-encoding",
    }
)
_HOP_BY_HOP_RESPONSE = _HOP_BY_HOP - {b"content-length"}
# The headers an exchange record keeps: what MCP's Streamable HTTP transport defines, nothing secret.
_RECORDED_REQUEST = (
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
)
_RECORDED_RESPONSE = ("cache-control", "content-type", "mcp-session-id")
_EVENT_STREAM = "text/event-stream"
_EVENT_STREAM_BYTES = _EVENT_STREAM.encode()
_IDENTITY = (b"accept-encoding", b"identity")  # so that the proxy can read what it traces
TRACE_QUEUE_FULL = "mcp_trace_queue_full"
TRACE_BODY_TOO_LARGE = "mcp_body_too_large_to_trace"
TRACE_FAILED = "mcp_trace_failed"
UPSTREAM_UNREACHABLE = "mcp_upstream_unreachable"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _iso(stamp: float) -> str:
    """A record's time: ISO 8601 UTC with microseconds (the dialect reads it as the event time)."""
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _selected(headers: Iterable[tuple[bytes, bytes]], names: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        if key in names:
            out[key] = value.decode("latin-1")
    return out


def _sse_text(frame: Frame) -> str:
    """One SSE event written back as text (the record's body; CRLF, as MCP servers write it)."""
    lines = []
    if frame.id is not None:
        lines.append(f"id: {frame.id}")
    if frame.event is not None:
        lines.append(f"event: {frame.event}")
    for line in frame.data.decode("utf-8", errors="replace").split("\n"):
        lines.append(f"data: {line}")
    return "\r\n".join(lines) + "\r\n\r\n"


# What the request path queues for an exchange (the tracing task turns them into records).
REQUEST, STARTED, CHUNK, ENDED = range(4)
_Piece = tuple["Exchange", int, float, Any]


class Exchange:
    """One request/response pair.

    The request path only creates it and queues its pieces (the request body, the
    response's status and headers, each chunk, the end) with the time it saw them;
    everything else here is the tracing task's, which builds the records from them.
    """

    __slots__ = (
        "content_type",
        "dropped",
        "events",
        "json",
        "method",
        "number",
        "path",
        "request_headers",
        "response_headers",
        "session",
        "sse",
        "status",
        "too_large",
        "utf8",
    )

    def __init__(self, number: int, method: str, path: str, request_headers: list[tuple[bytes, bytes]]) -> None:
        self.number = number
        self.method = method
        self.path = path
        self.request_headers = request_headers
        self.dropped = False  # a piece found the queue full: the rest of the exchange is not traced
        self.session: str | None = None
        self.status = 0
        self.response_headers: dict[str, str] = {}
        self.content_type = ""
        self.sse: SSEParser | None = None
        self.utf8: codecs.IncrementalDecoder | None = None
        self.json = bytearray()
        self.too_large = False
        self.events = 0


class _Records:
    """The tracing task's side: an exchange's pieces, in queue order, to exchange-log records."""

    def __init__(self, consumer: EventConsumer, max_body: int) -> None:
        self._consumer = consumer
        self._max_body = max_body
        self._seq = itertools.count(1)

    def of(self, piece: _Piece, out: list[bytes]) -> None:
        exchange, kind, stamp, data = piece
        if kind == CHUNK:
            self._chunk(exchange, stamp, data, out)
        elif kind == REQUEST:
            headers = _selected(exchange.request_headers, _RECORDED_REQUEST)
            exchange.session = headers.get("mcp-session-id") or None
            record = self._base(exchange, "request")
            record["headers"] = headers
            record["body"] = self._parsed(data) if data else None
            record["time"] = _iso(stamp)
            out.append(_encode(record))
        elif kind == STARTED:
            status, raw = data
            exchange.status = status
            exchange.response_headers = _selected(raw, _RECORDED_RESPONSE)
            exchange.session = exchange.response_headers.get("mcp-session-id") or exchange.session
            content_type = exchange.response_headers.get("content-type", "").split(";", 1)[0].strip().lower()
            exchange.content_type = content_type
            if content_type == _EVENT_STREAM:
                exchange.sse = SSEParser()
                exchange.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        else:
            self._ended(exchange, stamp, out)

    def _chunk(self, exchange: Exchange, stamp: float, data: bytes, out: list[bytes]) -> None:
        if exchange.sse is not None and exchange.utf8 is not None:
            for frame in exchange.sse.feed(exchange.utf8.decode(data)):
                self._emit(exchange, _sse_text(frame), stamp, out)
        elif not exchange.too_large:
            exchange.json += data
            if len(exchange.json) > self._max_body:
                exchange.too_large = True
                exchange.json = bytearray()
                self._consumer.reject(TRACE_BODY_TOO_LARGE)

    def _ended(self, exchange: Exchange, stamp: float, out: list[bytes]) -> None:
        if exchange.sse is not None and exchange.utf8 is not None:
            for frame in exchange.sse.feed(exchange.utf8.decode(b"", final=True)) + exchange.sse.close():
                self._emit(exchange, _sse_text(frame), stamp, out)
            if exchange.events == 0:
                self._emit(exchange, None, stamp, out)
            return
        body = bytes(exchange.json)
        parsed = self._parsed(body) if body and exchange.content_type.endswith("json") else None
        self._emit(exchange, parsed, stamp, out)

    def _base(self, exchange: Exchange, direction: str) -> dict[str, Any]:
        return {
            "seq": next(self._seq),
            "exchange": exchange.number,
            "direction": direction,
            "http_session": exchange.session,
            "http_method": exchange.method,
            "path": exchange.path,
        }

    def _emit(self, exchange: Exchange, body: object, stamp: float, out: list[bytes]) -> None:
        exchange.events += 1
        record = self._base(exchange, "response")
        record["status"] = exchange.status
        record["headers"] = exchange.response_headers
        record["content_type"] = exchange.content_type or None
        record["body"] = body
        record["time"] = _iso(stamp)
        out.append(_encode(record))

    def _parsed(self, body: bytes) -> object:
        if len(body) > self._max_body:
            self._consumer.reject(TRACE_BODY_TOO_LARGE)
            return None
        try:
            return _decode(body)
        except (msgspec.DecodeError, RecursionError):
            return None  # not JSON: passed through, traced without content (the dialect sees no message)


class McpProxy:
    """The ASGI app in front of the MCP server; a :class:`~otel_bridge.pipeline.Lifecycle` for its tracing task."""

    def __init__(self, consumer: EventConsumer, settings: McpSettings) -> None:
        if settings.upstream is None:
            raise ValueError("the MCP proxy needs mcp.upstream")
        self.consumer = consumer
        self.settings = settings
        self._upstream = settings.upstream
        self._exchanges = itertools.count(1)
        self._queue: asyncio.Queue[_Piece | None] = asyncio.Queue(maxsize=settings.trace_queue)
        self._records = _Records(consumer, settings.max_traced_body_bytes)
        self._decoder = StreamDecoder(
            StreamContext(source=SOURCE, stream_key=f"{SOURCE}-{time.time_ns()}"),
            mcp_dialect.DIALECT,
            on_reject=consumer.reject,
        )
        self._client: Upstream | None = None
        self._task: asyncio.Task[None] | None = None
        # Opened now, so that a path that cannot be written fails startup; closed at shutdown.
        self._record = open(settings.record, "ab") if settings.record is not None else None  # noqa: SIM115

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        self._client = Upstream(self._upstream, self.settings.connect_timeout_s)
        self._task = asyncio.create_task(self._trace_forever(), name="mcp-proxy-trace")

    async def shutdown(self) -> None:
        if self._task is not None:
            await self._queue.put(None)  # the end marker (waits for room): what is queued before it is traced first
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._record is not None:
            self._record.close()
            self._record = None

    # -- tracing --------------------------------------------------------------------
    def enqueue(self, exchange: Exchange, kind: int, data: Any) -> None:
        """Queue a piece of ``exchange`` for the tracing task without waiting.

        A full queue drops the exchange from tracing from that piece on (counted
        once): a record built from part of a stream would be wrong, not just late.
        """
        if exchange.dropped:
            return
        try:
            self._queue.put_nowait((exchange, kind, time.time(), data))
        except asyncio.QueueFull:
            exchange.dropped = True
            self.consumer.reject(TRACE_QUEUE_FULL)

    async def _trace_forever(self) -> None:
        while True:
            piece = await self._queue.get()
            batch = [piece]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            ended = None in batch
            self._trace([p for p in batch if p is not None])
            if ended:
                return

    def _trace(self, batch: list[_Piece]) -> None:
        records: list[bytes] = []
        try:
            for piece in batch:
                self._records.of(piece, records)
        except Exception:
            log.exception("building MCP exchange records failed; the traffic is not affected")
            self.consumer.reject(TRACE_FAILED, len(batch))
            return
        if not records:
            return
        try:
            if self._record is not None:
                self._record.write(b"".join(d + b"\n" for d in records))
                self._record.flush()
        except OSError:
            log.exception("cannot write the MCP exchange log %s", self.settings.record)
        try:
            events = self._decoder.feed(Frame(None, d) for d in records)
            self._decoder.rejections.clear()  # counted by on_reject already; a long-lived stream keeps no list
            if events:
                self.consumer.submit(events)
        except Exception:
            log.exception("tracing MCP exchanges failed; the traffic is not affected")
            self.consumer.reject(TRACE_FAILED, len(records))

    # -- proxying -------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        client = self._client
        if client is None:
            await _plain(send, 503, b"the MCP proxy is not running")
            return
        body = await _read_body(receive)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        exchange = Exchange(next(self._exchanges), scope["method"], scope["path"], headers)
        self.enqueue(exchange, REQUEST, body)
        try:
            upstream = await client.request(
                scope["method"].encode("ascii"),
                scope.get("query_string", b""),
                [*((k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP), _IDENTITY],
                body,
            )
        except UpstreamUnreachable as exc:
            self.consumer.reject(UPSTREAM_UNREACHABLE)
            self.enqueue(exchange, STARTED, (502, [(b"content-type", b"text/plain")]))
            self.enqueue(exchange, ENDED, None)
            await _plain(send, 502, f"MCP upstream unreachable: {exc}".encode())
            return
        try:
            raw_headers = [(k, v) for k, v in upstream.headers if k.lower() not in _HOP_BY_HOP_RESPONSE]
            self.enqueue(exchange, STARTED, (upstream.status, raw_headers))
            await send({"type": "http.response.start", "status": upstream.status, "headers": raw_headers})
            if _streamed(raw_headers):
                await _until_disconnect(self._pump(upstream, exchange, send), receive)
            else:
                await self._pump(upstream, exchange, send)
        finally:
            await upstream.aclose()
            self.enqueue(exchange, ENDED, None)

    async def _pump(self, upstream: UpstreamResponse, exchange: Exchange, send: Send) -> None:
        """Each chunk to the client as it comes, then onto the tracing queue."""
        async for chunk in upstream.body():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.enqueue(exchange, CHUNK, chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _streamed(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(_EVENT_STREAM_BYTES) for k, v in headers)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _until_disconnect(pump: Any, receive: Receive) -> None:
    """Run ``pump`` until it ends or the client goes away (a stream may idle for hours: stop reading it then)."""
    pumping = asyncio.ensure_future(pump)

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watching = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, watching):
            task.cancel()
        for task in (pumping, watching):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(text)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": text})
