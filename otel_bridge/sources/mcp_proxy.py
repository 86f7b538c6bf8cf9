"""The MCP proxy: a transparent Streamable-HTTP reverse proxy in front of an MCP server, tracing every exchange.

MCP is request/response: only a party in the path sees both sides, so this
source is one. :class:`McpProxy` is an ASGI app (mounted at ``mcp.path`` by
:mod:`otel_bridge.web.mcp`) that forwards each request to ``mcp.upstream``
with httpx and streams the answer back as it comes: SSE chunk by chunk, JSON
as is, status and headers unchanged (hop-by-hop headers aside). It knows
nothing of the protocol's eras: the 2025-11-25 handshake (``Mcp-Session-Id``,
the standalone GET stream, ``DELETE``) and the stateless 2026-07-28 era pass
through alike.

Tracing never blocks or breaks the traffic. Each request and response becomes
an exchange-log record (the form :mod:`otel_bridge.dialects.mcp` reads: one
record per request, and per SSE event of a streamed response), stamped with the
time the proxy saw it and put on a bounded queue without waiting. One task
(:meth:`McpProxy._trace_forever`) drains the queue: it appends each record to
the ``mcp.record`` file, decodes it with the ``mcp`` dialect and submits the
events to the :class:`~otel_bridge.pipeline.EventConsumer`. A full queue, a
body over ``mcp.max_traced_body_bytes`` or a record that fails to trace is
counted (``consumer.reject``), never raised into the request. Because live
tracing decodes the very records the log holds, ``otel-bridge replay
--dialect mcp`` of the log rebuilds the same spans.

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

import httpx
import msgspec
from starlette.types import Message, Receive, Scope, Send

from otel_bridge.config import McpSettings
from otel_bridge.dialects import mcp as mcp_dialect
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame, SSEParser
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.pipeline import EventConsumer

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
TRACE_QUEUE_FULL = "mcp_trace_queue_full"
TRACE_BODY_TOO_LARGE = "mcp_body_too_large_to_trace"
TRACE_FAILED = "mcp_trace_failed"
UPSTREAM_UNREACHABLE = "mcp_upstream_unreachable"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _now() -> str:
    """The record's time: ISO 8601 UTC with microseconds (the dialect reads it as the event time)."""
    return datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


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


class _Exchange:
    """The records of one request/response pair, built as the bytes pass."""

    def __init__(self, proxy: McpProxy, number: int, scope: Scope, headers: list[tuple[bytes, bytes]]) -> None:
        self._proxy = proxy
        self.number = number
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.session = dict(headers).get(b"mcp-session-id", b"").decode("latin-1") or None
        self._request_headers = headers
        self._status = 0
        self._response_headers: dict[str, str] = {}
        self._content_type = ""
        self._sse: SSEParser | None = None
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._json = bytearray()
        self._too_large = False
        self._events = 0

    def _base(self, direction: str) -> dict[str, Any]:
        return {
            "seq": next(self._proxy.seq),
            "exchange": self.number,
            "direction": direction,
            "http_session": self.session,
            "http_method": self.method,
            "path": self.path,
        }

    def request(self, body: bytes) -> None:
        record = self._base("request")
        record["headers"] = _selected(self._request_headers, _RECORDED_REQUEST)
        record["body"] = self._parsed(body) if body else None
        record["time"] = _now()
        self._proxy.enqueue(record)

    def response_started(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._status = status
        self._response_headers = _selected(headers, _RECORDED_RESPONSE)
        self.session = self._response_headers.get("mcp-session-id") or self.session
        self._content_type = self._response_headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if self._content_type == _EVENT_STREAM:
            self._sse = SSEParser()

    def chunk(self, data: bytes) -> None:
        if self._sse is not None:
            for frame in self._sse.feed(self._utf8.decode(data)):
                self._emit(_sse_text(frame))
        elif not self._too_large:
            self._json += data
            if len(self._json) > self._proxy.settings.max_traced_body_bytes:
                self._too_large = True
                self._json = bytearray()
                self._proxy.consumer.reject(TRACE_BODY_TOO_LARGE)

    def response_ended(self) -> None:
        if self._sse is not None:
            for frame in self._sse.feed(self._utf8.decode(b"", final=True)) + self._sse.close():
                self._emit(_sse_text(frame))
            if self._events == 0:
                self._emit(None)
            return
        body = bytes(self._json)
        self._emit(self._parsed(body) if body and self._content_type.endswith("json") else None)

    def _emit(self, body: object) -> None:
        self._events += 1
        record = self._base("response")
        record["status"] = self._status
        record["headers"] = self._response_headers
        record["content_type"] = self._content_type or None
        record["body"] = body
        record["time"] = _now()
        self._proxy.enqueue(record)

    def _parsed(self, body: bytes) -> object:
        if len(body) > self._proxy.settings.max_traced_body_bytes:
            self._proxy.consumer.reject(TRACE_BODY_TOO_LARGE)
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
        self.seq = itertools.count(1)
        self._exchanges = itertools.count(1)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=settings.trace_queue)
        self._decoder = StreamDecoder(
            StreamContext(source=SOURCE, stream_key=f"{SOURCE}-{time.time_ns()}"),
            mcp_dialect.DIALECT,
            on_reject=consumer.reject,
        )
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        # Opened now, so that a path that cannot be written fails startup; closed at shutdown.
        self._record = open(settings.record, "ab") if settings.record is not None else None  # noqa: SIM115

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=self.settings.connect_timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            trust_env=False,
            follow_redirects=False,
        )
        self._task = asyncio.create_task(self._trace_forever(), name="mcp-proxy-trace")

    async def shutdown(self) -> None:
        if self._task is not None:
            await self._queue.put(b"")  # the end marker (waits for room): what is queued before it is traced first
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
    def enqueue(self, record: dict[str, Any]) -> None:
        """Hand a record to the tracing task without waiting: a full queue drops it from tracing (counted)."""
        try:
            self._queue.put_nowait(_encode(record))
        except asyncio.QueueFull:
            self.consumer.reject(TRACE_QUEUE_FULL)

    async def _trace_forever(self) -> None:
        while True:
            data = await self._queue.get()
            batch = [data]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            ended = b"" in batch
            self._trace([d for d in batch if d])
            if ended:
                return

    def _trace(self, batch: list[bytes]) -> None:
        try:
            if self._record is not None:
                self._record.write(b"".join(d + b"\n" for d in batch))
                self._record.flush()
        except OSError:
            log.exception("cannot write the MCP exchange log %s", self.settings.record)
        try:
            events = self._decoder.feed(Frame(None, d) for d in batch)
            self._decoder.rejections.clear()  # counted by on_reject already; a long-lived stream keeps no list
            if events:
                self.consumer.submit(events)
        except Exception:
            log.exception("tracing MCP exchanges failed; the traffic is not affected")
            self.consumer.reject(TRACE_FAILED, len(batch))

    # -- proxying -------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        client = self._client
        if client is None:
            await _plain(send, 503, b"the MCP proxy is not running")
            return
        body = await _read_body(receive)
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        exchange = _Exchange(self, next(self._exchanges), scope, headers)
        exchange.request(body)
        query = scope.get("query_string", b"")
        url = self._upstream + ("?" + query.decode("latin-1") if query else "")
        request = client.build_request(
            scope["method"],
            url,
            headers=[(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP],
            content=body or None,
        )
        try:
            upstream = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            self.consumer.reject(UPSTREAM_UNREACHABLE)
            exchange.response_started(502, [(b"content-type", b"text/plain")])
            exchange.response_ended()
            await _plain(send, 502, f"MCP upstream unreachable: {type(exc).__name__}".encode())
            return
        try:
            raw_headers = [(k, v) for k, v in upstream.headers.raw if k.lower() not in _HOP_BY_HOP_RESPONSE]
            exchange.response_started(upstream.status_code, raw_headers)
            await send({"type": "http.response.start", "status": upstream.status_code, "headers": raw_headers})
            if upstream.headers.get("content-type", "").startswith(_EVENT_STREAM):
                await _until_disconnect(self._pump(upstream, exchange, send), receive)
            else:
                await self._pump(upstream, exchange, send)
        finally:
            await upstream.aclose()
            exchange.response_ended()

    @staticmethod
    async def _pump(upstream: httpx.Response, exchange: _Exchange, send: Send) -> None:
        """Each chunk to the client as it comes, then to the exchange's records."""
        async for chunk in upstream.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            exchange.chunk(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


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
