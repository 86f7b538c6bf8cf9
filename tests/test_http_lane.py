"""Small ``POST /v1/events`` answered by the HTTP protocol itself (web/http_lane.py), on the real server.

Every answer must be the ASGI lane's, byte for byte but the ``date`` header: a request sent
with ``Transfer-Encoding: chunked`` (no declared length) always takes the ASGI lane, the same
request with a ``Content-Length`` takes the inline one. Keep-alive, pipelining, ``Connection:
close``, the access log and a lane that raises are checked on the wire.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
import uvicorn

from otel_bridge.web.http_lane import lane_protocol
from otel_bridge.web.lanes import Answer, Headers, SidecarApp
from tests.support.ports import free_port
from tests.support.server import BridgeProcess

EVENT = b'{"kind":"progress","run_id":"lane-1","status":"working"}'
BAD = b'{"kind":"tool.completed","run_id":"lane-1","call_id":"c","duration_ms":-1}'
CASES = [
    # (query, content type, body)
    ("", "application/json", EVENT),
    ("?run_id=named&source=lane", "application/x-ndjson", EVENT + b"\n" + EVENT.replace(b"lane-1", b"lane-2")),
    ("", "application/json", b'{"kind": '),  # 400 malformed
    ("", "text/plain", EVENT),  # 415
    ("", "application/json", b""),  # 400 empty
    ("?dialect=nope", "application/json", EVENT),  # 422 unknown dialect
    ("", "application/x-ndjson", BAD + b"\n" + BAD),  # 422 every event rejected
    ("", "application/x-ndjson", EVENT + b"\n" + BAD),  # 202, one rejected
]


def http(
    port: int, raw: bytes, responses: int = 1, timeout: float = 10.0
) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Send ``raw`` on one connection; read ``responses`` whole responses (by Content-Length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        buf, out = b"", []
        while len(out) < responses:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed after {len(out)} responses: {buf!r}"
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            status, *lines = head.split(b"\r\n")
            headers = dict(line.lower().split(b": ", 1) for line in lines)
            length = int(headers[b"content-length"])
            while len(buf) < length:
                chunk = sock.recv(65536)
                assert chunk, "connection closed mid-body"
                buf += chunk
            out.append((status, headers, buf[:length]))
            buf = buf[length:]
        return out


def closed_after(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    return True


def request(query: str, content_type: str, body: bytes, chunked: bool, extra: str = "") -> bytes:
    head = f"POST /v1/events{query} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{extra}"
    if chunked:
        framed = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + framed
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    process = BridgeProcess(tmp_path_factory.mktemp("lane") / "bridge.log", args=["--log-level", "info"])
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize(("query", "content_type", "body"), CASES)
def test_the_inline_lane_answers_as_the_asgi_lane_does(
    server: BridgeProcess, query: str, content_type: str, body: bytes
) -> None:
    answers = []
    for chunked in (True, False):
        [(status, headers, content)] = http(server.port, request(query, content_type, body, chunked))
        headers.pop(b"date")
        answers.append((status, headers, json.loads(content)))
    assert answers[0] == answers[1]
    assert answers[1][0].split()[1] in (b"202", b"400", b"415", b"422")
    if b"422" in answers[1][0] and query == "":
        assert answers[1][2]["error"] == "no_valid_events"


def test_keep_alive_pipelining_and_the_order_of_answers(server: BridgeProcess) -> None:
    post = request("", "application/json", EVENT, chunked=False)
    health = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    slow = request("", "application/json", EVENT, chunked=True)  # the ASGI lane, between inline ones
    answers = http(server.port, post + health + post + slow + post, responses=5)
    assert [a[0].split()[1] for a in answers] == [b"202", b"200", b"202", b"202", b"202"]
    assert "open_runs" in json.loads(answers[1][2])
    assert all(json.loads(a[2])["accepted"] == 1 for i, a in enumerate(answers) if i != 1)


def test_connection_close_is_honoured(server: BridgeProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request("", "application/json", EVENT, chunked=False, extra="Connection: close\r\n"))
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 202 ")
        assert b"connection: close\r\n" in reply
        assert closed_after(sock)


def test_the_access_log_line_is_uvicorns(server: BridgeProcess) -> None:
    http(server.port, request("?source=logged", "application/json", EVENT, chunked=False))
    deadline = time.monotonic() + 5
    while '"POST /v1/events?source=logged HTTP/1.1" 202' not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


# -- the protocol alone, with lanes of the test's own ------------------------------------------------


class Echo:
    max_inline_body = 16

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []

    def answer(self, query_string: bytes, headers: Headers, body: bytes) -> Answer:
        self.seen.append((query_string, body))
        return 201, [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())], body


class Raises:
    max_inline_body = 16

    def answer(self, query_string: bytes, headers: Headers, body: bytes) -> Answer:
        raise RuntimeError("a bug in a lane")


class Running(NamedTuple):
    server: uvicorn.Server
    thread: threading.Thread
    port: int


@contextlib.contextmanager
def running(app: SidecarApp, **config: Any) -> Iterator[Running]:
    """``app`` on uvicorn with the lane protocol, in a thread, until the block ends."""
    port = free_port()
    protocol = lane_protocol(app)
    assert protocol is not None  # httptools is a dependency (uvicorn[standard])
    server = uvicorn.Server(
        uvicorn.Config(app, port=port, http=protocol, log_level="critical", lifespan="off", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield Running(server, thread, port)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served() -> Iterator[Callable[[SidecarApp], int]]:
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(running(app)).port


def asgi_answer(text: bytes) -> Callable[..., object]:
    async def app(scope: object, receive: Callable[..., object], send: Callable[..., object]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(text))]})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": text})  # type: ignore[operator]

    return app


def test_what_the_inline_lane_takes_and_what_it_leaves_to_asgi(served: Callable[[SidecarApp], int]) -> None:
    app, echo = SidecarApp(), Echo()
    app.add_lane("/lane", ["POST"], asgi_answer(b"asgi"), inline=echo)  # type: ignore[arg-type]
    port = served(app)

    def via(raw: bytes) -> tuple[bytes, bytes]:
        [(status, _, body)] = http(port, raw)
        return status.split()[1], body

    inline = b"POST /lane?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    assert via(inline) == (b"201", b"hello")
    assert echo.seen == [(b"a=1", b"hello")]
    too_big = b"POST /lane HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n" + b"x" * 17
    chunked = b"POST /lane HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
    expect = b"POST /lane HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nx"
    for raw in (too_big, chunked, expect):
        assert via(raw)[1] == b"asgi", raw
    assert len(echo.seen) == 1


def test_a_lane_that_raises_answers_500_and_closes(served: Callable[[SidecarApp], int]) -> None:
    app = SidecarApp()
    app.add_lane("/lane", ["POST"], asgi_answer(b"asgi"), inline=Raises())  # type: ignore[arg-type]
    port = served(app)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /lane HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        reply = b""
        while b"Internal Server Error" not in reply:
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 500 ")
        assert closed_after(sock)


def test_a_graceful_shutdown_answers_an_inline_request_whose_body_is_still_arriving() -> None:
    """uvicorn closes a connection with no ASGI cycle at once; the inline request being read is answered first."""
    app, echo = SidecarApp(), Echo()
    app.add_lane("/lane", ["POST"], asgi_answer(b"asgi"), inline=echo)  # type: ignore[arg-type]
    with running(app) as served, socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"POST /lane HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        time.sleep(0.2)  # the head and half the body are read
        served.server.should_exit = True
        time.sleep(0.5)  # the shutdown has asked every connection to close
        sock.sendall(b"world")
        reply = b""
        while b"helloworld" not in reply:
            chunk = sock.recv(65536)
            assert chunk, f"closed before the answer: {reply!r}"
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 201 ")
        assert b"connection: close\r\n" in reply
        assert closed_after(sock)
    assert echo.seen == [(b"", b"helloworld")]
    assert not served.thread.is_alive()


def test_an_idle_keep_alive_connection_closes_after_the_timeout_from_its_last_inline_answer() -> None:
    """The inline lane's keep-alive timer: re-armed by every answer, it closes the connection
    ``timeout_keep_alive`` after the last one (as uvicorn's per-response timer does)."""
    app, echo = SidecarApp(), Echo()
    app.add_lane("/lane", ["POST"], asgi_answer(b"asgi"), inline=echo)  # type: ignore[arg-type]
    post = b"POST /lane HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
    with (
        running(app, timeout_keep_alive=1) as served,
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock,
    ):
        for _ in range(3):  # an answer every 0.6 s: each re-arms the timer, the connection stays open
            sock.sendall(post)
            reply = b""
            while not reply.endswith(b"\r\n\r\nhi"):
                chunk = sock.recv(65536)
                assert chunk, f"closed while in use: {reply!r}"
                reply += chunk
            answered = time.monotonic()
            time.sleep(0.6)
        assert sock.recv(65536) == b""  # closed by the server...
        idle = time.monotonic() - answered
        assert 0.9 <= idle < 5, idle  # ...about timeout_keep_alive after the last answer
    assert len(echo.seen) == 3
