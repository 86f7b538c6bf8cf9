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

    class LaneProtocol(HttpToolsProtocol):
        _lane: InlineLane | None = None
        _body: list[bytes]
        _closing = False  # the server is shutting down: the request being read is the last

        def on_message_begin(self) -> None:
            self._lane = None
            self._unset_keepalive_if_required()  # a pipelined request after an inline answer
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            lane = self._inline()
            if lane is None:
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
            if parser.should_upgrade():
                return None
            method = parser.get_method()
            if method != b"POST":
                return None
            path, _, query = self.url.partition(b"?")
            lane = app.inline_lane(method, path, self.headers)
            if lane is None:
                return None
            length = _content_length(self.headers)
            if length is None or length > lane.max_inline_body:
                return None
            scope = self.scope
            scope["method"] = "POST"
            scope["path"] = path.decode("ascii")
            scope["raw_path"] = path
            scope["query_string"] = query
            version = parser.get_http_version()
            if version != "1.1":
                scope["http_version"] = version
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
                status, headers, content = lane.answer(self.scope["query_string"], self.headers, body)
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
                scope = self.scope
                self.access_logger.info(
                    '%s - "%s %s HTTP/%s" %d',
                    get_client_addr(scope),
                    scope["method"],
                    get_path_with_query_string(scope),
                    scope["http_version"],
                    status,
                )
            out = [STATUS_LINE[status]]
            for name, value in (*self.server_state.default_headers, *headers):
                out += [name, b": ", value, b"\r\n"]
            if not keep_alive:
                out.append(b"connection: close\r\n")
            out += [b"\r\n", content]
            self.transport.write(b"".join(out))
            if not keep_alive:
                self.transport.close()
                return
            self.on_response_complete()

    return LaneProtocol


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
