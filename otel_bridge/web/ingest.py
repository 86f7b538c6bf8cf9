"""``POST /v1/events``: events pushed over HTTP (the decoding is :mod:`otel_bridge.sources.http_ingest`).

``?dialect=`` forces a dialect, ``?run_id=`` names the run of events without
one of their own, ``?source=`` labels them. Answers 202
``{"accepted", "rejected", "events", "dialect", "runs", "errors", "rejected_indexes"}``.
Errors: 400 body not parseable or empty, 413 body too large, 415 media type,
422 unknown dialect or every event rejected, 503 with ``Retry-After`` over the
memory budget's soft limit (:mod:`otel_bridge.limits`). Never a 500 for bad input.
The OpenAPI schema documents the query parameters, the request body's media
types and every answer.

Small POSTs are the common case (one event per request), and FastAPI's
routing, dependency injection and pydantic validation of three optional query
parameters cost more than decoding and mapping the event. So the handler is
lean: :func:`ingest_responder` reads its query parameters, headers and body
from the ASGI scope itself, and :class:`IngestLane`, a lane of the app
(:mod:`otel_bridge.web.lanes`: the token check and CORS still apply), sends
``POST /v1/events`` straight to it, ahead of FastAPI's middleware and router. The route is also an
ordinary :class:`~fastapi.routing.APIRoute` (:class:`LeanRoute`, the same
responder behind it) so that it is documented in the OpenAPI schema like every
other route, its query parameters written here by hand (:data:`OPENAPI_PARAMETERS`),
and answers any other method as before (405).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import unquote_plus

import msgspec
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from otel_bridge.config import IngestSettings
from otel_bridge.dialects import registry
from otel_bridge.dialects.framing import ACCEPTED_MEDIA_TYPES
from otel_bridge.limits import REFUSED_BY, MemoryGuard
from otel_bridge.pipeline import EventConsumer
from otel_bridge.sources.http_ingest import OFF_LOOP_BYTES, IngestError, forced_dialect, ingest_body
from otel_bridge.sources.http_ingest import ingest as ingest_events
from otel_bridge.web.lanes import Answer, SidecarApp
from otel_bridge.web.problem import problem

STATUS = {
    "unknown_dialect": 422,
    "unsupported_media_type": 415,
    "malformed_body": 400,
    "empty_body": 400,
    "no_valid_events": 422,
}
"""The HTTP status of each :class:`IngestError` code."""

_REJECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["index", "reason", "message"],
    "properties": {
        "index": {"type": "integer", "description": "the frame's position in the body, from 0"},
        "reason": {"type": "string", "description": "counted under this reason (e.g. timestamp_out_of_range)"},
        "message": {"type": "string"},
    },
}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code"},
        "message": {"type": "string"},
        "rejected": {"type": "integer"},
        "errors": {"type": "array", "items": _REJECTION_SCHEMA},
    },
}
_ACCEPTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["accepted", "rejected", "events", "dialect", "runs", "errors", "rejected_indexes"],
    "properties": {
        "accepted": {"type": "integer", "description": "frames accepted (their events are mapped exactly once)"},
        "rejected": {"type": "integer"},
        "events": {"type": "integer", "description": "canonical events the accepted frames gave"},
        "dialect": {"type": ["string", "null"]},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"run_id": {"type": "string"}, "trace_id": {"type": "string"}},
            },
        },
        "errors": {"type": "array", "items": _REJECTION_SCHEMA},
        "rejected_indexes": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "every rejected frame (errors lists only the first few): resend only these",
        },
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _PROBLEM_SCHEMA}}}


OPENAPI_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "decoded and mapped", "content": {"application/json": {"schema": _ACCEPTED_SCHEMA}}},
    400: _problem("malformed_body (not parseable) or empty_body"),
    401: _problem("unauthorized: a bearer token is configured and was not sent or is wrong"),
    413: _problem("body_too_large: over ingest.max_body_bytes"),
    415: _problem("unsupported_media_type"),
    422: _problem("unknown_dialect, or no_valid_events (every event rejected; errors lists why)"),
    503: _problem("memory_limit: over the memory budget's soft limit; retry after Retry-After seconds"),
}
"""Every answer of the route, as documented in the OpenAPI schema."""

_JSON_BODY: dict[str, Any] = {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
OPENAPI_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "One JSON event, a JSON array of events, NDJSON (one event a line) or an SSE stream.",
    "content": {
        media: {"schema": _JSON_BODY if media == "application/json" else {"type": "string"}}
        for media in ACCEPTED_MEDIA_TYPES
    },
}


def _query_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": name.replace("_", " ").title()},
    }


OPENAPI_PARAMETERS: list[dict[str, Any]] = [
    _query_parameter("dialect", "force this dialect (else it is detected from the first frames)"),
    _query_parameter("run_id", "the run of the events that name none of their own"),
    _query_parameter("source", "a label for where the events came from (default http)"),
]
"""The route's query parameters, as FastAPI would have described them from typed arguments."""
_PARAMETERS = frozenset(p["name"] for p in OPENAPI_PARAMETERS)


def query_parameters(query_string: bytes) -> dict[str, str]:
    """The route's query parameters from the raw query string, read as Starlette reads them.

    Latin-1 bytes, ``&``-separated, ``+`` and ``%XX`` decoded as UTF-8 (bad bytes replaced),
    blank values kept, the last of a repeated name wins; names the route does not take are skipped.
    """
    found: dict[str, str] = {}
    if not query_string:
        return found
    for part in query_string.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if name in _PARAMETERS:
            found[name] = unquote_plus(value) if "%" in value or "+" in value else value
    return found


_HINT_HEADERS = frozenset(name.encode("latin-1") for name in registry.HEADER_DIALECTS)


def _request_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None, dict[str, str] | None]:
    """``(Content-Type or "", Content-Length or None, the headers that name a dialect or None)`` in one
    pass over the raw headers: ASGI names are lower-case, and of a repeated header the first counts,
    as with Starlette's ``Headers.get``. A client that forwards its producer's response headers (e.g.
    ``x-vercel-ai-ui-message-stream``) settles detection as a subscription's headers do."""
    content_type: str | None = None
    length: str | None = None
    hints: dict[str, str] | None = None
    for name, value in headers:
        if name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
        elif name == b"content-length" and length is None:
            length = value.decode("latin-1")
        elif name in _HINT_HEADERS:
            hints = hints or {}
            hints.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return content_type or "", length, hints


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the whole body in one message: the common case, no copy
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


INGEST_PATH = "/v1/events"
_JSON_HEADER = (b"content-type", b"application/json")


def _accepted_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    """The headers of a 202 answer whose JSON is ``body``."""
    return [_JSON_HEADER, (b"content-length", b"%d" % len(body))]


class IngestResponder:
    """``POST /v1/events`` into ``consumer``, bounded by ``settings`` and the memory budget ``guard``.

    :meth:`respond` serves any request from its ASGI scope (the body read from ``receive``,
    large bodies decoded off the loop); :meth:`answer` serves one whose whole body is in hand
    and at most :attr:`max_inline_body` bytes, synchronously (the HTTP lane,
    :mod:`otel_bridge.web.http_lane`). Both give the same answers: they share everything
    after the body is read.
    """

    def __init__(self, consumer: EventConsumer, settings: IngestSettings, guard: MemoryGuard | None = None) -> None:
        self._consumer = consumer
        self._settings = settings
        self._guard = guard
        self.max_inline_body = min(OFF_LOOP_BYTES, settings.max_body_bytes)

    def _refused(self) -> Response | None:
        guard = self._guard
        if guard is None or guard.admit("http"):
            return None
        refused = problem(503, REFUSED_BY, guard.reason or "over the memory budget")
        refused.headers["Retry-After"] = str(guard.retry_after_s)
        return refused

    def _too_large(self) -> Response:
        self._consumer.reject("body_too_large")
        return problem(413, "body_too_large", f"request body exceeds {self._settings.max_body_bytes} bytes")

    async def respond(self, scope: Scope, receive: Receive) -> Response | bytes:
        """The accepted answer's JSON (202), or an error :class:`Response`."""
        refused = self._refused()  # before the body is read
        if refused is not None:
            return refused
        query = query_parameters(scope["query_string"])
        content_type, declared, hints = _request_headers(scope["headers"])
        try:
            forced = forced_dialect(query.get("dialect"))
            try:
                body = await _read_body(receive, declared, self._settings.max_body_bytes)
            except _TooLarge:
                return self._too_large()
            answer = await ingest_events(
                self._consumer,
                self._settings,
                body,
                content_type,
                dialect=forced,
                run_id=query.get("run_id"),
                source=query.get("source"),
                headers=hints,
            )
        except IngestError as exc:
            return problem(STATUS[exc.code], exc.code, exc.message, **exc.extra)
        return msgspec.json.encode(answer)

    def answer(self, query_string: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        """The whole response to a request whose body (at most :attr:`max_inline_body` bytes) is read."""
        refused = self._refused()
        if refused is not None:
            return _whole(refused)
        query = query_parameters(query_string)
        content_type, _, hints = _request_headers(headers)
        try:
            answer = ingest_body(
                self._consumer,
                self._settings,
                body,
                content_type,
                dialect=forced_dialect(query.get("dialect")),
                run_id=query.get("run_id"),
                source=query.get("source"),
                headers=hints,
            )
        except IngestError as exc:
            return _whole(problem(STATUS[exc.code], exc.code, exc.message, **exc.extra))
        encoded = msgspec.json.encode(answer)
        return 202, _accepted_headers(encoded), encoded


def _whole(response: Response) -> Answer:
    return response.status_code, response.raw_headers, bytes(response.body)


def _response(answer: Response | bytes) -> Response:
    return answer if isinstance(answer, Response) else Response(answer, 202, media_type="application/json")


class LeanRoute(APIRoute):
    """An API route whose endpoint takes the :class:`Request` and returns a :class:`Response` itself.

    Documented like any route (from ``responses`` and ``openapi_extra``), but no dependency is
    solved, no parameter validated and no return value serialised on the way.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def ingest_router(responder: IngestResponder) -> APIRouter:
    """``POST /v1/events``, documented, served by ``responder``."""
    router = APIRouter()
    respond = responder.respond

    async def ingest(request: Request) -> Response:
        """Push agent events (JSON, JSON array, NDJSON or SSE text).

        The body is decoded and validated whole before anything is mapped. Each frame that
        fails is rejected, counted and listed (``errors``: index, reason, message, the first
        ``ingest.max_errors_reported``; ``rejected_indexes``: all of them); the others are
        mapped, each exactly once. A client resends only the rejected frames, fixed.
        """
        return _response(await respond(request.scope, request.receive))

    router.add_api_route(
        INGEST_PATH,
        ingest,
        methods=["POST"],
        status_code=202,
        responses=OPENAPI_RESPONSES,
        openapi_extra={"requestBody": OPENAPI_REQUEST_BODY, "parameters": OPENAPI_PARAMETERS},
        route_class_override=LeanRoute,
    )
    return router


class IngestLane:
    """ASGI app: the lane that serves ``POST /v1/events`` (see :mod:`otel_bridge.web.lanes`)."""

    def __init__(self, responder: IngestResponder) -> None:
        self.responder = responder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self.responder.respond(scope, receive)
        if isinstance(answer, Response):
            await answer(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 202, "headers": _accepted_headers(answer)})
        await send({"type": "http.response.body", "body": answer})


def mount_ingest(
    app: SidecarApp, consumer: EventConsumer, settings: IngestSettings, guard: MemoryGuard | None = None
) -> None:
    """The documented route, and the lane that serves it ahead of FastAPI's middleware and router."""
    responder = IngestResponder(consumer, settings, guard)
    app.include_router(ingest_router(responder))
    app.add_lane(INGEST_PATH, ["POST"], IngestLane(responder), inline=responder)
