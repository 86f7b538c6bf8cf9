"""Direct OTLP encodings parse back with opentelemetry-proto, and agree with each other."""

from __future__ import annotations

import base64

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_bridge import semconv as sc
from otel_bridge.model import SpanEventRecord, SpanKind, SpanLinkRecord, SpanRecord, StatusCode
from otel_bridge.sinks import otlp_json
from otel_bridge.sinks.otlp_proto import ProtoEncoder, varint

RESOURCE = {sc.SERVICE_NAME: "svc", "n": 3}
SPAN = SpanRecord(
    trace_id=bytes(range(1, 17)),
    span_id=bytes(range(1, 9)),
    parent_span_id=bytes(range(9, 17)),
    name="chat gpt-4o",
    kind=SpanKind.CLIENT,
    start_ns=1_800_000_000_123_456_789,
    end_ns=1_800_000_001_000_000_000,
    attributes={
        "s": "x" * 300,  # longer than the cached-pair limit
        "b": False,
        "i": -5,
        "big": 2**62,
        "f": 0.25,
        "arr": ("stop", "length"),
        "ints": (1, 2),
    },
    events=(SpanEventRecord("progress", 1_800_000_000_500_000_000, {"k": "v"}),),
    links=(SpanLinkRecord(bytes(16 * [7]), bytes(8 * [8]), {"why": "requested"}),),
    status_code=StatusCode.ERROR,
    status_message="boom",
    dropped_events=4,
)


def _parse(body: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(body)


def test_varint_matches_protobuf() -> None:
    assert varint(0) == b"\x00"
    assert varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"


def test_proto_bytes_parse_back_with_every_field() -> None:
    req = _parse(ProtoEncoder(RESOURCE, "otel-bridge", "1.2.3", sc.SCHEMA_URL).encode([SPAN, SPAN]))
    (rs,) = req.resource_spans
    assert {kv.key: kv.value.string_value or kv.value.int_value for kv in rs.resource.attributes} == {
        "service.name": "svc",
        "n": 3,
    }
    assert rs.schema_url == sc.SCHEMA_URL
    (ss,) = rs.scope_spans
    assert (ss.scope.name, ss.scope.version) == ("otel-bridge", "1.2.3")
    assert len(ss.spans) == 2
    span = ss.spans[0]
    assert span.trace_id == SPAN.trace_id
    assert span.span_id == SPAN.span_id
    assert span.parent_span_id == SPAN.parent_span_id
    assert span.name == "chat gpt-4o"
    assert span.kind == 3
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (SPAN.start_ns, SPAN.end_ns)
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert attrs["s"].string_value == "x" * 300
    assert attrs["b"].HasField("bool_value")
    assert attrs["b"].bool_value is False
    assert attrs["i"].int_value == -5
    assert attrs["big"].int_value == 2**62
    assert attrs["f"].double_value == 0.25
    assert [v.string_value for v in attrs["arr"].array_value.values] == ["stop", "length"]
    assert [v.int_value for v in attrs["ints"].array_value.values] == [1, 2]
    (event,) = span.events
    assert (event.name, event.time_unix_nano, event.attributes[0].key) == ("progress", 1_800_000_000_500_000_000, "k")
    assert span.dropped_events_count == 4
    (link,) = span.links
    assert (link.trace_id, link.span_id) == (bytes(16 * [7]), bytes(8 * [8]))
    assert (span.status.code, span.status.message) == (2, "boom")
    assert span.flags & 0xFF == 1


def test_json_encoding_is_the_otlp_json_mapping_and_equals_the_proto() -> None:
    body = otlp_json.encode_request([SPAN], RESOURCE, "otel-bridge", "1.2.3", sc.SCHEMA_URL)
    parsed = json_format.Parse(body, ExportTraceServiceRequest())
    span = parsed.resource_spans[0].scope_spans[0].spans[0]
    # OTLP/JSON carries ids as hex, where protobuf's JSON mapping expects base64:
    # json_format decodes the hex text as base64, so re-encode to compare.
    assert base64.b64encode(span.trace_id).decode() == SPAN.trace_id.hex()
    assert base64.b64encode(span.span_id).decode() == SPAN.span_id.hex()
    for s in (span, *parsed.resource_spans[0].scope_spans[0].spans):
        s.trace_id, s.span_id, s.parent_span_id = SPAN.trace_id, SPAN.span_id, SPAN.parent_span_id
        for link in s.links:
            link.trace_id, link.span_id = SPAN.links[0].trace_id, SPAN.links[0].span_id
    proto = _parse(ProtoEncoder(RESOURCE, "otel-bridge", "1.2.3", sc.SCHEMA_URL).encode([SPAN]))
    assert parsed == proto
