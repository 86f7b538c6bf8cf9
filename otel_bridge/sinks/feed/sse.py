"""Server-Sent Events framing: the bytes of one SSE frame, and nothing else.

Every writer of SSE bytes (the feed hub, its notices, the AG-UI format) frames
through here, so the wire format is written down once. A frame is the ``id:``,
``event:`` and ``data:`` lines and the blank line that ends it (the WHATWG
``text/event-stream`` format, ``\\n`` line ends). Data with line breaks becomes
one ``data:`` line per line, which the client joins back with ``\\n``; the feed's
compact JSON never has one, so its frames are a single ``data:`` line, and its
writers say so (``split_lines=False``) rather than scan every byte for one.
"""

from __future__ import annotations

import functools
import re

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def frame(
    data: bytes, *, event: str | None = None, event_id: int | str | None = None, split_lines: bool = True
) -> bytes:
    """One SSE event: ``id:``, ``event:``, ``data:`` lines and the blank line that ends it.

    ``split_lines=False`` is for data known to hold no line break (compact JSON,
    which escapes them): it skips a scan of every byte on the feed's hot path.
    """
    if split_lines and (b"\n" in data or b"\r" in data):
        data = b"\ndata: ".join(_LINE_BREAK.split(data))
    lines = b"data: " + data + b"\n\n"
    if event is not None:
        lines = event_line(event) + lines
    if event_id is None:
        return lines
    if isinstance(event_id, int):
        return b"id: %d\n" % event_id + lines
    return b"id: " + event_id.encode() + b"\n" + lines  # a Redis stream id: digits and one '-'


def frame_size(data_len: int, *, event: str | None = None, event_id: int | str | None = None) -> int:
    """The length of :func:`frame`'s output for single-line data of ``data_len`` bytes, without making it."""
    size = data_len + 8  # "data: " and the two line ends
    if event is not None:
        size += len(event_line(event))
    if isinstance(event_id, int):
        size += len(b"%d" % event_id) + 5  # "id: " and its line end
    elif event_id is not None:
        size += len(event_id.encode()) + 5
    return size


@functools.lru_cache(maxsize=256)
def event_line(event: str) -> bytes:
    """The ``event:`` line of a frame; a name with a line break would end the field early.

    Memoised (a pure function of a few names: the event kinds and the feed notices),
    since the hub frames every event with one.
    """
    if "\n" in event or "\r" in event:
        raise ValueError(f"an SSE event name cannot contain a line break: {event!r}")
    return b"event: " + event.encode() + b"\n"


def comment(text: str = "") -> bytes:
    """A comment line: ignored by clients, keeps idle connections and proxies alive."""
    return b"".join(b": " + line + b"\n" for line in _LINE_BREAK.split(text.encode())) + b"\n"


def retry(retry_ms: int) -> bytes:
    """The reconnection-delay hint (milliseconds) a client waits before reconnecting."""
    return b"retry: %d\n\n" % retry_ms
