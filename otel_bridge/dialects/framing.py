"""Wire framing: SSE text, NDJSON and JSON bodies to :class:`Frame` objects.

A frame is one event as it was on the wire: the SSE ``event:`` name (if any),
its ``id:`` (if any) and the raw JSON ``data``. Framing never decodes JSON;
the pipeline decodes each frame once and hands the result to the dialect.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import msgspec

DONE_SENTINEL = b"[DONE]"


class Frame(NamedTuple):
    event: str | None
    data: bytes
    id: str | None = None


class FramingError(ValueError):
    """The body as a whole cannot be split into events (a 400, not a per-event reject)."""


class SSEParser:
    """Incremental Server-Sent Events parser (the WHATWG algorithm).

    Tolerates LF, CRLF and lone CR line ends, ``:`` comment lines (heartbeats),
    multi-line ``data:`` and frames split across chunks. ``last_event_id``
    follows the spec: it persists across frames until an ``id:`` changes it.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._scanned = 0  # the buffer's first characters already searched for a line end
        self._parts: list[str] = []  # chunks with no line end, joined once one arrives
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._has_id = False
        self.last_event_id: str | None = None
        self.comments = 0
        self.retry_ms: int | None = None

    def feed(self, chunk: str) -> list[Frame]:
        """Frames completed by ``chunk``. Linear in the input: each character is searched once.

        The next LF and the next CR are each found once and reused until the
        scan passes them (searching for both from every line start made LF-only
        bodies quadratic), and a line still incomplete at the end of a chunk is
        not searched again when the next chunk arrives.
        """
        if self._buf and self._buf[-1] != "\r" and "\n" not in chunk and "\r" not in chunk:
            self._parts.append(chunk)  # a long line in many chunks: join it once, not once per chunk
            return []
        if self._parts:
            self._scanned = len(self._buf) + sum(map(len, self._parts)) - 1
            buf = "".join((self._buf, *self._parts, chunk))
            self._parts.clear()
        else:
            buf = self._buf + chunk if self._buf else chunk
        frames: list[Frame] = []
        pos = 0
        n = len(buf)
        start = self._scanned
        lf = buf.find("\n", start)
        cr = buf.find("\r", start)
        while True:
            if lf == -1 and cr == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr == n - 1:
                    break  # a CR at the end may be the first half of CRLF
                if lf == cr + 1:
                    end, nxt = cr, cr + 2
                else:
                    end, nxt = cr, cr + 1
            else:
                end, nxt = lf, lf + 1
            self._line(buf[pos:end], frames)
            pos = nxt
            if lf != -1 and lf < pos:
                lf = buf.find("\n", pos)
            if cr != -1 and cr < pos:
                cr = buf.find("\r", pos)
        self._buf = buf[pos:]
        # What is left holds no line end, except perhaps a final CR: search only the new part next time.
        self._scanned = max(0, len(self._buf) - 1)
        return frames

    def close(self) -> list[Frame]:
        """End of stream: a last line without a line end still counts, as does a last frame with data."""
        frames: list[Frame] = []
        if self._parts:
            self._buf = "".join((self._buf, *self._parts))
            self._parts.clear()
        if self._buf:
            rest, self._buf, self._scanned = self._buf.rstrip("\r"), "", 0
            self._line(rest, frames)
        self._line("", frames)
        return frames

    def _line(self, line: str, frames: list[Frame]) -> None:
        if not line:
            if self._data:
                frames.append(
                    Frame(self._event, "\n".join(self._data).encode(), self._id if self._has_id else self.last_event_id)
                )
            self._event, self._data, self._has_id = None, [], False
            return
        if line[0] == ":":
            self.comments += 1
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        elif name == "id":
            if "\x00" not in value:
                self._id = value or None
                self._has_id = True
                self.last_event_id = self._id
        elif name == "retry" and value.isascii() and value.isdigit() and len(value) <= 9:
            self.retry_ms = int(value)


def parse_sse(text: str) -> list[Frame]:
    parser = SSEParser()
    return parser.feed(text) + parser.close()


def split_json(body: bytes) -> list[Frame]:
    """One JSON object or a JSON array of them, each element kept as raw bytes."""
    try:
        items = msgspec.json.decode(body, type=list[msgspec.Raw] | dict[str, msgspec.Raw])
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
        raise FramingError("JSON body must be an object or an array of objects") from exc
    except msgspec.DecodeError as exc:
        raise FramingError(f"body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise FramingError(
            "body is nested too deeply (the limit is about 1,000 levels of arrays and objects)"
        ) from None
    if isinstance(items, dict):
        return [Frame(None, body.strip())]
    return [Frame(None, bytes(item)) for item in items]


_new_tuple = tuple.__new__


def split_ndjson(body: bytes) -> list[Frame]:
    """One JSON value per line (a line ends at LF, CRLF or a lone CR); blank lines are skipped."""
    # Without a CR, the lines are those between LFs: split at them rather than test every byte for both line
    # ends (splitlines): 0.6x the instructions. tuple.__new__ straight: a NamedTuple's own __new__ is a Python
    # function, a call per line.
    lines = body.split(b"\n") if b"\r" not in body else body.splitlines()
    return [_new_tuple(Frame, (None, stripped, None)) for line in lines if (stripped := line.strip())]


def frames_for(body: bytes, content_type: str) -> list[Frame]:
    """Split a request body by its media type. Unknown types raise ``LookupError``."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FramingError(f"event stream is not valid UTF-8 at byte {exc.start}") from exc
        return parse_sse(text)
    if media in ("application/x-ndjson", "application/jsonl", "application/jsonlines", "application/ndjson"):
        return split_ndjson(body)
    if media == "application/json" or media.endswith("+json"):
        return split_json(body)
    raise LookupError(media)


def sniff_text_frames(text: str) -> Iterator[Frame]:
    """Frames from captured text whose format is unknown: SSE if it looks like SSE, else NDJSON/JSON."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        body = stripped.encode()
        try:
            yield from split_json(body)
            return
        except FramingError:
            yield from split_ndjson(body)
            return
    yield from parse_sse(text)


ACCEPTED_MEDIA_TYPES = (
    "application/json",
    "application/x-ndjson",
    "text/event-stream",
)
