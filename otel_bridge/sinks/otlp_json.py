"""OTLP/JSON encoding (the official mapping: hex ids, lowerCamelCase, int64 as strings).

Used by ``replay --out``, ``GET /v1/traces/{id}`` and the ``http/json`` export
protocol. Enums are integers, as the OTLP JSON mapping requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from otel_bridge.model import AttributeValue, SpanRecord, StatusCode
from otel_bridge.sinks.otlp_clamp import clamp_span

_encoder = msgspec.json.Encoder()


def any_value(value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"arrayValue": {"values": [any_value(v) for v in value]}}


def attributes(attrs: dict[str, AttributeValue]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in attrs.items()]


def span_json(span: SpanRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": span.trace_id.hex(),
        "spanId": span.span_id.hex(),
        "flags": 0x101,
        "name": span.name,
        "kind": int(span.kind),
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": attributes(span.attributes),
    }
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id.hex()
    if span.events:
        out["events"] = [
            {"timeUnixNano": str(e.time_ns), "name": e.name, "attributes": attributes(e.attributes)}
            for e in span.events
        ]
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        out["links"] = [
            {"traceId": link.trace_id.hex(), "spanId": link.span_id.hex(), "attributes": attributes(link.attributes)}
            for link in span.links
        ]
    if span.status_code is not StatusCode.UNSET:
        status: dict[str, Any] = {"code": int(span.status_code)}
        if span.status_message:
            status["message"] = span.status_message
        out["status"] = status
    return out


def request_json(
    spans: Sequence[SpanRecord],
    resource: dict[str, AttributeValue],
    scope_name: str,
    scope_version: str,
    schema_url: str = "",
) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest`` as a JSON-ready dict (one resource, one scope)."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes(resource)},
                "scopeSpans": [
                    {
                        "scope": {"name": scope_name, "version": scope_version},
                        "spans": [span_json(s) for s in spans],
                        "schemaUrl": schema_url,
                    }
                ],
                "schemaUrl": schema_url,
            }
        ]
    }


def encode_request(
    spans: Sequence[SpanRecord],
    resource: dict[str, AttributeValue],
    scope_name: str,
    scope_version: str,
    schema_url: str = "",
) -> bytes:
    """The request as JSON bytes. Never raises on a record: one that cannot be encoded is clamped."""
    try:
        return _encoder.encode(request_json(spans, resource, scope_name, scope_version, schema_url))
    except (ValueError, TypeError, OverflowError):  # e.g. a string that is not valid Unicode
        clamped = [clamp_span(s) for s in spans]
        return _encoder.encode(request_json(clamped, resource, scope_name, scope_version, schema_url))
