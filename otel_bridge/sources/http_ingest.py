"""``POST /v1/events``: events pushed over HTTP.

Accepts one JSON event, a JSON array, NDJSON, or a captured SSE stream
(``text/event-stream``). ``?dialect=`` forces a dialect, otherwise it is
detected from the first frames. Grouping into runs: events carry their own run
id where the dialect has one (OpenIntent's intent id, a ``run_id`` field...);
events without one (agent-event-stream) belong to the run named by
``?run_id=``, or else to a new run per request.

Answers 202 ``{"accepted", "rejected", "events", "dialect", "runs", "errors"}``.
Errors: 400 body not parseable or empty, 413 body too large, 415 media type,
422 unknown dialect or every event rejected. Never a 500 for bad input.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from otel_bridge.bridge import Bridge
from otel_bridge.dialects import registry
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import ACCEPTED_MEDIA_TYPES, FramingError, frames_for
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.model import AgentEvent, Placement

_MAX_RUNS_LISTED = 20


class _TooLarge(Exception):
    pass


def problem(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    """A JSON error body: ``{"error": <stable code>, "message": <for people>}``."""
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


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


def _runs(pairs: Sequence[tuple[AgentEvent, Placement]]) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for event, placement in pairs:
        if event.run_id not in seen:
            seen[event.run_id] = placement.trace_id.hex()
            if len(seen) >= _MAX_RUNS_LISTED:
                break
    return [{"run_id": run, "trace_id": trace} for run, trace in seen.items()]


def ingest_router(bridge: Bridge) -> APIRouter:
    router = APIRouter()
    settings = bridge.settings.ingest

    @router.post("/v1/events", status_code=202)
    async def ingest(
        request: Request, dialect: str | None = None, run_id: str | None = None, source: str | None = None
    ) -> JSONResponse:
        """Push agent events (JSON, JSON array, NDJSON or SSE text)."""
        forced = None
        if dialect is not None:
            try:
                forced = registry.get(dialect)
            except registry.UnknownDialectError as exc:
                return problem(422, "unknown_dialect", str(exc))
        content_type = request.headers.get("content-type", "")
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _TooLarge:
            bridge.stats.reject("body_too_large")
            return problem(413, "body_too_large", f"request body exceeds {settings.max_body_bytes} bytes")
        try:
            frames = frames_for(body, content_type)
        except LookupError:
            bridge.stats.reject("unsupported_media_type")
            return problem(
                415,
                "unsupported_media_type",
                f"Content-Type {content_type or '(none)'!r} is not accepted; "
                f"use one of: {', '.join(ACCEPTED_MEDIA_TYPES)}",
            )
        except FramingError as exc:
            bridge.stats.reject("malformed_body")
            return problem(400, "malformed_body", str(exc))
        if not frames:
            return problem(400, "empty_body", "the body holds no events")
        ctx = StreamContext(source=source or "http", stream_key=run_id or uuid.uuid4().hex, run_id=run_id)
        decoder = StreamDecoder(ctx, forced)
        events = decoder.feed(frames) + decoder.close()
        for rejection in decoder.rejections:
            bridge.stats.reject(rejection.reason)
        rejected = len(decoder.rejections)
        accepted = decoder.frames_seen - rejected - decoder.done_markers
        errors = [
            {"index": r.index, "reason": r.reason, "message": r.message}
            for r in decoder.rejections[: settings.max_errors_reported]
        ]
        if accepted <= 0 and rejected:
            return problem(
                422, "no_valid_events", "every event in the body was rejected", rejected=rejected, errors=errors
            )
        pairs = bridge.submit(events)
        return JSONResponse(
            {
                "accepted": accepted,
                "rejected": rejected,
                "events": len(events),
                "dialect": decoder.dialect,
                "runs": _runs(pairs),
                "errors": errors,
            },
            status_code=202,
        )

    return router
