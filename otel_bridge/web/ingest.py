"""``POST /v1/events``: events pushed over HTTP (the decoding is :mod:`otel_bridge.sources.http_ingest`).

``?dialect=`` forces a dialect, ``?run_id=`` names the run of events without
one of their own, ``?source=`` labels them. Answers 202
``{"accepted", "rejected", "events", "dialect", "runs", "errors"}``.
Errors: 400 body not parseable or empty, 413 body too large, 415 media type,
422 unknown dialect or every event rejected. Never a 500 for bad input.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from otel_bridge.config import IngestSettings
from otel_bridge.pipeline import EventConsumer
from otel_bridge.sources.http_ingest import IngestError, forced_dialect, ingest_body
from otel_bridge.web.problem import problem

STATUS = {
    "unknown_dialect": 422,
    "unsupported_media_type": 415,
    "malformed_body": 400,
    "empty_body": 400,
    "no_valid_events": 422,
}
"""The HTTP status of each :class:`IngestError` code."""


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


def ingest_router(consumer: EventConsumer, settings: IngestSettings) -> APIRouter:
    """``POST /v1/events`` into ``consumer``, bounded by ``settings``."""
    router = APIRouter()

    @router.post("/v1/events", status_code=202)
    async def ingest(
        request: Request, dialect: str | None = None, run_id: str | None = None, source: str | None = None
    ) -> JSONResponse:
        """Push agent events (JSON, JSON array, NDJSON or SSE text)."""
        try:
            forced = forced_dialect(dialect)
            try:
                body = await _read_body(request, settings.max_body_bytes)
            except _TooLarge:
                consumer.reject("body_too_large")
                return problem(413, "body_too_large", f"request body exceeds {settings.max_body_bytes} bytes")
            content_type = request.headers.get("content-type", "")
            answer = ingest_body(consumer, settings, body, content_type, dialect=forced, run_id=run_id, source=source)
        except IngestError as exc:
            return problem(STATUS[exc.code], exc.code, exc.message, **exc.extra)
        return JSONResponse(answer, status_code=202)

    return router
