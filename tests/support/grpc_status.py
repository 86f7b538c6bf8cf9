"""A serialised ``google.rpc.Status`` carrying a ``RetryInfo``, as a throttling gRPC receiver sends it."""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2


def retry_info_status(delay_s: float, code: int = 8) -> bytes:
    """``code`` 8 is RESOURCE_EXHAUSTED."""
    seconds = int(delay_s)
    delay = duration_pb2.Duration(seconds=seconds, nanos=round((delay_s - seconds) * 1e9))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status_pb2.Status(code=code, message="slow down", details=[detail]).SerializeToString()
