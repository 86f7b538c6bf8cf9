"""Decoding the protobuf answers OTLP export reads back: partial success and gRPC RetryInfo.

The inputs are built with the official protobuf classes, so the hand-written
decoder is checked against the real wire format.
"""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_bridge.sinks.export.response import rejected_in, retry_delay_in
from tests.support.grpc_status import retry_info_status


def test_partial_success_of_a_trace_response() -> None:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 7
    response.partial_success.error_message = "too old"
    assert rejected_in(response.SerializeToString()) == (7, "too old")


def test_partial_success_of_a_metrics_response() -> None:
    response = ExportMetricsServiceResponse()
    response.partial_success.rejected_data_points = 3
    assert rejected_in(response.SerializeToString()) == (3, "")


def test_no_partial_success_and_bad_bytes_are_nothing() -> None:
    assert rejected_in(b"") == (0, "")
    assert rejected_in(ExportTraceServiceResponse().SerializeToString()) == (0, "")
    assert rejected_in(b"\x0a\x05\x08") == (0, "")  # truncated
    assert rejected_in(b"\x0d\x00\x00\x00\x00") == (0, "")  # a fixed32 field: not an export response


def test_retry_info_in_status_details() -> None:
    assert retry_delay_in(retry_info_status(2.5)) == 2.5
    assert retry_delay_in(retry_info_status(0.0)) == 0.0


def test_status_details_without_retry_info() -> None:
    other = any_pb2.Any()
    other.Pack(duration_pb2.Duration(seconds=9))  # a detail of another type
    status = status_pb2.Status(code=14, message="down", details=[other])
    assert retry_delay_in(status.SerializeToString()) is None
    assert retry_delay_in(b"") is None
    assert retry_delay_in(b"\x1a\xff") is None
