"""The fallback dialect, and the bridge's own canonical JSON.

A JSON object whose ``kind`` is a canonical kind (``llm.completed``...) is
read field for field as an :class:`AgentEvent` (so any producer can speak the
bridge's model directly). Anything else is kept as a ``custom`` event named by
its ``type``/``event_type``/``event`` field or SSE event name: unknown input is
recorded, never rejected. Its ``id`` (or SSE ``id:``) is the producer's event
id, except in JSON-RPC messages, where ``id`` is the request's. Run id: ``run_id``/``runId``/``session_id``/
``thread_id`` if present, else the stream's run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from otel_bridge.dialects.base import (
    TIME_MAX_NS,
    DecodeError,
    StreamContext,
    check_event,
    make_event,
    opt_str,
    parse_timestamp,
    raw,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind

NAME = "generic"

_KIND_VALUES = frozenset(kind.value for kind in EventKind)
_KIND_TEXT = {kind: kind.value for kind in EventKind}  # a dict lookup: cheaper than the enum's `value` property
_NS_MIN = 10**17  # an integer time at least this is epoch nanoseconds, as parse_timestamp reads it
_NAME_KEYS = ("type", "event_type", "event", "name")
_RUN_KEYS = ("run_id", "runId", "session_id", "sessionId", "thread_id", "threadId", "trace_id")
_TIME_KEYS = ("timestamp", "time", "ts", "created_at", "createdAt")


class _Canonical(AgentEvent, frozen=True, kw_only=True, omit_defaults=True):
    """Canonical JSON as it arrives: an :class:`AgentEvent` plus the wire-only fields.

    Decoding straight into a subclass of the canonical struct (and then
    ``structs.replace`` for the fields the bridge owns) costs a quarter of
    building a new event from a decoded dict: this is the ingest hot path.
    The fields the bridge fills in get defaults here and are always overwritten.
    """

    run_id: str = ""
    timestamp_ns: int = 0
    dialect: str = ""
    original_type: str = ""
    timestamp: str | float | int | None = None  # any format parse_timestamp reads
    type: str | None = None  # the producer's own name for the event


_decode_canonical = msgspec.json.Decoder(_Canonical).decode


def _event_id(obj: dict[str, Any]) -> str | None:
    """The object's own ``id``, unless it is a JSON-RPC message: there ``id`` names the request, and every
    response frame of one streamed request (A2A, MCP) carries the same one."""
    return None if "jsonrpc" in obj else opt_str(obj, "id")


def _is_canonical(obj: Any) -> bool:
    kind = obj.get("kind") if isinstance(obj, dict) else None
    return isinstance(kind, str) and kind in _KIND_VALUES  # `"kind": []` is not hashable


class GenericDialect:
    name = NAME

    def sniff(self, frame: Frame, obj: Any) -> bool:
        return _is_canonical(obj)

    def decoder(self, ctx: StreamContext) -> GenericDecoder:
        return GenericDecoder(ctx)


class GenericDecoder:
    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx

    def feed_bytes(self, frame: Frame) -> list[AgentEvent] | None:
        """Fast path: canonical JSON decoded straight into a typed struct (no dict).

        ``None`` when the frame is not canonical JSON; the caller then decodes
        it generically and calls :meth:`feed`, which also gives the precise error.
        """
        try:
            return [self._from_canonical(frame, _decode_canonical(frame.data))]
        except msgspec.DecodeError:  # ValidationError included
            return None

    def feed_frames(self, frames: Sequence[Frame], start: int, out: list[AgentEvent]) -> int:
        """:meth:`feed_bytes` over a body's frames in one loop: the ingest hot path (NDJSON bodies of
        canonical events). Each event is the one :meth:`_from_canonical` gives; a frame it does not take
        (not canonical JSON: ``[DONE]`` and other markers neither) is left to the caller before anything
        of it is read (the stream's clock included), so the caller's frame-by-frame path decodes or
        rejects it as before.

        The decoded struct is new and nobody else holds it yet: the fields the bridge owns are set in it
        (``force_setattr``, the frozen struct's own way to be finished before it is shared), each only
        where the wire left another value, rather than copied into a second struct with ``replace``
        (a third of decoding a frame)."""
        ctx = self._ctx
        run_id = ctx.run_id or ctx.stream_key
        source = ctx.source
        decode = _decode_canonical
        set_field = msgspec.structs.force_setattr
        raw_json = msgspec.Raw
        kind_text = _KIND_TEXT
        append = out.append
        for i in range(start, len(frames)):
            data = frames[i].data
            try:
                c = decode(data)
            except Exception:  # not canonical (or too deep): the caller decodes it generically
                return i
            ts = c.timestamp
            if type(ts) is int and _NS_MIN <= ts <= TIME_MAX_NS:
                from_source = True  # epoch nanoseconds, in range: what parse_timestamp returns for it
            else:
                ts, from_source = self._time(ts)
            # What _from_canonical's replace sets, field for field.
            if not c.run_id:
                set_field(c, "run_id", run_id)
            set_field(c, "timestamp_ns", ts)
            if c.timestamp_from_source is not from_source:
                set_field(c, "timestamp_from_source", from_source)
            set_field(c, "dialect", NAME)
            set_field(c, "original_type", c.type or kind_text[c.kind])
            if c.source is not source:
                set_field(c, "source", source)
            set_field(c, "payload", raw_json(data))
            set_field(c, "timestamp", None)
            if c.type is not None:
                set_field(c, "type", None)
            append(check_event(c))
        return len(frames)

    def close(self) -> list[AgentEvent]:
        return []

    def _run_id(self, obj: dict[str, Any]) -> str:
        for key in _RUN_KEYS:
            value = opt_str(obj, key)
            if value:
                return value
        return self._ctx.run_id or self._ctx.stream_key

    def _time(self, value: object) -> tuple[int, bool]:
        ts = parse_timestamp(value)
        return (ts, True) if ts is not None else (self._ctx.arrival_ns(), False)

    def feed(self, frame: Frame, obj: Any) -> list[AgentEvent]:
        if _is_canonical(obj):
            return [self._canonical(frame, obj)]
        if not isinstance(obj, dict):
            obj = {"value": obj}
        name = frame.event
        for key in _NAME_KEYS:
            if name is None and isinstance(obj.get(key), str):
                name = obj[key]
        ts, from_source = next(
            (self._time(obj[key]) for key in _TIME_KEYS if key in obj), (self._ctx.arrival_ns(), False)
        )
        return [
            make_event(
                self._ctx,
                NAME,
                self._run_id(obj),
                EventKind.CUSTOM,
                name or "event",
                ts,
                frame,
                from_source,
                event_id=frame.id or _event_id(obj),
                name=name or "event",
            )
        ]

    def _canonical(self, frame: Frame, obj: dict[str, Any]) -> AgentEvent:
        try:
            c = msgspec.convert(obj, _Canonical, strict=False)
        except msgspec.ValidationError as exc:
            raise DecodeError(f"canonical event: {exc}") from exc
        return self._from_canonical(frame, c)

    def _from_canonical(self, frame: Frame, c: _Canonical) -> AgentEvent:
        ts, from_source = self._time(c.timestamp)
        event: AgentEvent = msgspec.structs.replace(
            c,
            run_id=c.run_id or self._ctx.run_id or self._ctx.stream_key,
            timestamp_ns=ts,
            timestamp_from_source=from_source,
            dialect=NAME,
            original_type=c.type or c.kind.value,
            source=self._ctx.source,
            payload=raw(frame),
            timestamp=None,
            type=None,
        )
        return check_event(event)


DIALECT = GenericDialect()
