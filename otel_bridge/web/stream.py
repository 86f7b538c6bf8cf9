"""``GET /v1/stream``: the live feed over Server-Sent Events (:mod:`.sse_response`); ``POST`` for AG-UI clients.

Query parameters (each may be repeated or comma-separated; any value matches):
``run_id``, ``thread_id`` (the conversation; a run without one is its own thread),
``agent``, ``kind`` (``llm.completed``, a prefix ``llm``, or a glob ``llm.*``),
``dialect``, ``source``; ``format`` (``canonical``, ``ag-ui``, ``ai-sdk``);
``last_event_id`` for clients that cannot set the ``Last-Event-ID`` header (the
header wins, since a browser's EventSource sends it on reconnect).

The response starts with a ``retry:`` hint, then what a resume missed, then live
events; ``: heartbeat`` comments keep idle connections open. A write that does
not go out within ``feed.send_timeout_s`` (a frozen client) ends the connection.

**UI forms** (``ag-ui``, ``ai-sdk``) show one run per response, as their clients
require, so they take exactly one ``run_id`` or one ``thread_id`` and no other
filter (a multi-run firehose is the canonical feed's job). ``run_id`` follows that
run's latest generation (see :mod:`otel_bridge.sinks.feed.runs`), ``thread_id`` the
thread's run in progress or else the next one to start. Without a
``Last-Event-ID`` the response starts at the run's first event (from the ring), so
a UI that attaches late still gets the whole run; a run whose start has already
left the ring is 410 (unless no UI had asked about it by then: the UI forms are
kept lazily, and such a run starts at its oldest event the ring still holds). The
response ends after the run's end.

``POST /v1/stream`` (``format=ag-ui``, the default for POST) takes an AG-UI
``RunAgentInput`` (``threadId``, ``runId``, ...) and watches the run it names, or
else its thread: a stock ``HttpAgent`` pointed at this URL works unchanged, and its
``runAgent()`` resolves when the run ends. The body's messages, tools and state are
not used: the sidecar observes agents, it does not run them.
"""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from otel_bridge.sinks.feed import Feed, FeedFilter, FeedFull, FilterError, Subscriber
from otel_bridge.sinks.feed.filters import ItemFilter
from otel_bridge.sinks.feed.runs import FollowThread, UiFormat
from otel_bridge.web.problem import problem
from otel_bridge.web.sse_response import SseResponse

log = logging.getLogger(__name__)

CANONICAL = "canonical"
AG_UI = "ag-ui"


class FeedResponse(SseResponse):
    """An SSE response bound to one subscriber: heartbeats in line, a send timeout ends it quietly and counted."""

    def __init__(
        self,
        feed: Feed,
        subscriber: Subscriber,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        settings = feed.settings
        super().__init__(
            subscriber.chunks(),
            heartbeat_s=settings.heartbeat_s,
            send_timeout_s=settings.send_timeout_s,
            on_idle=subscriber.heartbeat,
            on_disconnect=subscriber.close,
            headers=headers,
        )
        self._feed = feed
        self._subscriber = subscriber
        subscriber.attach(self)  # the hub's rounds write to this response while its writer is parked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._subscriber.close()
        if self.timed_out:
            # The client stopped reading; the server closes the socket when we return.
            self._feed.send_timeouts += 1
            log.warning("feed: a subscriber stopped reading for %ss; disconnected", self._feed.settings.send_timeout_s)


def _event_id(feed: Feed, header: str | None, query: str | None) -> int | None:
    raw = header if header not in (None, "") else query
    if raw is None or raw == "":
        return None
    return feed.parse_id(raw)  # an integer, or a Redis stream id on a shared feed


class RunAgentInput(msgspec.Struct):
    """The part of an AG-UI ``RunAgentInput`` the feed reads: which run, or else which thread, to watch."""

    threadId: str  # AG-UI's own field names
    runId: str


def stream_router(feed: Feed) -> APIRouter:
    router = APIRouter()
    formats = (CANONICAL, *feed.formats)
    ui_formats: dict[str, UiFormat] = {}
    for name in feed.formats:
        fmt = feed.format(name)
        if hasattr(fmt, "running_in"):
            ui_formats[name] = fmt  # type: ignore[assignment]

    def subscribe(flt: ItemFilter, fmt: str, resume_from: int | None, until_run_end: bool = False) -> Response:
        try:
            subscriber = feed.subscribe(
                flt, None if fmt == CANONICAL else fmt, resume_from, until_run_end=until_run_end
            )
        except FeedFull as exc:
            response = problem(503, "too_many_subscribers", str(exc))
            response.headers["Retry-After"] = "5"
            return response
        headers = ui_formats[fmt].media_headers if fmt in ui_formats else None
        return FeedResponse(feed, subscriber, headers=headers)

    def follow(fmt: str, run_id: str | None, thread_id: str | None, resume_from: int | None) -> Response:
        """One run of a UI form: its latest generation, or the thread's run in progress, or the next one."""
        ui = ui_formats[fmt]
        flt: ItemFilter
        if run_id is not None:
            state = ui.latest(run_id)
            flt = FeedFilter(run_ids=frozenset({run_id}))
        else:
            assert thread_id is not None
            state = ui.running_in(thread_id)
            # The thread's run in progress, or else the first to start from now on.
            flt = FeedFilter(run_ids=frozenset({state.run_id})) if state is not None else FollowThread(thread_id, ui)
        if resume_from is None and state is not None:
            if state.first_seq < feed.oldest_seq:
                return problem(
                    410,
                    "run_not_in_ring",
                    f"run {state.run_id!r} started before the oldest event the feed still holds "
                    f"(feed.ring_size); its spans are in GET /v1/traces",
                )
            resume_from = state.first_seq - 1
        return subscribe(flt, fmt, resume_from, until_run_end=True)

    @router.get("/v1/stream")
    async def stream(
        run_id: Annotated[list[str] | None, Query()] = None,
        thread_id: Annotated[list[str] | None, Query()] = None,
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
            flt = FeedFilter.parse(
                run_id=run_id, thread_id=thread_id, agent=agent, kind=kind, dialect=dialect, source=source
            )
            resume_from = _event_id(feed, last_event_id_header, last_event_id)
        except FilterError as exc:
            return problem(400, "invalid_filter", str(exc))
        except ValueError as exc:
            return problem(400, "invalid_last_event_id", str(exc))
        if fmt not in ui_formats:
            return subscribe(flt, fmt, resume_from)
        runs, threads = flt.run_ids or frozenset(), flt.thread_ids or frozenset()
        others = flt.agents or flt.kinds or flt.dialects or flt.sources
        if others or len(runs) + len(threads) != 1:
            return problem(
                400,
                "one_run_per_stream",
                f"format={fmt} shows one run per stream, as its clients require: give one run_id "
                "(the run) or one thread_id (the conversation) and no other filter; "
                "the canonical format is the multi-run feed",
            )
        return follow(fmt, next(iter(runs), None), next(iter(threads), None), resume_from)

    @router.post("/v1/stream")
    async def watch(
        request: Request,
        fmt: Annotated[str, Query(alias="format")] = AG_UI,
        last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> Response:
        """An AG-UI client's run request (``RunAgentInput``): the events of the run it names, or of its thread."""
        if fmt != AG_UI or AG_UI not in ui_formats:
            return problem(400, "unknown_format", f"POST takes an AG-UI RunAgentInput (format={AG_UI}), not {fmt!r}")
        try:
            body = msgspec.json.decode(await request.body(), type=RunAgentInput)
            resume_from = _event_id(feed, last_event_id_header, None)
        except msgspec.ValidationError as exc:
            return problem(422, "invalid_run_agent_input", f"not an AG-UI RunAgentInput: {exc}")
        except msgspec.DecodeError as exc:
            return problem(400, "malformed_body", f"the body is not JSON: {exc}")
        except ValueError as exc:
            return problem(400, "invalid_last_event_id", str(exc))
        if ui_formats[AG_UI].latest(body.runId) is not None:
            return follow(AG_UI, body.runId, None, resume_from)
        return follow(AG_UI, None, body.threadId, resume_from)

    return router
