"""``POST /v1/events``: events pushed over HTTP (the decoding is :mod:`otel_bridge.sources.http_ingest`).

``?dialect=`` forces a dialect, ``?run_id=`` names the run of events without
one of their own, ``?source=`` labels them. Answers 202
``{"accepted", "rejected", "events", "dialect", "runs", "errors", "rejected_indexes"}``.
Errors: 400 body not parseable or empty, 413 body too large, 415 media type,
422 unknown dialect or every event rejected, 503 with ``Retry-After`` over the
memory budget's soft limit (:mod:`otel_bridge.limits`). Never a 500 for bad input.
The OpenAPI schema documents the request body's media types and every answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from otel_bridge.config import IngestSettings
from otel_bridge.dialects.framing import ACCEPTED_MEDIA_TYPES
from otel_bridge.limits import REFUSED_BY, MemoryGuard
from otel_bridge.pipeline import EventConsumer
from otel_bridge.sources.http_ingest import IngestError, forced_dialect
from otel_bridge.sources.http_ingest import ingest as ingest_events
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


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def ingest_router(consumer: EventConsumer, settings: IngestSettings, guard: MemoryGuard | None = None) -> APIRouter:
    """``POST /v1/events`` into ``consumer``, bounded by ``settings`` and the memory budget ``guard``."""
    router = APIRouter()

    @router.post(
        "/v1/events",
        status_code=202,
        response_class=JSONResponse,
        responses=OPENAPI_RESPONSES,
        openapi_extra={"requestBody": OPENAPI_REQUEST_BODY},
    )
    async def ingest(
        request: Request, dialect: str | None = None, run_id: str | None = None, source: str | None = None
    ) -> JSONResponse:
        """Push agent events (JSON, JSON array, NDJSON or SSE text).

        The body is decoded and validated whole before anything is mapped. Each frame that
        fails is rejected, counted and listed (``errors``: index, reason, message, the first
        ``ingest.max_errors_reported``; ``rejected_indexes``: all of them); the others are
        mapped, each exactly once. A client resends only the rejected frames, fixed.
        """
        if guard is not None and not guard.admit("http"):  # refused before the body is read
            refused = problem(503, REFUSED_BY, guard.reason or "over the memory budget")
            refused.headers["Retry-After"] = str(guard.retry_after_s)
            return refused
        try:
            forced = forced_dialect(dialect)
            try:
                body = await _read_body(request, settings.max_body_bytes)
            except _TooLarge:
                consumer.reject("body_too_large")
                return problem(413, "body_too_large", f"request body exceeds {settings.max_body_bytes} bytes")
            content_type = request.headers.get("content-type", "")
            answer = await ingest_events(
                consumer, settings, body, content_type, dialect=forced, run_id=run_id, source=source
            )
        except IngestError as exc:
            return problem(STATUS[exc.code], exc.code, exc.message, **exc.extra)
        return JSONResponse(answer, status_code=202)

    return router
