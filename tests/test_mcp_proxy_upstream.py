"""The MCP proxy's upstream client: kept-alive connections, a stale one retried, bodies as they come.

The server is a scripted asyncio TCP server on loopback, so that each test controls the
bytes and when the connection closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvloop

from otel_bridge.sources.mcp_upstream import Upstream, UpstreamUnreachable
from tests.support.ports import free_port

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


@asynccontextmanager
async def scripted(answer: bytes, close_after: bool) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server answering every request with ``answer`` (closing the connection after it if asked)."""
    heads: list[bytes] = []
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        heads.append(b"connection")
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            heads.append(head)
            length = next((int(v) for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n"))
                           if k.lower() == b"content-length"), 0)  # fmt: skip
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
            if close_after:
                break
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp", heads
    finally:
        server.close()
        async with asyncio.timeout(5):
            await asyncio.gather(*handlers)  # each ends when its client closed the connection
            await server.wait_closed()


async def read_all(upstream: Upstream, body: bytes = b"{}") -> tuple[int, bytes]:
    answer = await upstream.request(b"POST", b"a=1", [(b"content-type", b"application/json")], body)
    try:
        return answer.status, b"".join([chunk async for chunk in answer.body()])
    finally:
        await answer.aclose()


async def test_requests_reuse_one_kept_alive_connection() -> None:
    async with scripted(OK, close_after=False) as (url, heads):
        upstream = Upstream(url, connect_timeout_s=2.0)
        assert [await read_all(upstream), await read_all(upstream)] == [(200, b"{}"), (200, b"{}")]
        await upstream.aclose()
    assert heads.count(b"connection") == 1
    assert heads[1].startswith(b"POST /mcp?a=1 HTTP/1.1\r\n")
    assert b"content-length: 2" in heads[1]


async def test_a_connection_the_server_closed_is_not_reused_and_the_request_goes_through() -> None:
    async with scripted(OK, close_after=True) as (url, heads):
        upstream = Upstream(url, connect_timeout_s=2.0)
        results = []
        for pause in (False, False, True, True):
            results.append(await read_all(upstream))
            if pause:  # the close seen before the next request; without the pause, found by the request itself
                await asyncio.sleep(0.05)
        await upstream.aclose()
    assert results == [(200, b"{}")] * 4
    assert heads.count(b"connection") == 4


async def test_a_chunked_body_comes_unchunked_piece_by_piece() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        b"7\r\ndata: 1\r\n9\r\n\r\ndata: 2\r\n0\r\n\r\n"
    )
    async with scripted(answer, close_after=False) as (url, _):
        upstream = Upstream(url, connect_timeout_s=2.0)
        response = await upstream.request(b"GET", b"", [], b"")
        chunks = [chunk async for chunk in response.body()]
        await response.aclose()
        await upstream.aclose()
    assert chunks == [b"data: 1", b"\r\ndata: 2"]  # one piece per chunk, the framing gone
    assert (b"transfer-encoding", b"chunked") in response.headers  # as the server wrote them: the proxy filters


async def test_nothing_listening_is_unreachable() -> None:
    upstream = Upstream(f"http://127.0.0.1:{free_port()}/mcp", connect_timeout_s=2.0)
    with pytest.raises(UpstreamUnreachable, match="ConnectionRefusedError"):
        await upstream.request(b"POST", b"", [], b"{}")


async def test_the_callers_query_joins_the_upstreams_own() -> None:
    async with scripted(OK, close_after=False) as (url, heads):
        upstream = Upstream(url + "?tenant=7", connect_timeout_s=2.0)
        await read_all(upstream)
        await upstream.aclose()
    assert heads[1].startswith(b"POST /mcp?tenant=7&a=1 HTTP/1.1\r\n")


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Upstream("ftp://example.invalid/mcp", connect_timeout_s=1.0)


def test_it_connects_on_uvloop_as_serve_runs_it() -> None:
    """``otel-bridge serve`` runs on uvloop, whose ``create_connection`` takes fewer options than asyncio's."""

    async def main() -> tuple[int, bytes]:
        async with scripted(OK, close_after=False) as (url, _):
            upstream = Upstream(url, connect_timeout_s=2.0)
            try:
                return await read_all(upstream)
            finally:
                await upstream.aclose()

    assert uvloop.run(main()) == (200, b"{}")
