"""The lean leaf's hand-framed HTTP/1.1 exchange: answers read as h11 reads them, whole, partial, chunked or broken.

Each answer comes from a scripted asyncio server on loopback over a real socket (in one write,
or a byte at a time), and every one is also fed to ``h11`` (the parser this exchange replaced):
both must agree on the status, the fields, the body and whether the connection may go on, or
both must refuse the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h11
import pytest

from otel_bridge.config import OtlpEndpoint
from otel_bridge.sinks.export.http_exchange import (
    Answer,
    AnswerTooLarge,
    Connection,
    RemoteProtocolError,
    request_head,
)
from otel_bridge.sinks.export.lean_http import LeanHttpTransport
from otel_bridge.sinks.export.result import Outcome

HEAD = request_head(b"POST", b"/v1/traces", [(b"Host", b"collector"), (b"Content-Type", b"application/x-protobuf")])


@asynccontextmanager
async def answering(
    reply: bytes, *, bytewise: bool = False, close: bool = True
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server that reads one request and writes ``reply`` (a byte at a time with ``bytewise``), then closes."""
    requests: list[bytes] = []
    handlers: list[asyncio.Task[None]] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            requests.append(head + await reader.readexactly(length))
            for piece in [reply[i : i + 1] for i in range(len(reply))] if bytewise else [reply]:
                writer.write(piece)
                await writer.drain()
            if not close:
                await done.wait()  # the connection stays open: the client must not need its end
        except ConnectionError:
            pass  # the client gave up first (an answer too large, a head too long)
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, requests
    finally:
        done.set()
        server.close()
        async with asyncio.timeout(5):
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()


async def exchange(reply: bytes, *, bytewise: bool = False, close: bool = True) -> tuple[Connection, Answer]:
    async with answering(reply, bytewise=bytewise, close=close) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = Connection(reader, writer)
        try:
            async with asyncio.timeout(3):
                return connection, await connection.exchange(HEAD, b"spans", 1 << 20)
        finally:
            connection.close()


def by_h11(reply: bytes) -> tuple[int, dict[bytes, bytes], bytes, bool] | str:
    """What h11 makes of ``reply`` as the answer to our POST (then the end of the connection)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=b"POST", target=b"/v1/traces", headers=[(b"host", b"c"), (b"content-length", b"5")]))
    conn.send(h11.Data(data=b"spans"))
    conn.send(h11.EndOfMessage())
    conn.receive_data(reply)
    conn.receive_data(b"")
    try:
        while isinstance(event := conn.next_event(), h11.InformationalResponse):
            pass
        if not isinstance(event, h11.Response):
            return type(event).__name__
        body = b""
        while isinstance(part := conn.next_event(), h11.Data):
            body += part.data
        if not isinstance(part, h11.EndOfMessage):
            return type(part).__name__
    except h11.RemoteProtocolError:
        return "error"
    framed = event.status_code in (204, 304) or any(
        k in (b"content-length", b"transfer-encoding") for k, _ in event.headers
    )
    # h11 calls an answer that ran to the connection's end DONE too; that connection is closed, not reusable
    reusable = conn.our_state is h11.DONE and conn.their_state is h11.DONE and framed
    return event.status_code, dict(event.headers), body, reusable


def ok(status: int, body: bytes = b"", *fields: bytes) -> bytes:
    return (
        b"HTTP/1.1 %d OK\r\ncontent-length: %d\r\n" % (status, len(body))
        + b"".join(f + b"\r\n" for f in fields)
        + (b"\r\n" + body)
    )


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n"

VALID = {
    "content-length": ok(200, b"partial", b"Content-Type: application/x-protobuf", b"X-Two: a", b"x-two: b"),
    "empty": ok(200),
    "error with body": ok(503, b"busy", b"Retry-After: 7"),
    "chunked, extension and trailer": CHUNKED,
    "interim 100 first": b"HTTP/1.1 100 Continue\r\n\r\n" + ok(200, b"x"),
    "204 ignores a length": b"HTTP/1.1 204 No Content\r\ncontent-length: 10\r\n\r\n",
    "no reason phrase": b"HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok",
    "bare LF line ends": b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok",
    "obsolete fold": b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\ncontent-length: 0\r\n\r\n",
    "repeated equal lengths": b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
    "asks to close": ok(200, b"", b"Connection: keep-alive, Close"),
    "HTTP/1.0": b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
    "until the end": b"HTTP/1.1 200 OK\r\n\r\nall of it",
    "spaces around a value": b"HTTP/1.1 200 OK\r\nX-A:   v  \r\ncontent-length: 0\r\n\r\n",
    "control and high bytes in a value": b"HTTP/1.1 200 OK\r\nX-A: a\x01\xffb\r\ncontent-length: 0\r\n\r\n",
}

BROKEN = {
    "not HTTP": b"NOT HTTP AT ALL\r\n\r\n",
    "two-digit status": b"HTTP/1.1 20 OK\r\n\r\n",
    "space before the colon": b"HTTP/1.1 200 OK\r\nX-A : v\r\ncontent-length: 0\r\n\r\n",
    "no colon": b"HTTP/1.1 200 OK\r\nnot a field\r\ncontent-length: 0\r\n\r\n",
    "fold before any field": b"HTTP/1.1 200 OK\r\n folded\r\ncontent-length: 0\r\n\r\n",
    "conflicting lengths": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
    "length not a number": b"HTTP/1.1 200 OK\r\ncontent-length: -2\r\n\r\nok",
    "gzip transfer coding": b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
    "chunked twice": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad chunk size": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk without its CRLF": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "bad trailer": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nnot a field\r\n\r\n",
    "ends mid-body": b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
    "ends mid-head": b"HTTP/1.1 200 OK\r\ncontent-le",
    "ends mid-chunk": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
    "a 101 not asked for": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
    "NUL in a value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\ncontent-length: 0\r\n\r\n",
    "space before a chunk extension": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("bytewise", [False, True], ids=["one write", "a byte at a time"])
@pytest.mark.parametrize("name", list(VALID))
async def test_an_answer_reads_as_h11_reads_it(name: str, bytewise: bool) -> None:
    reply = VALID[name]
    connection, answer = await exchange(reply, bytewise=bytewise)
    expected = by_h11(reply)
    assert not isinstance(expected, str), expected
    status, headers, body, reusable = expected
    assert (answer.status, answer.headers, answer.body, connection.reusable) == (status, headers, body, reusable)
    assert connection.received


@pytest.mark.parametrize("name", list(BROKEN))
async def test_an_answer_h11_refuses_is_refused(name: str) -> None:
    reply = BROKEN[name]
    assert isinstance(by_h11(reply), str)
    with pytest.raises(RemoteProtocolError):
        await exchange(reply)


async def test_a_version_other_than_http_1_is_refused_where_h11_took_it() -> None:
    """The one answer read more strictly than h11: a collector speaking HTTP/1.1 does not answer HTTP/2.0."""
    reply = b"HTTP/2.0 200 OK\r\ncontent-length: 0\r\n\r\n"
    assert by_h11(reply) == (200, {b"content-length": b"0"}, b"", True)
    with pytest.raises(RemoteProtocolError, match="status line"):
        await exchange(reply)


def test_the_fixtures_cover_what_they_say() -> None:
    """Each valid answer parses in h11 to what its name says, so the comparison above is not vacuous."""
    assert by_h11(VALID["chunked, extension and trailer"]) == (
        200,
        {b"transfer-encoding": b"chunked"},
        b"hello world",
        True,
    )
    assert by_h11(VALID["until the end"]) == (200, {}, b"all of it", False)
    assert by_h11(VALID["asks to close"])[3] is False  # type: ignore[index]
    assert by_h11(VALID["HTTP/1.0"])[3] is False  # type: ignore[index]


async def test_the_request_is_the_head_its_length_and_the_body_and_stray_bytes_end_the_reuse() -> None:
    async with answering(ok(200) + b"HTTP/1.1 200 OK\r\n", close=False) as (port, requests):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = Connection(reader, writer)
        answer = await connection.exchange(HEAD, b"spans", 100)
        await asyncio.sleep(0.05)
        connection.close()
        assert requests == [
            b"POST /v1/traces HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-protobuf\r\n"
            b"content-length: 5\r\n\r\nspans"
        ]
    assert answer.status == 200
    assert not connection.reusable  # bytes after the answer: the next exchange cannot trust this connection


async def test_a_connection_closed_before_any_byte_of_an_answer_says_so() -> None:
    """The lean leaf sends once more on a new connection only then (a kept-alive connection the collector closed)."""
    with pytest.raises(RemoteProtocolError) as caught:
        connection, _ = await exchange(b"")
    assert "closed before the answer ended" in str(caught.value)
    async with answering(b"", close=True) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = Connection(reader, writer)
        with pytest.raises(RemoteProtocolError):
            await connection.exchange(HEAD, b"spans", 100)
        connection.close()
    assert not connection.received
    async with answering(b"HTTP/1.1 2", close=True) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = Connection(reader, writer)
        with pytest.raises(RemoteProtocolError):
            await connection.exchange(HEAD, b"spans", 100)
        connection.close()
    assert connection.received


@pytest.mark.parametrize(
    "reply",
    [
        ok(200, b"x" * 101),
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n40\r\n"
        + b"x" * 64
        + b"\r\n40\r\n"
        + b"x" * 64
        + b"\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 101,
    ],
    ids=["content-length", "chunked", "until the end"],
)
async def test_an_answer_larger_than_asked_for_is_not_read(reply: bytes) -> None:
    async with answering(reply) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = Connection(reader, writer)
        with pytest.raises(AnswerTooLarge):
            await connection.exchange(HEAD, b"spans", 100)
        connection.close()


async def test_an_endless_head_is_refused() -> None:
    reply = b"HTTP/1.1 200 OK\r\n" + b"X-A: " + b"a" * (70 << 10) + b"\r\n\r\n"
    with pytest.raises(RemoteProtocolError, match="head over"):
        await exchange(reply)


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        (b"/v1/traces", [(b"X-Key", b"a\r\nX-Injected: 1")]),
        (b"/v1/traces", [(b"X Key", b"a")]),
        (b"/v1/traces", [(b"X-Key", b"trailing ")]),
        (b"/v1 traces", []),
    ],
)
def test_a_head_that_cannot_go_on_the_wire_is_refused(target: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(ValueError, match="illegal"):
        request_head(b"POST", target, headers)


async def test_the_lean_leaf_with_a_header_that_cannot_be_sent_says_so_on_every_send() -> None:
    """As with h11, which refused the header on every request: a retryable failure naming it, nothing sent."""
    transport = LeanHttpTransport(OtlpEndpoint(endpoint="http://127.0.0.1:9/v1/traces", headers={"x-key": "a\nb"}))
    for _ in range(2):
        result = await transport.send(b"spans", 1.0)
        assert result.outcome is Outcome.RETRYABLE
        assert result.detail.startswith("LocalProtocolError: illegal header value")
    await transport.close()
