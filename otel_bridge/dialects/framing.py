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
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._has_id = False
        self.last_event_id: str | None = None
        self.comments = 0
        self.retry_ms: int | None = None

    def feed(self, chunk: str) -> list[Frame]:
        self._buf += chunk
        frames: list[Frame] = []
        buf = self._buf
        pos = 0
        n = len(buf)
        while pos < n:
            lf = buf.find("\n", pos)
            cr = buf.find("\r", pos)
            if lf == -1 and cr == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr == n - 1:
                    break  # a CR at the end may be the first half of CRLF
                end, nxt = cr, cr + 2 if buf[cr + 1] == "\n" else cr + 1
            else:
                end, nxt = lf, lf + 1
            self._line(buf[pos:end], frames)
            pos = nxt
        self._buf = buf[pos:]
        return frames

    def close(self) -> list[Frame]:
        """End of stream: a last line without a line end still counts, as does a last frame with data."""
        frames: list[Frame] = []
        if self._buf:
            rest, self._buf = self._buf.rstrip("\r"), ""
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
        elif name == "retry" and value.isdigit():
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
    if isinstance(items, dict):
        return [Frame(None, body.strip())]
    return [Frame(None, bytes(item)) for item in items]


def split_ndjson(body: bytes) -> list[Frame]:
    """One JSON value per line; blank lines are skipped."""
    return [Frame(None, stripped) for line in body.splitlines() if (stripped := line.strip())]


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
