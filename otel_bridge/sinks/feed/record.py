"""What one feed event says: the JSON object on its ``data:`` line (framed by :mod:`.sse`).

The ``data:`` of a feed event is one JSON object: the canonical event's fields
plus where it landed in the trace (the very ids the exported spans carry, from
the mapper's :class:`Placement`), the run's agent, the priced cost and a trace
link. Captured content (``text``, ``arguments``, ``result``) is included only
when the mapping captures content, and cut by the same rules and limit as on the
spans (:mod:`otel_bridge.content`), so the feed never shows more than the traces.
``state`` is a state change's original payload (the producer's snapshot or delta,
content too), so UI forms of the feed can pass it on.
Secrets were redacted from the event before the feed saw it.

The ``usage`` object's keys follow the conventions' version the sidecar emits
(:class:`~otel_bridge.semconv.Naming`): under ``gen_ai_latest_experimental`` the
cache-write count is ``cache_write``, as its span attribute is
``gen_ai.usage.cache_write.input_tokens``; by default it is ``cache_creation``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.content import cut_json_text, cut_text
from otel_bridge.model import AgentEvent, EventKind, Placement, TokenUsage


class FeedRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The JSON object on one feed event's ``data:`` line. ``None`` fields are left out,
    except ``parent_span_id``, which is ``null`` on a root span."""

    seq: int
    kind: str
    run_id: str
    timestamp_ns: int
    trace_id: str
    span_id: str
    parent_span_id: str | None
    trace_url: str | None = None
    dialect: str
    original_type: str
    source: str
    agent: str | None = None
    name: str | None = None
    provider: str | None = None
    model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    tool_name: str | None = None
    tool_type: str | None = None
    call_id: str | None = None
    parent_call_id: str | None = None
    status: str | None = None
    duration_ms: float | None = None
    usage: TokenUsage | None = None
    """A :class:`TokenUsage`, or the same counts under the keys the chosen conventions' version gives them."""
    cost_usd: float | None = None
    finish_reasons: tuple[str, ...] | None = None
    stream: bool | None = None
    error: str | None = None
    error_type: str | None = None
    conversation_id: str | None = None
    parent_run_id: str | None = None
    event_id: str | None = None
    inferred: bool = False
    timestamp_from_source: bool = True
    text: str | None = None
    arguments: str | None = None
    result: str | None = None
    state: msgspec.Raw | None = None


def enrich(
    event: AgentEvent,
    placement: Placement,
    seq: int,
    *,
    agent: str | None,
    trace_url_template: str | None,
    content: bool,
    limit: int | None = None,
    names: sc.Naming = sc.V1_41,
    redact: Callable[[str], str] | None = None,
) -> FeedRecord:
    """One mapped event as the feed shows it.

    ``duration_ms`` and ``cost_usd`` prefer the mapper's figures (the span's own
    duration, the priced cost) over what the producer reported.
    """
    trace_id = placement.trace_id.hex()
    span_id = placement.span_id.hex()
    return FeedRecord(
        seq=seq,
        kind=event.kind.value,
        run_id=event.run_id,
        timestamp_ns=event.timestamp_ns,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=placement.parent_span_id.hex() if placement.parent_span_id is not None else None,
        trace_url=(
            trace_url_template.format(trace_id=trace_id, span_id=span_id) if trace_url_template is not None else None
        ),
        dialect=event.dialect,
        original_type=event.original_type,
        source=event.source,
        agent=agent,
        name=event.name,
        provider=event.provider,
        model=event.model,
        response_model=event.response_model,
        response_id=event.response_id,
        tool_name=event.tool_name,
        tool_type=event.tool_type,
        call_id=event.call_id,
        parent_call_id=event.parent_call_id,
        status=event.status,
        duration_ms=placement.duration_ms if placement.duration_ms is not None else event.duration_ms,
        usage=_usage(event.usage, names.feed_usage_cache_write),
        cost_usd=placement.cost_usd if placement.cost_usd is not None else event.cost_usd,
        finish_reasons=event.finish_reasons,
        stream=event.stream,
        error=event.error,
        error_type=event.error_type,
        conversation_id=event.conversation_id,
        parent_run_id=event.parent_run_id,
        event_id=event.event_id,
        inferred=event.inferred,
        timestamp_from_source=event.timestamp_from_source,
        text=_cut(event.text, content, limit, cut_text),
        arguments=_cut(event.arguments, content, limit, cut_json_text),
        result=_cut(event.result, content, limit, cut_json_text),
        state=_state(event, content, limit, redact),
    )


class Enricher:
    """:func:`enrich` with the feed's fixed settings: what a published event needs to be enriched later.

    Everything it reads is fixed when the feed is built, and events and placements are immutable,
    so an event enriched when first read gets the record it would have got when published
    (its id and its run's agent, which depend on that moment, are given).
    """

    __slots__ = ("_bound_fixed", "content", "limit", "names", "redact", "trace_url_template")

    def __init__(
        self,
        *,
        trace_url_template: str | None,
        content: bool,
        limit: int | None,
        names: sc.Naming,
        redact: Callable[[str], str] | None,
    ) -> None:
        self.trace_url_template = trace_url_template
        self.content = content
        self.limit = limit
        self.names = names
        self.redact = redact
        url = 0 if trace_url_template is None else _JSON_CHAR * (len(trace_url_template) + 48) + 2
        self._bound_fixed = _BOUND_FIXED + url

    def record(self, event: AgentEvent, placement: Placement, seq: int, agent: str | None) -> FeedRecord:
        return enrich(
            event,
            placement,
            seq,
            agent=agent,
            trace_url_template=self.trace_url_template,
            content=self.content,
            limit=self.limit,
            names=self.names,
            redact=self.redact,
        )

    def frame_bound(self, event: AgentEvent, agent: str | None) -> int | None:
        """At least the length of the event's canonical frame (and its payload's), without enriching it.

        Every string of the record is one of the event's (or the run's ``agent``), and a character
        is at most :data:`_JSON_CHAR` bytes of JSON; the rest has a fixed bound. ``None`` for a state
        change shown with its payload (redaction may lengthen it): its size is made exactly.
        """
        payload = event.payload
        if payload is not None and self.content and event.kind is EventKind.STATE_CHANGED:
            return None
        e = event  # every string the record may carry, and the content the event holds (one expression: hot)
        chars = (
            len(e.run_id)
            + len(e.kind)
            + len(e.dialect)
            + len(e.original_type)
            + len(e.source)
            + len(e.agent or "")
            + len(e.name or "")
            + len(e.provider or "")
            + len(e.model or "")
            + len(e.response_model or "")
            + len(e.response_id or "")
            + len(e.tool_name or "")
            + len(e.tool_type or "")
            + len(e.call_id or "")
            + len(e.parent_call_id or "")
            + len(e.status or "")
            + len(e.error or "")
            + len(e.error_type or "")
            + len(e.conversation_id or "")
            + len(e.parent_run_id or "")
            + len(e.event_id or "")
            + len(e.text or "")
            + len(e.arguments or "")
            + len(e.result or "")
        )
        if event.finish_reasons is not None:
            chars += sum(len(reason) + 3 for reason in event.finish_reasons)
        if agent is not None:
            chars += len(agent)
        if self.content:
            chars += 3 * 64  # a cut value's marker (text, arguments, result) may be longer than a tiny limit
        held = len(payload) if payload is not None else 0
        return self._bound_fixed + _JSON_CHAR * chars + held

    def batch_bound(self, events: list[AgentEvent], agent_chars: int) -> int | None:
        """At least the summed length of ``events``' frames (and their payloads'), in one pass in C.

        The events encoded as one JSON array hold every string a record takes from its event, escaped
        just as the record's JSON escapes it (the same encoder), and each payload as it is; the rest of
        each record has the fixed bound of :meth:`frame_bound`, and the runs' agents (``agent_chars``
        characters in all) are added apart. ``None`` when a state change is shown with its payload
        (redaction may lengthen it): each size is then made exactly.
        """
        if self.content and any(e.kind is EventKind.STATE_CHANGED and e.payload is not None for e in events):
            return None
        per_event = self._bound_fixed + _DEFAULT_STRINGS + (_JSON_CHAR * 3 * 64 if self.content else 0)
        return len(_encoder.encode(events)) + len(events) * per_event + _JSON_CHAR * agent_chars


_JSON_CHAR = 6
"""The most bytes one character takes in JSON: ``\u001f`` (a code point takes at most 4 in UTF-8)."""

_BOUND_FIXED = (
    sum(len(name) + 6 for name in FeedRecord.__struct_fields__)  # "name": and a string value's quotes, the comma
    + 2  # the braces
    + 8 * 24  # numbers: seq, timestamp_ns (int64), the two floats (at most 24 characters each), with margin
    + 3 * 34  # trace, span and parent span ids (hex, quoted)
    + 300  # usage: five int64 counts under their keys
    + 3 * 5  # three booleans
    + 128  # the frame: "id: " and the id, "event: " and the kind, "data: ", line ends
)
"""The part of :meth:`Enricher.frame_bound` that does not depend on the event's strings."""

_DEFAULT_STRINGS = _JSON_CHAR * sum(
    len(field.default) for field in msgspec.structs.fields(AgentEvent) if isinstance(field.default, str)
)
"""The strings a record shows that an event's JSON leaves out when they are the default (``source``)."""


def _usage(usage: TokenUsage | None, cache_write_key: str) -> TokenUsage | None:
    """``usage`` as is when its keys are the version's (the default), else copied into the renamed form."""
    if usage is None or cache_write_key == sc.FEED_USAGE_CACHE_CREATION:
        return usage
    renamed = _usage_type(cache_write_key)
    return renamed(
        input=usage.input,
        output=usage.output,
        cache_read=usage.cache_read,
        cache_creation=usage.cache_creation,
        reasoning=usage.reasoning,
    )


@functools.cache
def _usage_type(cache_write_key: str) -> type[TokenUsage]:
    """A :class:`TokenUsage` (same fields, same methods) whose cache-write count is encoded as ``cache_write_key``."""
    return cast(
        "type[TokenUsage]",
        msgspec.defstruct(
            "FeedUsage",
            [(name, int | None, None) for name in TokenUsage.__struct_fields__],
            bases=(TokenUsage,),
            kw_only=True,
            omit_defaults=True,
            frozen=True,
            rename={sc.FEED_USAGE_CACHE_CREATION: cache_write_key},
        ),
    )


def _state(
    event: AgentEvent, content: bool, limit: int | None, redact: Callable[[str], str] | None
) -> msgspec.Raw | None:
    """The payload of a state change, compact (a producer's pretty-printed JSON has line breaks, and
    a feed event is one ``data:`` line), redacted as the spans' payloads are, and cut like any content."""
    if event.kind is not EventKind.STATE_CHANGED or event.payload is None or not content:
        return None
    text = bytes(event.payload).decode(errors="replace")
    if redact is not None:
        text = redact(text)
    try:
        compact = _encoder.encode(msgspec.json.decode(text))
    except msgspec.DecodeError:  # not JSON: carried as a JSON string, so the record stays JSON
        return msgspec.Raw(_encoder.encode(text if limit is None else cut_text(text, limit)))
    if limit is None or len(compact) <= limit:
        return msgspec.Raw(compact)
    return msgspec.Raw(cut_json_text(compact.decode(), limit).encode())


def _cut(value: str | None, content: bool, limit: int | None, cut: Callable[[str, int], str]) -> str | None:
    if value is None or not content:
        return None
    return value if limit is None else cut(value, limit)


_encoder = msgspec.json.Encoder()


def encode(value: object) -> bytes:
    """Compact JSON (never contains a raw newline, so it fits one ``data:`` line)."""
    return _encoder.encode(value)
