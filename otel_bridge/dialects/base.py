"""What a dialect is: a sniffer and a stateful decoder from frames to events.

Adding a dialect is one new module that defines a :class:`Dialect` and one
line in :mod:`otel_bridge.dialects.registry`. Its decoder builds every event
with :func:`make_event`, whose fields (:class:`EventFields`) mypy checks by
name and type. A decoder that can skip the generic JSON decode also defines
``feed_bytes`` and ``feed_frames``, its batch form (:class:`FastDecoder`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, TypedDict, TypeGuard, Unpack, runtime_checkable

import msgspec

from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind, TokenUsage


class DecodeError(ValueError):
    """One frame cannot be decoded: the frame is rejected and counted, the stream goes on."""

    reason = "undecodable"


class ValueRangeError(DecodeError):
    """A value no span can carry (a time outside 1970..2262, an infinite duration...): the event is rejected.

    ``reason`` names what was out of range; it is the rejection's counted reason.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProducerClock:
    """Times on the producer's clock: its own stamps where it sends them, else arrival time shifted
    by the last known producer-minus-arrival offset, so unstamped events sort among stamped ones.

    ``at(stamp)`` is ``(ns, True)`` for a producer's stamp, ``(ns, False)`` for an estimate.
    """

    __slots__ = ("_ctx", "offset_ns")

    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self.offset_ns: int | None = None

    def at(self, stamp: object) -> tuple[int, bool]:
        arrival = self._ctx.arrival_ns()
        ts = parse_timestamp(stamp)
        if ts is not None:
            self.offset_ns = ts - arrival
            return ts, True
        return arrival + (self.offset_ns or 0), False

    def now_ns(self) -> int:
        """The estimate for "now" on the producer's clock."""
        return self._ctx.arrival_ns() + (self.offset_ns or 0)


@dataclass
class StreamContext:
    """What a decoder knows about the stream it decodes.

    ``stream_key`` names the stream (one HTTP request, one upstream connection,
    one replayed file); dialects without run ids group events into runs under
    it. ``run_id`` is set when the client named the run explicitly. ``agent`` and
    ``agent_description`` are what the source knows of the agent it talks to (an A2A
    agent card), for dialects whose wire does not name it.
    """

    source: str
    stream_key: str
    run_id: str | None = None
    clock_ns: Callable[[], int] = time.time_ns
    agent: str | None = None
    agent_description: str | None = None

    def arrival_ns(self) -> int:
        """Arrival time for events that carry no timestamp of their own."""
        return self.clock_ns()

    def numbered_run(self, index: int) -> str:
        """The stream's ``index``-th run, for dialects without run ids: the client's run id or the
        stream key, then ``<key>#1``, ``<key>#2``... when the stream goes on after a terminal event."""
        base = self.run_id or self.stream_key
        return base if index == 0 else f"{base}#{index}"


class Decoder(Protocol):
    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        """Events for one frame whose JSON ``data`` has been decoded into ``obj``."""
        ...

    def close(self) -> list[AgentEvent]:
        """Events still pending at the end of the stream."""
        ...


@runtime_checkable
class FastDecoder(Decoder, Protocol):
    """A decoder with a typed fast path that skips the generic JSON decode."""

    def feed_bytes(self, frame: Frame) -> list[AgentEvent] | None:
        """Events for one frame decoded straight from its bytes, or ``None`` to fall back to :meth:`feed`."""
        ...

    def feed_frames(self, frames: Sequence[Frame], start: int, out: list[AgentEvent]) -> int:
        """``feed_bytes`` over ``frames[start:]`` in one call, one event a frame appended to ``out``, up to the
        first frame the fast path does not take (not its JSON, anything short): that frame's index is
        returned (``len(frames)`` when it took them all), and the caller decodes it frame by frame, as
        if it came alone. A value out of range raises :class:`DecodeError` for the frame at ``start``
        plus the events appended, as ``feed_bytes`` would for it alone."""
        ...


FastBatch = Callable[[Sequence[Frame], int, list[AgentEvent]], int]


def fast_paths(decoder: Decoder) -> tuple[Callable[[Frame], list[AgentEvent] | None] | None, FastBatch | None]:
    """The decoder's ``(feed_bytes, feed_frames)`` if its class is a :class:`FastDecoder`, else ``(None, None)``."""
    if _is_fast(decoder):
        return decoder.feed_bytes, decoder.feed_frames
    return None, None


def _is_fast(decoder: Decoder) -> TypeGuard[FastDecoder]:
    return _fast_class(type(decoder))


@cache
def _fast_class(cls: type) -> bool:
    # Once per decoder class: a structural check against a protocol costs ~50 us, and every
    # HTTP request is a stream of its own.
    return issubclass(cls, FastDecoder)


class Dialect(Protocol):
    name: str

    def sniff(self, frame: Frame, obj: Any) -> bool:
        """True if this frame could only come from this dialect."""
        ...

    def decoder(self, ctx: StreamContext) -> Decoder: ...


# --- helpers shared by dialect modules ----------------------------------------

_EPOCH_MS_MIN = 10**11  # below: seconds; above: milliseconds (until the year 5138)
_EPOCH_US_MIN = 10**14
_EPOCH_NS_MIN = 10**17


def parse_timestamp(value: object) -> int | None:
    """Epoch nanoseconds from ISO 8601 (naive is UTC) or an epoch number in s, ms, us or ns.

    ``None`` when there is no time to read; a time outside what a span can carry is
    returned as it is and rejected by :func:`check_event` (``timestamp_out_of_range``).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        if v <= 0:
            return None
        if v == math.inf:
            raise ValueRangeError("timestamp_out_of_range", "timestamp is not a finite number")
        if v >= _EPOCH_NS_MIN:
            return int(value)
        if v >= _EPOCH_US_MIN:
            return int(v * 1_000)
        if v >= _EPOCH_MS_MIN:
            return int(v * 1_000_000)
        return int(v * 1_000_000_000)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)  # accepts a space instead of T, too
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    return None


class EventFields(TypedDict, total=False):
    """What a dialect says about an event: every :class:`AgentEvent` field a builder does not fill in.

    Builders take these as ``**fields: Unpack[EventFields]``, so mypy checks each
    keyword's name and type: a misspelt field fails the type check, not a live stream.
    """

    inferred: bool
    event_id: str | None
    parent_run_id: str | None
    agent: str | None
    agent_description: str | None
    provider: str | None
    model: str | None
    response_model: str | None
    response_id: str | None
    tool_name: str | None
    tool_type: str | None
    call_id: str | None
    parent_call_id: str | None
    name: str | None
    status: str | None
    usage: TokenUsage | None
    finish_reasons: tuple[str, ...] | None
    stream: bool | None
    duration_ms: float | None
    error: str | None
    error_type: str | None
    cost_usd: float | None
    temperature: float | None
    max_tokens: int | None
    top_p: float | None
    conversation_id: str | None
    traceparent: str | None
    text: str | None
    arguments: str | None
    result: str | None
    attributes: tuple[tuple[str, str | int | bool], ...] | None


# The AgentEvent fields a builder fills in itself; EventFields holds all the others.
BUILDER_FIELDS = frozenset(
    {"kind", "run_id", "timestamp_ns", "timestamp_from_source", "dialect", "original_type", "source", "payload"}
)


# --- the one check of values at the mapping boundary -----------------------------
#
# Every event is built by make_event (or, for canonical JSON, the generic dialect's
# typed fast path, which calls check_event too), so this is the one place values are
# checked: past it, the mapper's arithmetic and the OTLP encoders cannot overflow.

TIME_MIN_NS = 1
"""Times are epoch nanoseconds after 1970-01-01 (OTLP's fixed64; 0 means "unset" there)."""
TIME_MAX_NS = 2**63 - 1
"""...and before 2262-04-11, the end of int64 nanoseconds (the mapper adds durations to them)."""
DURATION_MAX_MS = 10**12
"""About 31 years: a longer ``duration_ms`` is a unit mistake, not a span."""
INT_MAX = 2**63 - 1
"""Token counts and ``max_tokens`` are OTLP int64 attributes."""


def check_time(ts: int) -> None:
    """Raise :class:`ValueRangeError` (``timestamp_out_of_range``) unless ``ts`` is within 1970..2262."""
    if not TIME_MIN_NS <= ts <= TIME_MAX_NS:
        raise ValueRangeError(
            "timestamp_out_of_range", f"timestamp {ts} ns is outside 1970-01-01..2262-04-11 (what a span can carry)"
        )


_FLOAT_FIELDS = ("cost_usd", "temperature", "top_p")
_USAGE_FIELDS = ("input", "output", "cache_read", "cache_creation", "reasoning")
_isfinite = math.isfinite


def check_event(event: AgentEvent) -> AgentEvent:
    """The event itself if every value is one a span can carry; else :class:`ValueRangeError` naming it.

    Runs for every event: plain comparisons first, names looked up only to explain a failure.
    """
    if not TIME_MIN_NS <= event.timestamp_ns <= TIME_MAX_NS:
        check_time(event.timestamp_ns)
    d = event.duration_ms
    if d is not None and not 0 <= d <= DURATION_MAX_MS:  # NaN fails both comparisons
        raise ValueRangeError(
            "duration_out_of_range", f"duration_ms must be between 0 and {DURATION_MAX_MS} ms, got {d}"
        )
    c, t, p = event.cost_usd, event.temperature, event.top_p
    if (
        (c is not None and not _isfinite(c))
        or (t is not None and not _isfinite(t))
        or (p is not None and not _isfinite(p))
    ):
        name = next(n for n in _FLOAT_FIELDS if not _isfinite(getattr(event, n) or 0.0))
        raise ValueRangeError("number_out_of_range", f"{name} must be a finite number, got {getattr(event, name)}")
    m = event.max_tokens
    if m is not None and not -INT_MAX <= m <= INT_MAX:
        raise ValueRangeError("number_out_of_range", f"max_tokens {m} is beyond int64")
    u = event.usage
    if u is not None:
        # The five counts in one test: an OR of ints is within 0..INT_MAX exactly when each is (a negative one
        # makes it negative, one past INT_MAX sets a bit past it).
        counts = (u.input or 0) | (u.output or 0) | (u.cache_read or 0) | (u.cache_creation or 0) | (u.reasoning or 0)
        if not 0 <= counts <= INT_MAX:
            for n in (u.input, u.output, u.cache_read, u.cache_creation, u.reasoning):
                if n is not None and not 0 <= n <= INT_MAX:
                    name = next(f for f in _USAGE_FIELDS if getattr(u, f) == n)
                    raise ValueRangeError(
                        "number_out_of_range", f"usage.{name} must be between 0 and {INT_MAX}, got {n}"
                    )
    return event


def make_event(
    ctx: StreamContext,
    dialect: str,
    run_id: str,
    kind: EventKind,
    original_type: str,
    ts: int,
    frame: Frame | None,
    from_source: bool = False,
    **fields: Unpack[EventFields],
) -> AgentEvent:
    """The one way a dialect builds an event: ``ts`` is the event's own time when ``from_source``, else its arrival.

    ``frame`` is ``None`` for events the dialect infers (no payload of their own).
    """
    return check_event(
        AgentEvent(
            kind=kind,
            run_id=run_id,
            timestamp_ns=ts,
            timestamp_from_source=from_source,
            dialect=dialect,
            original_type=original_type,
            source=ctx.source,
            payload=msgspec.Raw(frame.data) if frame is not None else None,
            **fields,
        )
    )


def raw(frame: Frame) -> msgspec.Raw:
    return msgspec.Raw(frame.data)


def opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def opt_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def opt_float(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def json_text(value: object) -> str | None:
    """Content kept as JSON text (strings stay as they are)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def require_object(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DecodeError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj
