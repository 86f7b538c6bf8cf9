"""One OTLP/HTTP exchange on a kept-alive HTTP/1.1 connection, framed by hand: the lean leaf's wire.

The export worker sends a request for every batch, and ``h11``'s general state machine cost
about 110 us of CPU per exchange (the same headers validated on every request, an event
object per step, its reader and writer classes): as much as the rest of the worker's work on
a small batch (BENCHMARKS.md, "The export path after the encoder"). An export needs little of
HTTP/1.1: one POST whose head is the same every time but for its length (built and checked
once, :func:`request_head`), written in one call, and one small answer read whole.

The answer is read by the rules ``h11`` applies (RFC 9112), so an answer it refused is refused
here too (:class:`RemoteProtocolError`): a status line with three digits (``HTTP/1.0`` or
``HTTP/1.1`` only, where h11 took any version); header fields as tokens, a colon and values of
any bytes but NUL and white space between (an obsolete folded line joins the one before it;
lines may end in a bare LF); interim ``1xx`` answers skipped (``101`` is an error: no upgrade
was asked for); the body framed by ``Transfer-Encoding: chunked`` (the only
coding accepted; chunk extensions and trailers read and ignored), else ``Content-Length`` (one
value, repeats equal), else the end of the connection; none for ``204`` and ``304``. The
connection is reused only after a clean HTTP/1.1 exchange that did not ask to close and left no
stray bytes behind.
"""

from __future__ import annotations

import asyncio
import re
from typing import NamedTuple

READ_CHUNK = 65536
MAX_HEAD_BYTES = 64 << 10
"""An answer's head (status line and header fields) past this is refused."""

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_VCHAR = rb"[^\x00\s]"  # h11's: any byte but NUL and white space
_VALUE = rb"(?:" + _VCHAR + rb"+(?:[ \t]+" + _VCHAR + rb"+)*)?"
_NAME_RE = re.compile(_TOKEN)
_VALUE_RE = re.compile(_VALUE)
_FIELD_RE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(" + _VALUE + rb")[ \t]*")
_STATUS_RE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: (?:[ \t]|[^\x00\s])*)?")
_CHUNK_RE = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")


class RemoteProtocolError(Exception):
    """The answer is not HTTP/1.1 as this client reads it (named as ``h11`` named it)."""


class AnswerTooLarge(Exception):
    """The answer's body is larger than the caller reads; the rest is not read."""


class Answer(NamedTuple):
    status: int
    headers: dict[bytes, bytes]
    """Names lower-cased; a repeated field keeps its last value."""
    body: bytes


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A request's head up to its framing: ``Content-Length`` and the blank line are added per request.

    Raises :class:`ValueError` for a target, name or value that cannot go on the wire as it is
    (``h11`` refused them on every request).
    """
    if not _TARGET_RE.fullmatch(target):
        raise ValueError(f"illegal request target {target!r}")
    lines = [method + b" " + target + b" HTTP/1.1\r\n"]
    for name, value in headers:
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"illegal header name {name!r}")
        if not _VALUE_RE.fullmatch(value):
            raise ValueError(f"illegal header value {value!r}")
        lines.append(name + b": " + value + b"\r\n")
    return b"".join(lines)


class Connection:
    """One connection to the collector; ``received`` tells whether any byte of the current exchange's answer came.

    A kept-alive connection the collector has since closed shows as an exchange with no byte of
    an answer (``received`` still false): the caller may then send the request again on a new
    connection, as browsers do, and never after any byte of an answer arrived. ``reusable`` is
    true after an exchange that ended cleanly and leaves the connection ready for the next one.
    """

    __slots__ = ("_buffer", "reader", "received", "reusable", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = False
        self.reusable = False
        self._buffer = bytearray()

    @property
    def stale(self) -> bool:
        """Closed by either side while idle (a cheap check; a reused connection can still turn out closed)."""
        return self.reader.at_eof() or self.writer.is_closing()

    async def exchange(self, head: bytes, body: bytes, max_body: int) -> Answer:
        """Send ``head`` (from :func:`request_head`) and ``body`` with their length; read the answer whole."""
        self.received = self.reusable = False
        self._buffer.clear()
        self.writer.writelines((head, b"content-length: %d\r\n\r\n" % len(body), body))
        await self.writer.drain()
        while True:
            status, keep_alive, headers = await self._head()
            if status >= 200:
                break
            if status == 101:
                raise RemoteProtocolError("a 101 answer, but no protocol switch was asked for")
        if status in (204, 304):
            content = b""
        elif b"transfer-encoding" in headers:
            content = await self._chunked(max_body)
        elif b"content-length" in headers:
            content = await self._exactly(int(headers[b"content-length"]), max_body)
        else:
            content = await self._until_closed(max_body)
            keep_alive = False
        self.reusable = keep_alive and not self._buffer
        return Answer(status, headers, content)

    async def _fill(self) -> None:
        data = await self.reader.read(READ_CHUNK)
        if not data:
            raise RemoteProtocolError("the connection closed before the answer ended")
        self.received = True
        self._buffer += data

    async def _head(self) -> tuple[int, bool, dict[bytes, bytes]]:
        """One answer's head: its status, whether the connection may go on, its fields."""
        buffer = self._buffer
        start = 0
        while (end := _BLANK_LINE.search(buffer, start)) is None and len(buffer) <= MAX_HEAD_BYTES:
            start = max(0, len(buffer) - 2)
            await self._fill()
        if end is None or end.start() > MAX_HEAD_BYTES:
            raise RemoteProtocolError(f"an answer's head over {MAX_HEAD_BYTES} bytes")
        lines = bytes(buffer[: end.start()]).split(b"\n")
        del buffer[: end.end()]
        status_line = lines[0].removesuffix(b"\r")
        match = _STATUS_RE.fullmatch(status_line)
        if match is None:
            raise RemoteProtocolError(f"not an HTTP/1.1 status line: {status_line[:100]!r}")
        headers = _fields(lines[1:])
        keep_alive = match[1] == b"1" and b"close" not in _tokens(headers.get(b"connection", b""))
        return int(match[2]), keep_alive, headers

    async def _exactly(self, length: int, max_body: int) -> bytes:
        if length > max_body:
            raise AnswerTooLarge(f"an answer over {max_body} bytes")
        while len(self._buffer) < length:
            await self._fill()
        content = bytes(self._buffer[:length])
        del self._buffer[:length]
        return content

    async def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise RemoteProtocolError("a chunk's size line or a trailer is too long")
            await self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    async def _chunked(self, max_body: int) -> bytes:
        content = bytearray()
        while True:
            size_line = await self._line()
            match = _CHUNK_RE.fullmatch(size_line)
            if match is None:
                raise RemoteProtocolError(f"not a chunk's size: {size_line[:100]!r}")
            size = int(match[1], 16)
            if size == 0:
                break
            if len(content) + size > max_body:
                raise AnswerTooLarge(f"an answer over {max_body} bytes")
            content += await self._exactly(size, max_body)
            if await self._exactly(2, 2) != b"\r\n":
                raise RemoteProtocolError("a chunk does not end with CRLF")
        while trailer := await self._line():  # trailers are read and ignored, but must be fields
            _fields([trailer])
        return bytes(content)

    async def _until_closed(self, max_body: int) -> bytes:
        while len(self._buffer) <= max_body and (data := await self.reader.read(READ_CHUNK)):
            self.received = True
            self._buffer += data
        if len(self._buffer) > max_body:
            raise AnswerTooLarge(f"an answer over {max_body} bytes")
        content = bytes(self._buffer)
        self._buffer.clear()
        return content

    def close(self) -> None:
        self.writer.close()


def _fields(lines: list[bytes]) -> dict[bytes, bytes]:
    """Header fields by lower-cased name; checked as ``h11`` checks them (an obsolete fold joins the line before)."""
    unfolded: list[bytes] = []
    for raw in lines:
        line = raw.removesuffix(b"\r")
        if line[:1] in (b" ", b"\t"):
            if not unfolded:
                raise RemoteProtocolError("a continuation line before any header field")
            unfolded[-1] += b" " + line.strip(b" \t")
        else:
            unfolded.append(line)
    headers: dict[bytes, bytes] = {}
    for line in unfolded:
        match = _FIELD_RE.fullmatch(line)
        if match is None:
            raise RemoteProtocolError(f"not a header field: {line[:100]!r}")
        name, value = match[1].lower(), match[2]
        if name == b"content-length":
            lengths = {length.strip() for length in value.split(b",")}
            length = lengths.pop() if len(lengths) == 1 else b""
            if not (length.isdigit() and len(length) <= 20) or headers.get(name, length) != length:
                raise RemoteProtocolError(f"a bad or conflicting Content-Length: {value[:100]!r}")
            value = length
        elif name == b"transfer-encoding" and (name in headers or value.lower() != b"chunked"):
            raise RemoteProtocolError(f"only Transfer-Encoding: chunked is read, not {value[:100]!r}")
        headers[name] = value
    return headers


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip().lower() for token in value.split(b",")]
