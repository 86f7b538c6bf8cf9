"""Events pushed over HTTP: one request body to the consumer (the route is :mod:`otel_bridge.web.ingest`).

Accepts one JSON event, a JSON array, NDJSON, or a captured SSE stream
(``text/event-stream``). A forced dialect is used as given, otherwise it is
detected from the first frames. Grouping into runs: events carry their own run
id where the dialect has one (OpenIntent's intent id, a ``run_id`` field...);
events without one (agent-event-stream) belong to the run named by the
request's ``run_id``, or else to a new run per request.

A body refused whole raises :class:`IngestError` with a stable code (counted
where the body itself was bad); bad frames inside a good body are rejected one
by one, counted, and listed in the answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from otel_bridge.config import IngestSettings
from otel_bridge.dialects import registry
from otel_bridge.dialects.base import Dialect, StreamContext
from otel_bridge.dialects.framing import ACCEPTED_MEDIA_TYPES, FramingError, frames_for
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.model import AgentEvent, Placement
from otel_bridge.pipeline import EventConsumer

_MAX_RUNS_LISTED = 20


class IngestError(Exception):
    """A request refused whole: ``code`` is stable (the HTTP layer picks the status from it)."""

    def __init__(self, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def forced_dialect(name: str | None) -> Dialect | None:
    """The dialect a request names, or ``None`` to detect it. Raises ``IngestError("unknown_dialect")``."""
    if name is None:
        return None
    try:
        return registry.get(name)
    except registry.UnknownDialectError as exc:
        raise IngestError("unknown_dialect", str(exc)) from None


def _runs(pairs: Sequence[tuple[AgentEvent, Placement]]) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for event, placement in pairs:
        if event.run_id not in seen:
            seen[event.run_id] = placement.trace_id.hex()
            if len(seen) >= _MAX_RUNS_LISTED:
                break
    return [{"run_id": run, "trace_id": trace} for run, trace in seen.items()]


def ingest_body(
    consumer: EventConsumer,
    settings: IngestSettings,
    body: bytes,
    content_type: str,
    *,
    dialect: Dialect | None = None,
    run_id: str | None = None,
    source: str | None = None,
) -> dict[str, object]:
    """Decode one body and submit its events; the answer ``{"accepted", "rejected", "events", "dialect",
    "runs", "errors"}``. Raises :class:`IngestError` (``unsupported_media_type``, ``malformed_body``,
    ``empty_body``, ``no_valid_events``)."""
    try:
        frames = frames_for(body, content_type)
    except LookupError:
        consumer.reject("unsupported_media_type")
        raise IngestError(
            "unsupported_media_type",
            f"Content-Type {content_type or '(none)'!r} is not accepted; use one of: {', '.join(ACCEPTED_MEDIA_TYPES)}",
        ) from None
    except FramingError as exc:
        consumer.reject("malformed_body")
        raise IngestError("malformed_body", str(exc)) from None
    if not frames:
        raise IngestError("empty_body", "the body holds no events")
    ctx = StreamContext(source=source or "http", stream_key=run_id or uuid.uuid4().hex, run_id=run_id)
    decoder = StreamDecoder(ctx, dialect, on_reject=consumer.reject)
    events = decoder.feed(frames) + decoder.close()
    rejected = len(decoder.rejections)
    accepted = decoder.frames_seen - rejected - decoder.done_markers
    errors = [
        {"index": r.index, "reason": r.reason, "message": r.message}
        for r in decoder.rejections[: settings.max_errors_reported]
    ]
    if accepted <= 0 and rejected:
        raise IngestError("no_valid_events", "every event in the body was rejected", rejected=rejected, errors=errors)
    pairs = consumer.submit(events)
    return {
        "accepted": accepted,
        "rejected": rejected,
        "events": len(events),
        "dialect": decoder.dialect,
        "runs": _runs(pairs),
        "errors": errors,
    }
