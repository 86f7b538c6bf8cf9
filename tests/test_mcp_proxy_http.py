"""The MCP proxy as an HTTP proxy: headers both ways, status codes, streaming, disconnects, an absent upstream.

These need no MCP SDK: the upstream is a small Starlette app on a real uvicorn (loopback),
scripted to answer what each test looks at, and the proxy (``McpProxy``) runs under its
own uvicorn with a recording consumer as the next stage. ``test_mcp_proxy.py`` runs the
real SDK on both sides.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from otel_bridge.config import McpSettings
from otel_bridge.model import AgentEvent, EventKind, Placement
from otel_bridge.sources.mcp_proxy import ENDED, REQUEST, TRACE_QUEUE_FULL, UPSTREAM_UNREACHABLE, Exchange, McpProxy
from otel_bridge.web.lanes import SidecarApp
from otel_bridge.web.mcp import METHODS, mount_mcp
from tests.support.ports import free_port
from tests.support.producers import serve


class Recorder:
    """An EventConsumer that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self.rejected: dict[str, int] = {}

    def submit(self, events: Sequence[AgentEvent]) -> list[tuple[AgentEvent, Placement]]:
        self.events.extend(events)
        return []

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    def close_all(self, reason: str) -> None:
        pass


class Upstream:
    """What the upstream saw, and the app that saw it."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.stream_closed = asyncio.Event()

    def app(self) -> Starlette:
        async def mcp(request: Request) -> Response:
            self.headers.append(dict(request.headers))
            if request.method == "DELETE":
                return Response(status_code=404, headers={"mcp-session-id": "gone"})
            if request.method == "GET":
                return StreamingResponse(self._forever(), media_type="text/event-stream")
            body = await request.json()
            if body.get("method") == "slow":
                return StreamingResponse(self._slow(body["id"]), media_type="text/event-stream")
            denied = body.get("method") == "denied"  # the MCP server's own OAuth answer
            return JSONResponse(
                {"error": "invalid_token"} if denied else {"jsonrpc": "2.0", "id": body["id"], "result": {}},
                headers={"mcp-session-id": "s-1", "x-upstream": "yes", "www-authenticate": 'Bearer realm="mcp"'},
                status_code=401 if denied else 200,
            )

        return Starlette(routes=[Route("/mcp", mcp, methods=METHODS)])

    @staticmethod
    async def _slow(rid: int) -> AsyncIterator[bytes]:
        note = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}'
        yield b"event: message\r\ndata: " + note + b"\r\n\r\n"
        await asyncio.sleep(0.5)
        yield b'event: message\r\ndata: {"jsonrpc":"2.0","id":%d,"result":{}}\r\n\r\n' % rid

    async def _forever(self) -> AsyncIterator[bytes]:
        try:
            yield b": open\r\n\r\n"
            await asyncio.Event().wait()  # open until the client (through the proxy) goes away
        finally:
            self.stream_closed.set()


@asynccontextmanager
async def proxy_in_front(upstream_url: str, recorder: Recorder) -> AsyncIterator[str]:
    proxy = McpProxy(recorder, McpSettings(upstream=upstream_url + "/mcp", connect_timeout_s=2.0))
    await proxy.start()
    app = Starlette(routes=[Route("/mcp", endpoint=proxy, methods=METHODS)])
    try:
        async with serve(app) as url:
            yield url + "/mcp"
    finally:
        await proxy.shutdown()


def post(rid: int, method: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method}


async def test_headers_and_status_pass_both_ways() -> None:
    upstream, recorder = Upstream(), Recorder()
    async with serve(upstream.app()) as up, proxy_in_front(up, recorder) as url, httpx.AsyncClient() as client:
        answer = await client.post(
            url,
            json=post(1, "denied"),
            headers={"Authorization": "Bearer client-secret", "mcp-protocol-version": "2025-11-25", "TE": "trailers"},
        )
        gone = await client.delete(url, headers={"mcp-session-id": "s-1"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="mcp"'
    assert answer.headers["mcp-session-id"] == "s-1"
    assert answer.headers["x-upstream"] == "yes"
    assert answer.json() == {"error": "invalid_token"}
    seen = upstream.headers[0]
    assert seen["authorization"] == "Bearer client-secret"  # the MCP server's own auth passes through
    assert seen["mcp-protocol-version"] == "2025-11-25"
    assert "te" not in seen  # hop by hop
    assert gone.status_code == 404
    assert upstream.headers[1]["mcp-session-id"] == "s-1"
    # Traced, but the log's records never hold the credentials.
    assert all("client-secret" not in bytes(e.payload or b"").decode() for e in recorder.events)
    [failed] = [e for e in recorder.events if e.kind is EventKind.REQUEST_FAILED]
    assert failed.error_type == "401"


async def test_a_streamed_answer_is_passed_on_as_it_comes() -> None:
    upstream, recorder = Upstream(), Recorder()
    async with serve(upstream.app()) as up, proxy_in_front(up, recorder) as url, httpx.AsyncClient() as client:
        arrivals: list[float] = []
        start = time.monotonic()
        async with client.stream("POST", url, json=post(7, "slow")) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            async for _ in answer.aiter_lines():
                if _.startswith("data:"):
                    arrivals.append(time.monotonic() - start)
        await asyncio.sleep(0.1)  # the tracing task runs after the response
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.4  # the first event was not held back until the second
    kinds = [e.kind for e in recorder.events]
    assert [k for k in kinds if k is not EventKind.RUN_STARTED and k is not EventKind.RUN_FINISHED] == [
        EventKind.REQUEST_STARTED,
        EventKind.PROGRESS,
        EventKind.REQUEST_FINISHED,
    ]


async def test_a_client_leaving_a_stream_closes_it_upstream() -> None:
    upstream, recorder = Upstream(), Recorder()
    async with serve(upstream.app()) as up, proxy_in_front(up, recorder) as url:
        async with httpx.AsyncClient() as client, client.stream("GET", url) as answer:
            assert answer.status_code == 200
            async for _ in answer.aiter_raw():
                break  # the first bytes came: now hang up
        async with asyncio.timeout(5):
            await upstream.stream_closed.wait()


async def test_an_unreachable_upstream_is_a_502_and_counted() -> None:
    recorder = Recorder()
    async with proxy_in_front(f"http://127.0.0.1:{free_port()}", recorder) as url, httpx.AsyncClient() as client:
        answer = await client.post(url, json=post(1, "tools/list"))
        await asyncio.sleep(0.1)
    assert answer.status_code == 502
    assert recorder.rejected == {UPSTREAM_UNREACHABLE: 1}
    failed = [e for e in recorder.events if e.kind is EventKind.REQUEST_FAILED]
    assert [e.error_type for e in failed] == ["502"]


async def test_a_full_trace_queue_drops_from_tracing_only_and_shutdown_still_drains() -> None:
    recorder = Recorder()
    proxy = McpProxy(recorder, McpSettings(upstream="http://127.0.0.1:9/mcp", trace_queue=1))
    await proxy.start()
    first, second = Exchange(1, "POST", "/mcp", []), Exchange(2, "POST", "/mcp", [])
    proxy.enqueue(first, REQUEST, msgspec.json.encode(post(1, "tools/list")))
    proxy.enqueue(second, REQUEST, msgspec.json.encode(post(2, "tools/call")))  # before the tracing task ran: no room
    proxy.enqueue(second, ENDED, None)  # the rest of a dropped exchange is not queued, nor counted again
    await proxy.shutdown()  # waits for room for its end marker rather than failing
    assert recorder.rejected == {TRACE_QUEUE_FULL: 1}
    assert [e.name for e in recorder.events if e.kind is EventKind.REQUEST_STARTED] == ["tools/list"]


async def test_the_mounted_proxy_serves_its_methods_on_its_path_only() -> None:
    recorder = Recorder()
    proxy = McpProxy(recorder, McpSettings(upstream=f"http://127.0.0.1:{free_port()}/mcp", connect_timeout_s=2.0))
    app = SidecarApp()
    mount_mcp(app, proxy, "/mcp")
    await proxy.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            proxied = await client.post("/mcp", json=post(1, "tools/list"))
            other = await client.put("/mcp", content=b"{}")
            under = await client.post("/mcp/more", json=post(2, "tools/list"))
    finally:
        await proxy.shutdown()
    assert proxied.status_code == 502  # the proxy answered: its upstream is not there
    assert proxied.text.startswith("MCP upstream unreachable")
    assert other.status_code == 405  # the router's answer for a method Streamable HTTP does not use
    assert under.status_code == 404  # the path only, nothing under it
    assert recorder.rejected == {UPSTREAM_UNREACHABLE: 1}
