"""Local upstreams for source tests, served by a real uvicorn in a background thread.

* :func:`capture_app`: replays a captured SSE file with ids, honours
  ``Last-Event-ID``, can drop the first connection mid-frame, and writes CRLF
  line ends, ``:`` heartbeats and ``data: [DONE]`` in small, frame-splitting
  chunks: everything an upstream source must tolerate.
* :func:`fake_openai_app`: a tiny OpenAI-compatible ``/v1/chat/completions``
  that streams ``chat.completion.chunk`` SSE (content, then a tool call, then
  usage), for the OpenIntent SDK's OpenAI adapter to call.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from otel_bridge.dialects.framing import Frame, parse_sse
from tests.support.ports import free_port


class ThreadedServer:
    """A uvicorn server on a free loopback port, in a daemon thread; ``stop()`` always ends it."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"test server on port {self.port} did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stopping(self) -> bool:
        return bool(self._server.should_exit)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def _encode(frame: Frame) -> bytes:
    lines = []
    if frame.event is not None:
        lines.append(f"event: {frame.event}")
    if frame.id is not None:
        lines.append(f"id: {frame.id}")
    lines.extend(f"data: {line}" for line in frame.data.decode().split("\n"))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class CaptureUpstream:
    """State of :func:`capture_app`, shared with the test."""

    frames: list[Frame]
    drop_after: int | None = None  # the first connection ends after this many frames, cutting the next one in half
    chunk_bytes: int = 7  # small writes: frames arrive split across reads
    last_event_ids: list[str | None] = field(default_factory=list)  # the header of each connection, in order
    server: ThreadedServer | None = None

    def start_index(self, last_event_id: str | None) -> int:
        if last_event_id is None:
            return 0
        for i, frame in enumerate(self.frames):
            if frame.id == last_event_id:
                return i + 1
        return 0


def capture_app(upstream: CaptureUpstream) -> Starlette:
    async def stream(request: Request) -> Response:
        last_id = request.headers.get("last-event-id")
        connection = len(upstream.last_event_ids)
        upstream.last_event_ids.append(last_id)
        start = upstream.start_index(last_id)

        async def body() -> AsyncIterator[bytes]:
            out = b": hello\r\n\r\nretry: 50\r\n\r\n"
            frames = upstream.frames[start:]
            cut = upstream.drop_after if connection == 0 else None
            for i, frame in enumerate(frames):
                encoded = _encode(frame)
                if cut is not None and i == cut:
                    out += encoded[: len(encoded) // 2]  # the id line goes out, the frame never ends
                    break
                out += encoded
                if i % 5 == 4:
                    out += b": ping\r\n\r\n"
            else:
                out += b"data: [DONE]\r\n\r\n"
            # The cut connection writes at once: its last whole frame and the cut one's id
            # line arrive in one read. Later ones trickle, splitting frames across reads.
            size = len(out) if cut is not None else upstream.chunk_bytes
            for pos in range(0, len(out), size):
                yield out[pos : pos + size]
                await asyncio.sleep(0)
            if cut is not None:
                return  # the upstream drops the connection
            while upstream.server is not None and not upstream.server.stopping:
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.05)  # an idle upstream keeps the stream open

        return StreamingResponse(body(), media_type="text/event-stream")

    return Starlette(routes=[Route("/stream", stream)])


def start_capture_server(text: str, drop_after: int | None = None) -> CaptureUpstream:
    upstream = CaptureUpstream(parse_sse(text), drop_after=drop_after)
    upstream.server = ThreadedServer(capture_app(upstream))
    return upstream


# --- a fake OpenAI-compatible chat completions endpoint ----------------------------

FAKE_MODEL = "gpt-4o-mini"
FAKE_TEXT = ["The ", "weather ", "in ", "Lisbon ", "is ", "sunny."]
FAKE_USAGE = {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30}


def _chunk(index: int, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion.chunk",
        "created": 1_800_000_000,
        "model": FAKE_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if index >= 0 else [],
    }
    if usage is not None:
        body["usage"] = usage
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


def fake_openai_app(chunk_delay_s: float = 0.01) -> Starlette:
    async def completions(request: Request) -> Response:
        await request.body()

        async def body() -> AsyncIterator[bytes]:
            yield _chunk(0, {"role": "assistant", "content": ""})
            for piece in FAKE_TEXT:
                await asyncio.sleep(chunk_delay_s)
                yield _chunk(0, {"content": piece})
            call = {"index": 0, "id": "call_weather_1", "type": "function"}
            yield _chunk(0, {"tool_calls": [{**call, "function": {"name": "get_weather", "arguments": ""}}]})
            yield _chunk(0, {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Lisbon"}'}}]})
            yield _chunk(0, {}, finish="tool_calls")
            yield _chunk(-1, {}, usage=FAKE_USAGE)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
