"""OTLP/JSON read back into protobuf spans, and a canonical form to compare spans from two places.

OTLP/JSON writes ids as hex where protobuf's JSON mapping expects base64;
:func:`spans_from_otlp_json` undoes that, so the embedded store's
``/v1/traces/{id}``, ``replay --out`` and Jaeger's ``/api/v3/traces/{id}`` all
come back as :class:`Span` objects.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData


def _hex(raw: bytes) -> bytes:
    return bytes.fromhex(base64.b64encode(raw).decode()) if raw else b""


def spans_from_otlp_json(document: dict[str, Any]) -> list[tuple[dict[str, Any], Span]]:
    """Every span of an OTLP/JSON document (``{"resourceSpans": [...]}``) with its resource attributes."""
    data = json_format.ParseDict({"resourceSpans": document.get("resourceSpans", [])}, TracesData())
    out: list[tuple[dict[str, Any], Span]] = []
    for rs in data.resource_spans:
        resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for span in ss.spans:
                span.trace_id = _hex(span.trace_id)
                span.span_id = _hex(span.span_id)
                span.parent_span_id = _hex(span.parent_span_id)
                for link in span.links:
                    link.trace_id = _hex(link.trace_id)
                    link.span_id = _hex(link.span_id)
                out.append((resource, span))
    return out


def value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(value(x) for x in v.array_value.values)
    return getattr(v, kind)


def canonical(span: Span) -> dict[str, Any]:
    """Everything a trace viewer shows of a span, comparable with ``==``."""
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent": span.parent_span_id.hex(),
        "name": span.name,
        "kind": span.kind,
        "start": span.start_time_unix_nano,
        "end": span.end_time_unix_nano,
        "status": (span.status.code, span.status.message),
        "attributes": {kv.key: value(kv.value) for kv in span.attributes},
        "events": [(e.name, e.time_unix_nano, {kv.key: value(kv.value) for kv in e.attributes}) for e in span.events],
        "links": [
            (link.trace_id.hex(), link.span_id.hex(), {kv.key: value(kv.value) for kv in link.attributes})
            for link in span.links
        ],
    }
