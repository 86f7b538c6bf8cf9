"""Span records cut down to what OTLP can carry: the encoders' fallback, so encoding never raises.

Values are checked once where events enter the mapper (``dialects.base.check_event``),
so a record that reaches an encoder is normally in range. This module is the second
line: when encoding a record fails anyway (a time past ``fixed64``, an integer past
``int64`` from sums, a string that is not valid Unicode), :func:`clamp_span` gives
an equivalent record the encoders accept: times and integers clamped to their
range, strings with invalid code points replaced, values of unknown types as text.
It is slow and only ever runs for such a record.
"""

from __future__ import annotations

import msgspec

from otel_bridge.model import Attributes, AttributeValue, SpanEventRecord, SpanLinkRecord, SpanRecord

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


def clamp_time(ns: object) -> int:
    """A ``fixed64`` time: 0 (unset) when below, the largest value when above."""
    if not isinstance(ns, int):
        return 0
    return min(max(ns, 0), U64_MAX)


def clamp_text(text: object) -> str:
    """Valid Unicode (lone surrogates replaced), whatever it was given."""
    if not isinstance(text, str):
        text = str(text)
    return text.encode("utf-8", "replace").decode("utf-8")


def _scalar(value: object) -> str | bool | int | float:
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return min(max(value, I64_MIN), I64_MAX)
    return clamp_text(value)


def clamp_value(value: object) -> AttributeValue:
    if isinstance(value, tuple | list):
        return tuple(_scalar(v) for v in value)
    return _scalar(value)


def clamp_attributes(attributes: Attributes) -> Attributes:
    return {clamp_text(k): clamp_value(v) for k, v in attributes.items()}


def clamp_span(span: SpanRecord) -> SpanRecord:
    """An equivalent record whose every value OTLP can carry."""
    return msgspec.structs.replace(
        span,
        name=clamp_text(span.name),
        start_ns=clamp_time(span.start_ns),
        end_ns=clamp_time(span.end_ns),
        attributes=clamp_attributes(span.attributes),
        events=tuple(
            SpanEventRecord(clamp_text(e.name), clamp_time(e.time_ns), clamp_attributes(e.attributes))
            for e in span.events
        ),
        links=tuple(SpanLinkRecord(lk.trace_id, lk.span_id, clamp_attributes(lk.attributes)) for lk in span.links),
        status_message=clamp_text(span.status_message),
        dropped_events=min(max(span.dropped_events, 0), 2**32 - 1),
    )
