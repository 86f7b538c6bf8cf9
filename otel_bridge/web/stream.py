"""``GET /v1/stream``: the live feed over Server-Sent Events (sse-starlette).

Query parameters (each may be repeated or comma-separated; any value matches):
``run_id``, ``agent``, ``kind`` (``llm.completed``, a prefix ``llm``, or a glob
``llm.*``), ``dialect``, ``source``; ``format=ag-ui`` for AG-UI events;
``last_event_id`` for clients that cannot set the ``Last-Event-ID`` header (the
header wins, since a browser's EventSource sends it on reconnect).

The response starts with a ``retry:`` hint, then what a resume missed, then live
events; ``: heartbeat`` comments keep idle connections open. A write that does
not go out within ``feed.send_timeout_s`` (a frozen client) ends the connection.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from otel_bridge.sinks.feed import Feed, FeedFilter, FeedFull, FilterError, Subscriber
from otel_bridge.web.problem import problem

log = logging.getLogger(__name__)

CANONICAL = "canonical"


class FeedResponse(EventSourceResponse):
    """An SSE response bound to one subscriber: a send timeout ends it quietly and counted."""

    def __init__(self, feed: Feed, subscriber: Subscriber) -> None:
        settings = feed.settings
        super().__init__(
            subscriber.chunks(),
            headers={"Cache-Control": "no-cache"},
            ping=settings.heartbeat_s,
            sep="\n",
            ping_message_factory=lambda: ServerSentEvent(comment="heartbeat", sep="\n"),
            send_timeout=settings.send_timeout_s,
        )
        self._feed = feed
        self._subscriber = subscriber

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            # The client stopped reading; the server closes the socket when we return.
            self._feed.send_timeouts += 1
            log.warning("feed: a subscriber stopped reading for %ss; disconnected", self._feed.settings.send_timeout_s)
        finally:
            self._subscriber.close()


def _event_id(feed: Feed, header: str | None, query: str | None) -> int | None:
    raw = header if header not in (None, "") else query
    if raw is None or raw == "":
        return None
    return feed.parse_id(raw)  # an integer, or a Redis stream id on a shared feed


def stream_router(feed: Feed) -> APIRouter:
    router = APIRouter()
    formats = (CANONICAL, *feed.formats)

    @router.get("/v1/stream")
    async def stream(
        run_id: Annotated[list[str] | None, Query()] = None,
        agent: Annotated[list[str] | None, Query()] = None,
        kind: Annotated[list[str] | None, Query()] = None,
        dialect: Annotated[list[str] | None, Query()] = None,
        source: Annotated[list[str] | None, Query()] = None,
        fmt: Annotated[str, Query(alias="format")] = CANONICAL,
        last_event_id: Annotated[str | None, Query()] = None,
        last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> Response:
        """The live feed: every mapped event with its trace and span ids, as Server-Sent Events."""
        if fmt not in formats:
            return problem(400, "unknown_format", f"format {fmt!r} is not one of: {', '.join(formats)}")
        try:
            flt = FeedFilter.parse(run_id=run_id, agent=agent, kind=kind, dialect=dialect, source=source)
            resume_from = _event_id(feed, last_event_id_header, last_event_id)
        except FilterError as exc:
            return problem(400, "invalid_filter", str(exc))
        except ValueError as exc:
            return problem(400, "invalid_last_event_id", str(exc))
        try:
            subscriber = feed.subscribe(flt, None if fmt == CANONICAL else fmt, resume_from)
        except FeedFull as exc:
            response = problem(503, "too_many_subscribers", str(exc))
            response.headers["Retry-After"] = "5"
            return response
        return FeedResponse(feed, subscriber)

    return router
