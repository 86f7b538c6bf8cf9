"""Spans already encoded as OTLP protobuf: how they cross to the export worker and wait in its queue.

With the native encoder the sidecar encodes each batch itself (about as cheap as the msgpack
it replaces) and the worker only frames requests around the bytes: no msgpack encode in the
sidecar, no msgpack decode and no encoding in the worker (BENCHMARKS.md, "OTLP encoding").
:class:`EncodedSpans` is such a batch: ``count`` spans written as ``ScopeSpans.spans`` fields
(``otlp_proto.encode_span_fields``), so batches join by concatenation.

On the pipe and in the durable queue a batch is ``MAGIC`` + the count (uint32, little endian) +
the fields. ``MAGIC`` starts with 0xC1, a byte msgpack never uses, so a frame or a queue row is
either this or the msgpack ``list[SpanRecord]`` of before (rows left by an earlier version are
still read). A queue batch is a list of :data:`Item`: records still to encode and encoded batches,
in arrival order.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TypeAlias

import msgspec

from otel_bridge.model import SpanRecord

MAGIC = b"\xc1OTLP"
_COUNT = struct.Struct("<I")
_HEAD = len(MAGIC) + _COUNT.size


class EncodedSpans(msgspec.Struct, frozen=True, gc=False):
    """``count`` spans as concatenated OTLP ``ScopeSpans.spans`` fields."""

    count: int
    fields: bytes


Item: TypeAlias = SpanRecord | EncodedSpans


def pack(batch: EncodedSpans) -> bytes:
    return MAGIC + _COUNT.pack(batch.count) + batch.fields


def unpack(payload: bytes) -> EncodedSpans | None:
    """The encoded batch ``payload`` holds, or ``None`` when it is not one (a msgpack frame, garbage)."""
    if len(payload) < _HEAD or not payload.startswith(MAGIC):
        return None
    return EncodedSpans(_COUNT.unpack_from(payload, len(MAGIC))[0], payload[_HEAD:])


def span_count(batch: Sequence[Item]) -> int:
    """Spans in a queue batch (an encoded batch counts its spans)."""
    return sum(item.count if type(item) is EncodedSpans else 1 for item in batch)
