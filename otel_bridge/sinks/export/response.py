"""Decoding the few protobuf responses OTLP export reads back, without a protobuf runtime.

Two messages matter: the ``partial_success`` of an ``Export*ServiceResponse``
(the same layout for traces, metrics and logs: a rejected count and a message),
and a gRPC status's ``RetryInfo`` detail (``grpc-status-details-bin``), which is
how a gRPC receiver asks for a wait. Malformed bytes decode as "nothing there".
"""

from __future__ import annotations

_VARINT, _LEN = 0, 2
_RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Top-level (field number, value) pairs; only varints and length-delimited fields are expected.

    Raises ``IndexError`` on truncated bytes and ``ValueError`` on any other wire type.
    """
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        wire = tag & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            out.append((tag >> 3, value))
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise IndexError("truncated field")
            out.append((tag >> 3, buf[pos : pos + length]))
            pos += length
        else:
            raise ValueError(f"wire type {wire} not expected here")
    return out


def rejected_in(response: bytes) -> tuple[int, str]:
    """``partial_success`` (field 1) of an export response: (rejected count, message)."""
    try:
        for number, value in _fields(response):
            if number == 1 and isinstance(value, bytes):
                rejected, message = 0, ""
                for inner_number, inner in _fields(value):
                    if inner_number == 1 and isinstance(inner, int):
                        rejected = inner
                    elif inner_number == 2 and isinstance(inner, bytes):
                        message = inner.decode(errors="replace")
                return rejected, message
    except (IndexError, ValueError):
        pass
    return 0, ""


def retry_delay_in(status_details: bytes) -> float | None:
    """The ``RetryInfo.retry_delay`` of a serialised ``google.rpc.Status``, in seconds, if it has one."""
    try:
        for number, detail in _fields(status_details):
            if number != 3 or not isinstance(detail, bytes):  # Status.details: repeated Any
                continue
            fields = dict(_fields(detail))  # Any: type_url=1, value=2
            type_url, value = fields.get(1), fields.get(2)
            if not isinstance(type_url, bytes) or type_url.decode(errors="replace") != _RETRY_INFO_TYPE:
                continue
            if not isinstance(value, bytes):
                return None
            duration = dict(_fields(value)).get(1)  # RetryInfo.retry_delay: Duration
            if not isinstance(duration, bytes):
                return 0.0
            parts = dict(_fields(duration))  # Duration: seconds=1, nanos=2
            seconds, nanos = parts.get(1, 0), parts.get(2, 0)
            if not isinstance(seconds, int) or not isinstance(nanos, int):
                return None
            return max(0.0, seconds + nanos / 1e9)
    except (IndexError, ValueError):
        pass
    return None
