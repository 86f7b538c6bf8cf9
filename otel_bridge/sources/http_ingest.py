"""Events pushed over HTTP: one request body to the consumer (the route is :mod:`otel_bridge.web.ingest`).

Accepts one JSON event, a JSON array, NDJSON, or a captured SSE stream
(``text/event-stream``). A forced dialect is used as given, otherwise a request
header that names a protocol settles it (a client that forwards the producer's
response headers, e.g. ``x-vercel-ai-ui-message-stream: v1``; the registry's
header hints), else it is detected from the first frames. Grouping into runs: events carry their own run
id where the dialect has one (OpenIntent's intent id, a ``run_id`` field...);
events without one (agent-event-stream) belong to the run named by the
request's ``run_id``, or else to a new run per request.

Batch semantics: a body is decoded and validated whole before anything of it is
mapped (:func:`decode_body`). A body refused whole raises :class:`IngestError`
with a stable code and nothing is mapped. Otherwise each frame that fails is
rejected (counted, listed in ``errors`` with its index and reason, and every
rejected index in ``rejected_indexes``) and every other frame's events are
mapped, each exactly once: a client resends only the rejected frames, fixed, and
a retry of those never maps an accepted event twice.

The event loop is never held for long: a body over :data:`OFF_LOOP_BYTES` is
decoded in a worker thread (decoding touches nothing shared), and its events are
mapped in slices of :data:`SUBMIT_SLICE` with a yield to the loop between them,
so health checks and other requests are answered while a 10 MB body is ingested.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from otel_bridge.config import IngestSettings
from otel_bridge.dialects import registry
from otel_bridge.dialects.base import Dialect, StreamContext
from otel_bridge.dialects.framing import ACCEPTED_MEDIA_TYPES, FramingError, frames_for
from otel_bridge.dialects.stream import Rejection, StreamDecoder
from otel_bridge.model import AgentEvent, Placement
from otel_bridge.pipeline import EventConsumer

_MAX_RUNS_LISTED = 20
_KEY_PREFIX = os.urandom(8).hex()
_key_numbers = itertools.count()


def _request_key() -> str:
    """A new run per request for events that name none: 32 hex digits, unique to this request.

    64 random bits drawn once per process, then the request's number: unique across requests and
    restarts without a system call per request (128 fresh random bits were one, on every small POST).
    Safe from the worker threads that decode large bodies: ``next`` on the counter is one step in C.
    """
    return f"{_KEY_PREFIX}{next(_key_numbers):016x}"


OFF_LOOP_BYTES = 256 * 1024
"""Bodies larger than this are decoded in a worker thread (a 256 KB body decodes in about 10 ms)."""
SUBMIT_SLICE = 500
"""Events mapped between two yields to the event loop (tens of ms of mapping at most)."""
_COUNTED_CODES = frozenset({"unsupported_media_type", "malformed_body"})
_TIMESTAMP = operator.attrgetter("timestamp_ns")


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


@dataclass
class Decoded:
    """A body decoded and validated whole, nothing of it mapped yet."""

    events: list[AgentEvent]
    rejections: list[Rejection]
    accepted: int  # frames that gave events (or were accepted as nothing, like a keep-alive)
    dialect: str | None


def decode_body(
    body: bytes,
    content_type: str,
    *,
    dialect: Dialect | None = None,
    run_id: str | None = None,
    source: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Decoded:
    """Frames, JSON, dialect, validation: everything short of mapping. Touches nothing shared (thread-safe).

    Raises :class:`IngestError` (``unsupported_media_type``, ``malformed_body``, ``empty_body``);
    the caller counts the refusal.
    """
    try:
        frames = frames_for(body, content_type)
    except LookupError:
        raise IngestError(
            "unsupported_media_type",
            f"Content-Type {content_type or '(none)'!r} is not accepted; use one of: {', '.join(ACCEPTED_MEDIA_TYPES)}",
        ) from None
    except FramingError as exc:
        raise IngestError("malformed_body", str(exc)) from None
    if not frames:
        raise IngestError("empty_body", "the body holds no events")
    ctx = StreamContext(source or "http", run_id or _request_key(), run_id)
    decoder = StreamDecoder(ctx, dialect)
    if headers:
        decoder.hint(headers)  # before the first frame: no events, only the dialect
    events = decoder.feed(frames)
    if ended := decoder.close():
        events += ended
    accepted = decoder.frames_seen - len(decoder.rejections) - decoder.done_markers
    return Decoded(events, decoder.rejections, accepted, decoder.dialect)


def _count(consumer: EventConsumer, decoded: Decoded, settings: IngestSettings) -> list[dict[str, object]]:
    """Count every rejection (on the loop: the consumer is not thread-safe); the errors the answer lists."""
    if not decoded.rejections:  # nearly every body
        return []
    for r in decoded.rejections:
        consumer.reject(r.reason)
    errors: list[dict[str, object]] = [
        {"index": r.index, "reason": r.reason, "message": r.message}
        for r in decoded.rejections[: settings.max_errors_reported]
    ]
    if decoded.accepted <= 0 and decoded.rejections:
        raise IngestError(
            "no_valid_events",
            "every event in the body was rejected",
            rejected=len(decoded.rejections),
            errors=errors,
        )
    return errors


def _answer(
    decoded: Decoded, errors: list[dict[str, object]], pairs: Sequence[tuple[AgentEvent, Placement]]
) -> dict[str, object]:
    return {
        "accepted": decoded.accepted,
        "rejected": len(decoded.rejections),
        "events": len(decoded.events),
        "dialect": decoded.dialect,
        "runs": _runs(pairs),
        "errors": errors,
        "rejected_indexes": [r.index for r in decoded.rejections],
    }


def _refused(consumer: EventConsumer, exc: IngestError) -> IngestError:
    if exc.code in _COUNTED_CODES:
        consumer.reject(exc.code)
    return exc


def ingest_body(
    consumer: EventConsumer,
    settings: IngestSettings,
    body: bytes,
    content_type: str,
    *,
    dialect: Dialect | None = None,
    run_id: str | None = None,
    source: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Decode one body and submit its events, all at once on the calling thread (see :func:`ingest`).

    The answer: ``{"accepted", "rejected", "events", "dialect", "runs", "errors", "rejected_indexes"}``.
    Raises :class:`IngestError` (``unsupported_media_type``, ``malformed_body``, ``empty_body``,
    ``no_valid_events``); nothing is mapped then.
    """
    try:
        decoded = decode_body(body, content_type, dialect=dialect, run_id=run_id, source=source, headers=headers)
    except IngestError as exc:
        raise _refused(consumer, exc) from None
    errors = _count(consumer, decoded, settings)
    return _answer(decoded, errors, consumer.submit(decoded.events))


async def ingest(
    consumer: EventConsumer,
    settings: IngestSettings,
    body: bytes,
    content_type: str,
    *,
    dialect: Dialect | None = None,
    run_id: str | None = None,
    source: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """:func:`ingest_body` that never holds the event loop for long (large bodies: thread, then slices)."""
    if len(body) <= OFF_LOOP_BYTES:
        return ingest_body(
            consumer, settings, body, content_type, dialect=dialect, run_id=run_id, source=source, headers=headers
        )
    try:
        decoded = await asyncio.to_thread(
            decode_body, body, content_type, dialect=dialect, run_id=run_id, source=source, headers=headers
        )
    except IngestError as exc:
        raise _refused(consumer, exc) from None
    errors = _count(consumer, decoded, settings)
    events: Sequence[AgentEvent] = decoded.events
    if len(events) > 1 and all(e.timestamp_from_source for e in events):
        # The consumer maps a self-timed batch in time order; sorted whole here, every slice keeps that order.
        events = sorted(events, key=_TIMESTAMP)
    pairs: list[tuple[AgentEvent, Placement]] = []
    for start in range(0, len(events), SUBMIT_SLICE):
        if start:
            await asyncio.sleep(0)
        pairs.extend(consumer.submit(events[start : start + SUBMIT_SLICE]))
    return _answer(decoded, errors, pairs)
