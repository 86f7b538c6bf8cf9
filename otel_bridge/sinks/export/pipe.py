"""The wire between the sidecar and its export worker process: length-prefixed msgpack frames.

Parent to child on stdin: one :class:`Init`, then batches of spans until
stdin closes: OTLP bytes (:mod:`.encoded`) when the sidecar runs the native
encoder, else msgpack ``list[SpanRecord]`` for the worker to encode. Child to parent on stdout: its
cumulative counters as :class:`Report` when they changed (once when it starts; after a batch it
has queued on disk, or could not queue at all; after every export attempt: see
:class:`~otel_bridge.sinks.export.worker.Reports`), and once more, ``final``, when it exits.
"""

from __future__ import annotations

import asyncio
import struct

import msgspec

from otel_bridge.config import OtlpSettings
from otel_bridge.model import AttributeValue
from otel_bridge.sinks.export import encoded

_LENGTH = struct.Struct("<I")


class Init(msgspec.Struct):
    """Everything the child needs to build its :class:`OtlpExporter`."""

    settings: OtlpSettings
    resource: dict[str, AttributeValue]
    scope: tuple[str, str]
    schema_url: str


class Report(msgspec.Struct):
    """The child's cumulative counters."""

    exported: int
    failed: int
    dropped: dict[str, int]
    queue_depth: int
    last_error: str | None
    final: bool = False
    accepted: int = 0
    """Spans read from stdin and queued (on disk, with a durable queue): the rest of what was written is in the pipe."""
    resent: int = 0
    durable: bool = False


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One length-prefixed message, or ``None`` at the end of the stream."""
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


_ARRAY16, _ARRAY32 = 0xDC, 0xDD
_U16, _U32 = struct.Struct(">H"), struct.Struct(">I")


def array_length(payload: bytes) -> int:
    """The length of the msgpack array ``payload`` holds, read from its header (0 if it is not one).

    The worker counts a batch without decoding it; the queue decodes it when it is sent.
    """
    if not payload:
        return 0
    head = payload[0]
    if 0x90 <= head <= 0x9F:
        return head & 0x0F
    if head == _ARRAY16 and len(payload) >= 3:
        return int(_U16.unpack_from(payload, 1)[0])
    if head == _ARRAY32 and len(payload) >= 5:
        return int(_U32.unpack_from(payload, 1)[0])
    return 0


def frame_spans(payload: bytes) -> int:
    """The spans a batch frame carries, either form, read from its header (0 if it is neither)."""
    batch = encoded.unpack(payload)
    return batch.count if batch is not None else array_length(payload)
