"""One entry of the fleet's Redis stream: its fields, the tag naming the process that appended it, and its id.

An entry holds the event's JSON (``d``), ``<process>:<n>`` (``o``: the appending process and its own
sequence number, so a batch sent again is recognised by every reader and by its writer), and, on an
event its process already served to its own subscribers while Redis was away, that process (``l``).
A stream id ``<ms>-<n>`` is carried through the hub as one integer with the same order.
"""

from __future__ import annotations

DATA = b"d"
"""Entry field: the event's JSON (the ``data:`` line)."""
ORIGIN = b"o"
"""Entry field: the appending process and its sequence number, ``<process>:<n>``."""
SERVED = b"l"
"""Entry field, present on events their process already served to its own subscribers while Redis was away."""
_SEQ_BITS = 64
SEQ_MASK = (1 << _SEQ_BITS) - 1


def entry_fields(data: bytes, origin: bytes, n: int, served: bool) -> dict[bytes, bytes]:
    """The fields of the entry process ``origin`` appends as its ``n``-th event."""
    fields = {DATA: data, ORIGIN: origin + b":%d" % n}
    if served:
        fields[SERVED] = origin
    return fields


def origin_of(fields: dict[bytes, bytes]) -> tuple[bytes, int] | None:
    """``(process, n)`` of an entry; ``None`` for an entry without a well-formed tag (another writer's)."""
    origin, _, n = fields.get(ORIGIN, b"").partition(b":")
    return (origin, int(n)) if origin and n.isdigit() else None


def pack_id(stream_id: bytes | str) -> int:
    """``<ms>-<n>`` as one integer with the same order (the hub's ids are integers)."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, sep, n = text.partition("-")
    return (int(ms) << _SEQ_BITS) | int(n or 0) if sep else int(ms) << _SEQ_BITS


def unpack_id(seq: int) -> str:
    """The stream id an integer from :func:`pack_id` stands for."""
    return f"{seq >> _SEQ_BITS}-{seq & SEQ_MASK}"
