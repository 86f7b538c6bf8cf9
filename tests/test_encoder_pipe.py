"""Spans already encoded as OTLP bytes (the native path's pipe frames) in the worker's queues and requests.

An encoded batch is kept and counted by its spans, taken whole, stored as it came in the durable
queue beside msgpack rows of an earlier version, and framed into the same request bytes as
encoding the records there would give.
"""

from __future__ import annotations

import pathlib

import msgspec
import pytest

from otel_bridge.config import OtlpSettings
from otel_bridge.model import SpanKind, SpanRecord
from otel_bridge.sinks.export import encoded
from otel_bridge.sinks.export.durable_queue import DurableQueue
from otel_bridge.sinks.export.exporter import OtlpExporter
from otel_bridge.sinks.export.pipe import frame_spans
from otel_bridge.sinks.export.queue import BatchQueue
from otel_bridge.sinks.otlp_proto import encode_span_fields
from otel_bridge.stats import Stats


def span(i: int) -> SpanRecord:
    return SpanRecord(
        trace_id=bytes(16 * [1]), span_id=(i + 1).to_bytes(8, "big"), parent_span_id=None, name=f"s{i}",
        kind=SpanKind.INTERNAL, start_ns=1_000 + i, end_ns=2_000 + i, attributes={"i": i, "s": "é"},
    )  # fmt: skip


def packed(*ids: int) -> bytes:
    records = [span(i) for i in ids]
    return encoded.pack(encoded.EncodedSpans(len(records), encode_span_fields(records)))


def names(exporter: OtlpExporter, batch: list[encoded.Item]) -> list[str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest.FromString(exporter.encode(batch))
    return [s.name for s in request.resource_spans[0].scope_spans[0].spans]


def test_frames_of_either_form_are_counted_from_their_header() -> None:
    assert frame_spans(packed(0, 1, 2)) == 3
    assert frame_spans(msgspec.msgpack.encode([span(0), span(1)])) == 2
    assert frame_spans(b"\xc1not msgpack") == 0
    assert encoded.unpack(b"\xc1not msgpack") is None
    assert encoded.unpack(packed(4)) == encoded.EncodedSpans(1, encode_span_fields([span(4)]))


def test_the_memory_queue_keeps_encoded_batches_whole_and_counts_their_spans() -> None:
    stats = Stats()
    q = BatchQueue(max_spans=6, batch_spans=4, stats=stats)
    q.offer_encoded(packed(0, 1, 2), 3)
    q.offer([span(3)])
    q.offer_encoded(packed(4, 5), 2)
    assert len(q) == 6
    q.offer_encoded(packed(6), 1)  # past max_spans: dropped whole, counted
    assert stats.dropped == {"export_queue_full": 1}
    first = q.take()
    assert encoded.span_count(first) == 4  # the 3-span batch and the record; the next batch would pass 4
    second = q.take()
    assert encoded.span_count(second) == 2
    assert len(q) == 0


def test_the_durable_queue_stores_encoded_frames_and_still_reads_msgpack_rows(tmp_path: pathlib.Path) -> None:
    """Rows left by an earlier version (msgpack) and new rows (OTLP bytes) leave in order, in one request."""
    stats = Stats()
    q = DurableQueue(tmp_path, 2**20, batch_spans=10, stats=stats)
    q.offer_encoded(msgspec.msgpack.encode([span(0), span(1)]), 2)
    q.offer_encoded(packed(2, 3), 2)
    q.offer([span(4)])
    assert len(q) == 5
    batch = q.take()
    assert encoded.span_count(batch) == 5
    exporter = OtlpExporter(OtlpSettings(endpoint="http://127.0.0.1:9/v1/traces"), Stats(), {}, ("t", "1"), "")
    assert names(exporter, batch) == ["s0", "s1", "s2", "s3", "s4"]
    q.done()
    q.close()
    assert stats.dropped == {}


@pytest.mark.parametrize("native", [False, True])
def test_a_mixed_batch_frames_into_the_same_bytes_as_the_records(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_bridge.sinks import otlp_proto

    if native and not otlp_proto.native_available():
        pytest.skip(f"native encoder not built: {otlp_proto.native_unavailable_reason()}")
    monkeypatch.setenv(otlp_proto.ENCODER_ENV, "native" if native else "pure")
    exporter = OtlpExporter(OtlpSettings(endpoint="http://127.0.0.1:9/v1/traces"), Stats(), {"k": 1}, ("t", "1"), "u")
    records = [span(i) for i in range(5)]
    mixed: list[encoded.Item] = [
        records[0],
        encoded.unpack(packed(1, 2)),  # type: ignore[list-item]
        records[3],
        encoded.unpack(packed(4)),  # type: ignore[list-item]
    ]
    assert exporter.encode(mixed) == exporter.encode(records)


def test_encoded_spans_cannot_go_out_as_otlp_json() -> None:
    """After a switch to http/json, protobuf rows left in the durable queue are refused (counted by the sender)."""
    exporter = OtlpExporter(
        OtlpSettings(endpoint="http://127.0.0.1:9/v1/traces", protocol="http/json"), Stats(), {}, ("t", "1"), ""
    )
    with pytest.raises(ValueError, match="cannot be sent as OTLP/JSON"):
        exporter.encode([encoded.unpack(packed(0))])  # type: ignore[list-item]
    assert exporter.encode([span(0)]).startswith(b"{")


def _batch_with_a_bad_record() -> bytes:
    """msgpack can carry a ``trace_id`` of None; a ``SpanRecord`` cannot hold it (a bug's record)."""
    return msgspec.msgpack.encode([span(0), msgspec.structs.replace(span(1), trace_id=None), span(2)])


def test_the_memory_queue_drops_an_unreadable_record_alone() -> None:
    stats = Stats()
    q = BatchQueue(max_spans=10, batch_spans=10, stats=stats)
    q.offer_encoded(_batch_with_a_bad_record(), 3)
    assert [s.name for s in q.take()] == ["s0", "s2"]  # type: ignore[union-attr]
    assert stats.dropped == {"export_encode_error": 1}


def test_the_durable_queue_drops_an_unreadable_record_alone(tmp_path: pathlib.Path) -> None:
    stats = Stats()
    q = DurableQueue(tmp_path, 2**20, batch_spans=10, stats=stats)
    q.offer_encoded(_batch_with_a_bad_record(), 3)
    q.offer_encoded(msgspec.msgpack.encode([msgspec.structs.replace(span(5), trace_id=None)]), 1)  # nothing left
    q.offer([span(4)])
    assert [s.name for s in q.take()] == ["s0", "s2", "s4"]  # type: ignore[union-attr]
    q.done()
    assert len(q) == 0
    assert q.take() == []
    q.close()
    assert stats.dropped == {"export_encode_error": 2}
