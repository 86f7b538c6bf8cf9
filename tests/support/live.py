"""The live feed's test support: an in-process uvicorn server and SSE reading helpers.

``LiveServer`` runs the real app (``create_app``) under a real uvicorn server in
a thread, so a test can reach the app's feed and bridge while talking HTTP to it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from httpx_sse import ServerSentEvent, connect_sse

from otel_bridge.app import create_app
from otel_bridge.config import Settings
from otel_bridge.sinks.feed import Feed
from tests.support.ports import free_port, wait_for_port


class LiveServer:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.port = free_port()
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._server.serve(),), daemon=True)
        self._thread.start()
        if not wait_for_port(self.port) or not self._wait_started():
            self.stop()
            raise RuntimeError("the in-process uvicorn server did not start")

    def _wait_started(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def feed(self) -> Feed:
        feed: Feed = self.app.state.feed
        return feed

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the server's event loop (the feed and bridge are not thread-safe)."""
        self._loop.call_soon_threadsafe(fn)

    def stop(self) -> None:
        if self._thread.is_alive():
            # Open streams end when the feed closes; otherwise shutdown would wait for them.
            self._loop.call_soon_threadsafe(self.feed.close)
            self._server.should_exit = True
            self._thread.join(15)
        if not self._thread.is_alive() and not self._loop.is_closed():
            # sse-starlette leaves a shutdown watcher task per loop; end it before closing the loop.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()


def post(url: str, events: Iterable[dict[str, Any]], token: str | None = None, **params: str) -> httpx.Response:
    """POST events as NDJSON to ``/v1/events``."""
    body = "\n".join(json.dumps(e) for e in events)
    headers = {"Content-Type": "application/x-ndjson"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url + "/v1/events", content=body, headers=headers, params=params, timeout=10)


@contextmanager
def sse(
    url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> Iterator[Iterator[ServerSentEvent]]:
    """A real SSE connection (httpx-sse); yields its event iterator, data-less blocks skipped.

    The spec dispatches no event for a block without data (a ``retry:`` hint, the blank line after a
    heartbeat comment); httpx-sse yields one once an id has been seen, with empty data.
    """
    with (
        httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client,
        connect_sse(client, "GET", url, headers=headers or {}) as source,
    ):
        source.response.raise_for_status()

        def events() -> Iterator[ServerSentEvent]:
            for event in source.iter_sse():
                if not event.data:
                    continue
                yield event

        yield events()


def take(events: Iterator[ServerSentEvent], n: int) -> list[ServerSentEvent]:
    """The next ``n`` events (the connection's read timeout bounds the wait)."""
    return [next(events) for _ in range(n)]


def take_until(events: Iterator[ServerSentEvent], done: Callable[[ServerSentEvent], bool]) -> list[ServerSentEvent]:
    out: list[ServerSentEvent] = []
    for event in events:
        out.append(event)
        if done(event):
            return out
    raise AssertionError(f"stream ended before the expected event; got {[e.event for e in out]}")


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class RawSubscriber:
    """A feed client on a bare socket, reading only when told to: for frozen and slow clients.

    ``rcvbuf`` shrinks the socket's receive buffer so a client that stops reading
    pushes back on the server quickly.
    """

    def __init__(self, port: int, path: str = "/v1/stream", rcvbuf: int | None = None) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.raw = bytearray()
        self.closed = False

    def read(self, limit: int = 65536, timeout: float = 5.0) -> int:
        """Read what is there (up to ``limit``); 0 when the server closed the connection."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(limit)
        except TimeoutError:
            return -1
        except OSError:
            data = b""
        if not data:
            self.closed = True
        self.raw += data
        return len(data)

    def body(self) -> bytes:
        """The response body with the HTTP head and chunked framing removed."""
        _head, _, rest = bytes(self.raw).partition(b"\r\n\r\n")
        out = bytearray()
        while rest:
            size_line, sep, rest = rest.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line, 16)
            if size == 0 or len(rest) < size:
                out += rest[:size]
                break
            out += rest[:size]
            rest = rest[size + 2 :]
        return bytes(out)

    def events(self) -> list[dict[str, Any]]:
        """Complete SSE blocks so far: {"id", "event", "data"} (data parsed as JSON)."""
        text = self.body().decode(errors="replace")
        blocks = text.split("\n\n")[:-1]  # the last piece may be incomplete
        out: list[dict[str, Any]] = []
        for block in blocks:
            fields: dict[str, Any] = {}
            for line in block.split("\n"):
                if not line or line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields[name] = json.loads(value) if name == "data" else value
            if "data" in fields:
                out.append(fields)
        return out

    def close(self) -> None:
        self.sock.close()
