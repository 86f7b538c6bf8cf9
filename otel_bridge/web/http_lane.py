"""The HTTP server's own lane: small ``POST /v1/events`` answered inside the parser's callbacks.

uvicorn turns every request into an ASGI task: a scope, a task on the loop, ``receive``
and ``send`` coroutines, and the status line and the body written to the socket in two
calls. For a POST of one event that costs more than decoding and mapping it (BENCHMARKS.md:
about 210 us of CPU a request on the reference machine, against about 85 us here). So
:func:`lane_protocol` gives uvicorn a subclass of its httptools protocol that serves a
request of an app's inline lane (:meth:`otel_bridge.web.lanes.SidecarApp.inline_lane`)
itself: the body gathered from the parser, the lane's synchronous answer, and the whole
response written in one call, all within ``data_received``.

It takes only what it can answer exactly as the ASGI path would (the same
:class:`~otel_bridge.web.lanes.InlineLane` serves both): a request on a keep-alive or
closing HTTP/1.x connection with nothing in flight before it, no ``Expect: 100-continue``,
no upgrade, a declared ``Content-Length`` of at most the lane's inline limit, no root
path, and headers the token check and CORS let through untouched. Anything else, and
every other route, goes through uvicorn's own path unchanged. The access log line is
uvicorn's, word for word.

This leans on uvicorn's httptools protocol's callbacks and fields (``on_headers_complete``,
``on_body``, ``on_message_complete``, ``on_response_complete``, ``cycle``, ``pipeline``,
``server_state``); without httptools (or with another ``--http``), there is no inline lane and
every request takes the ASGI lane. The tests run the real server through both.
"""

from __future__ import annotations

import asyncio
import logging

from otel_bridge.web.lanes import Headers, InlineLane, SidecarApp

log = logging.getLogger(__name__)

try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
except ImportError:  # uvicorn without httptools: every request takes the ASGI lane
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

_INTERNAL_ERROR = (
    500,
    [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")],
    b"Internal Server Error",
)


def lane_protocol(app: SidecarApp) -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol serving ``app``'s inline lanes itself; ``None`` without httptools."""
    if HttpToolsProtocol is None:
        return None

    defaults = _EncodedDefaults()

    class LaneProtocol(HttpToolsProtocol):
        _lane: InlineLane | None = None
        _body: list[bytes]
        _path = b""
        _query = b""
        _closing = False  # the server is shutting down: the request being read is the last
        # Keep-alive after an inline answer: one timer per connection, re-armed only when it fires (uvicorn
        # arms a timer per response and cancels it at the next request's first bytes).
        _idle_since: float | None = None  # when the last inline answer was written; None once a request begins
        _idle_timer: asyncio.TimerHandle | None = None

        def on_message_begin(self) -> None:
            # uvicorn's fields, without the ASGI scope: an inline request never needs one (see _asgi_scope).
            self._lane = None
            self._idle_since = None
            if self.timeout_keep_alive_task is not None:  # a pipelined request after an ASGI answer
                self._unset_keepalive_if_required()
            self.url = b""
            self.expect_100_continue = False
            self.headers = []

        def _asgi_scope(self) -> None:
            """The request's ASGI scope, built by uvicorn's own ``on_message_begin`` (what it would have built)."""
            url, headers, expect = self.url, self.headers, self.expect_100_continue
            super().on_message_begin()
            self.url, self.headers, self.expect_100_continue = url, headers, expect
            self.scope["headers"] = headers

        def on_headers_complete(self) -> None:
            lane = self._inline()
            if lane is None:
                self._asgi_scope()
                super().on_headers_complete()
                return
            self._lane = lane
            self._body = []

        def _inline(self) -> InlineLane | None:
            if self.root_path or self.expect_100_continue or self.limit_concurrency is not None:
                return None
            if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
                return None  # an earlier request is still being answered: keep the order
            parser = self.parser
            if parser.get_method() != b"POST" or parser.should_upgrade():
                return None
            path, _, query = self.url.partition(b"?")
            lane = app.inline_lane(b"POST", path, self.headers)
            if lane is None:
                return None
            length = _content_length(self.headers)
            if length is None or length > lane.max_inline_body:
                return None
            self._path = path
            self._query = query
            return lane

        def on_body(self, body: bytes) -> None:
            if self._lane is None:
                super().on_body(body)
            else:
                self._body.append(body)

        def shutdown(self) -> None:
            """The server's graceful shutdown: a request whose body is still arriving is answered first.

            uvicorn closes a connection with no ASGI cycle in flight at once, which would drop an
            inline request between its head and the end of its body; this one is answered (with
            ``connection: close``) and the connection closed after it, as uvicorn does for a
            request in flight. uvicorn's ``timeout_graceful_shutdown`` bounds the wait.
            """
            if self._lane is None:
                super().shutdown()
            else:
                self._closing = True

        def on_message_complete(self) -> None:
            lane = self._lane
            if lane is None:
                super().on_message_complete()
                return
            self._lane = None
            body = b"".join(self._body)
            self._body = []
            try:
                status, headers, content = lane.answer(self._query, self.headers, body)
            except Exception:  # as uvicorn does for an app that raises: log, 500, close
                log.exception("Exception in the inline ingest lane")
                status, headers, content = _INTERNAL_ERROR
                keep_alive = False
            else:
                keep_alive = (
                    not self._closing and self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"
                )
            self._respond(status, headers, content, keep_alive)

        def _respond(self, status: int, headers: Headers, content: bytes, keep_alive: bool) -> None:
            if self.access_log and self.access_logger.isEnabledFor(logging.INFO):  # args are not free
                self._log_access(status)
            out = [STATUS_LINE[status], defaults.encoded(self.server_state.default_headers)]
            for name, value in headers:
                out += (name, b": ", value, b"\r\n")
            if not keep_alive:
                out.append(b"connection: close\r\n")
            out += (b"\r\n", content)
            transport = self.transport
            transport.write(b"".join(out))
            if not keep_alive:
                transport.close()
                return
            self.server_state.total_requests += 1  # what uvicorn's on_response_complete does for a response
            if self.pipeline or transport.is_closing():
                self.on_response_complete()  # pipelined ASGI requests wait behind this one: uvicorn starts them
                return
            self._idle_since = self.loop.time()
            if self._idle_timer is None:
                self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

        def _idle_check(self) -> None:
            """Close the connection once it has been idle for ``timeout_keep_alive`` since an inline answer."""
            self._idle_timer = None
            since = self._idle_since
            if since is None or self.transport.is_closing():
                return  # a request began (its answer arms the check again), or the connection is gone
            left = since + self.timeout_keep_alive - self.loop.time()
            if left > 0:
                self._idle_timer = self.loop.call_later(left, self._idle_check)
            else:
                self.timeout_keep_alive_handler()

        def _log_access(self, status: int) -> None:
            """uvicorn's access log line, word for word (the scope is built for it)."""
            self._asgi_scope()
            scope = self.scope
            scope["method"] = "POST"
            scope["path"] = self._path.decode("ascii")
            scope["raw_path"] = self._path
            scope["query_string"] = self._query
            version = self.parser.get_http_version()
            if version != "1.1":
                scope["http_version"] = version
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                scope["method"],
                get_path_with_query_string(scope),
                scope["http_version"],
                status,
            )

    return LaneProtocol


class _EncodedDefaults:
    """uvicorn's default headers (``server``, ``date``), encoded once per list: uvicorn makes a new one each second."""

    def __init__(self) -> None:
        self._source: Headers | None = None
        self._block = b""

    def encoded(self, headers: Headers) -> bytes:
        if headers is not self._source:
            self._block = b"".join(b"%s: %s\r\n" % pair for pair in headers)
            self._source = headers
        return self._block


def _content_length(headers: Headers) -> int | None:
    """The declared body length; ``None`` when absent, repeated, chunked or not a number."""
    length: int | None = None
    for name, value in headers:
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name == b"transfer-encoding":
            return None
    return length
