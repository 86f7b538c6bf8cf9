"""A lean ASGI ``text/event-stream`` response: the feed's send path, one task and one timer per connection.

Why not sse-starlette's ``EventSourceResponse``: it runs four tasks per connection
in an anyio task group and opens a cancel scope around every chunk it sends
(``move_on_after(send_timeout)``), which is most of the feed's cost per write when
a thousand subscribers each get a small chunk per publish. This response writes
the chunks its iterator yields straight to the ASGI ``send`` and keeps the rest
off the write path:

* **Heartbeats**: a timer per connection (``loop.call_later``) asks for a
  ``: heartbeat`` comment once nothing has been written for ``heartbeat_s``;
  the comment comes out of the iterator in line with the frames (``on_idle``),
  so it is never written in the middle of anything.
* **Send timeout**: the same timer checks whether a ``send`` has been waiting
  longer than ``send_timeout_s`` (a frozen client: the server's write buffer is
  full and ``send`` waits to drain). If so it cancels the writer; the response
  then sends nothing more (no heartbeat, no end of body) and returns, so the
  server closes the connection and the client's last bytes are the last whole
  chunk it was given: every chunk is whole frames, and an unfinished chunk is
  never followed by anything.
* **Client disconnect**: one listener task awaits ``http.disconnect`` and ends
  the stream (``on_disconnect``).
* **Server shutdown**: open streams end at once when the server is told to
  exit (sse-starlette's uvicorn exit hook, watched by one task per event loop,
  not per connection), so a shutdown does not wait out its graceful timeout.
* ``HEAD``: the headers and an empty body, no stream.

* **Writes from outside the task** (:meth:`SseResponse.write`, the feed hub's
  rounds): while the writer task is parked and no send is in flight, a chunk may
  be written from a callback on the loop. The ASGI ``send`` coroutine is then
  stepped right there: uvicorn's (and Starlette's wrappers around it) writes to
  the transport and returns without suspending unless the transport's buffer is
  full, so a round writes to every subscriber with no task switch. A ``send``
  that does suspend (a slow client's back-pressure) is finished by a small task
  of its own, under the same send timeout; until it is done the response is not
  :meth:`~SseResponse.writable` and the writer task's next ``send`` waits for it.

The iterator's chunks end on frame boundaries (the hub's writer takes whole
frames), and a chunk is one ``send``: the server writes it to its transport at
once, so a frame is never split between two writes that something else could
come between.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
)


class SseResponse(Response):
    """Stream ``chunks`` (whole SSE frames each) to one client; see the module docstring.

    A Starlette ``Response`` only so that routes may return it; none of its machinery is used."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        heartbeat_s: float,
        send_timeout_s: float,
        on_idle: Callable[[], None],
        on_disconnect: Callable[[], None],
        headers: Mapping[str, str] | None = None,
    ) -> None:  # no super().__init__: there is no body to render
        """``on_idle``: called when a heartbeat is due (the iterator should then yield the comment);
        ``on_disconnect``: called when the client goes away (the iterator should then end)."""
        self._chunks = chunks
        self._heartbeat_s = heartbeat_s
        self._send_timeout_s = send_timeout_s
        self._on_idle = on_idle
        self._on_disconnect = on_disconnect
        extra = {k.lower().encode("latin-1"): v.encode("latin-1") for k, v in (headers or {}).items()}
        self._raw_headers = [(k, v) for k, v in _HEADERS if k not in extra] + list(extra.items())
        self._send_started: float | None = None
        self._last_write = 0.0
        self._timed_out = False
        self._task: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._send: Send | None = None  # set once the response has started: writes may then come from outside
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: contextvars.Context | None = None  # the writer task's: an outside write's send runs in it
        self._in_flight: asyncio.Task[None] | None = None  # an outside write whose send suspended
        self._failed: BaseException | None = None  # what an outside write's send raised
        self.status_code = 200
        self.background = None

    @property
    def timed_out(self) -> bool:
        """Whether the send timeout cut this response."""
        return self._timed_out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.start", "status": self.status_code, "headers": self._raw_headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            with contextlib.suppress(Exception):
                await self._chunks.aclose()  # type: ignore[attr-defined]
            return
        self._task = asyncio.current_task()
        self._loop = loop
        self._context = contextvars.copy_context()
        listener = loop.create_task(self._listen(receive))
        open_here = _open_responses(loop)
        open_here.add(self)
        self._last_write = loop.time()
        self._schedule(loop)
        try:
            await self._write(send, loop)
        except asyncio.CancelledError:
            if not self._timed_out and self._failed is None:
                raise
            task = self._task
            if task is not None:
                task.uncancel()
            # Return without another byte: the server closes the connection.
        except OSError:  # the client went away mid-write
            pass
        finally:
            self._send = None  # no more writes from outside
            open_here.discard(self)
            if self._timer is not None:
                self._timer.cancel()
            if self._in_flight is not None:
                self._in_flight.cancel()
            listener.cancel()
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        failed = self._failed
        if failed is not None and not isinstance(failed, OSError):
            raise failed

    async def _write(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self._send_started = loop.time()
        await send({"type": "http.response.start", "status": self.status_code, "headers": self._raw_headers})
        self._send_started = None
        self._send = send
        async for chunk in self._chunks:
            if self._in_flight is not None:  # an outside write goes first
                await self._in_flight
            self._send_started = loop.time()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self._last_write = self._send_started = loop.time()
            self._send_started = None
        self._send = None
        if self._in_flight is not None:
            await self._in_flight
        self._send_started = loop.time()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self._send_started = None

    def writable(self) -> bool:
        """The response has started and no send is in flight: a chunk :meth:`write` gets goes out in order."""
        return self._send is not None and self._send_started is None and self._failed is None

    def write(self, chunk: bytes) -> None:
        """Send ``chunk`` now, from outside the writer task (a callback on the loop; only while :meth:`writable`).

        The ``send`` is stepped here and in the writer task's context; if it suspends (the client is slow to
        read) a small task finishes it, the send timeout counting from now, and the response stays
        unwritable until it is done. What it raises ends the response as if the writer had raised it."""
        send, loop, context = self._send, self._loop, self._context
        assert send is not None, "write() only while writable()"
        assert loop is not None
        assert context is not None
        self._send_started = now = loop.time()
        steps = send({"type": "http.response.body", "body": chunk, "more_body": True}).__await__()
        try:
            yielded = context.run(steps.send, None)
        except StopIteration:  # written: the common case
            self._last_write = now
            self._send_started = None
            return
        except BaseException as exc:
            self._fail(exc)
            return
        self._in_flight = loop.create_task(self._finish(steps, yielded), context=context)

    async def _finish(self, steps: Generator[Any, None, None], yielded: object) -> None:
        """Run an outside write's suspended ``send`` to its end (cancelled with the response)."""
        try:
            await _resume(steps, yielded)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(exc)
            return
        finally:
            self._in_flight = None
        assert self._loop is not None
        self._last_write = self._loop.time()
        self._send_started = None

    def _fail(self, exc: BaseException) -> None:
        """An outside write's send raised: end the response (quietly for a client gone, ``OSError``)."""
        self._failed = exc
        self._send_started = None
        if self._task is not None:
            self._task.cancel()

    async def _listen(self, receive: Receive) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self._on_disconnect()
                return

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """The next check: when a heartbeat falls due, or sooner so a stuck send is cut within ~1.25x its timeout."""
        now = loop.time()
        due = self._last_write + self._heartbeat_s
        if self._heartbeat_s <= 0:
            due = now + self._send_timeout_s
        at = min(due, now + self._send_timeout_s / 4)
        self._timer = loop.call_at(max(at, now + 0.001), self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        started = self._send_started
        if started is not None:
            if now - started >= self._send_timeout_s and self._task is not None:
                self._timed_out = True
                self._timer = None
                self._task.cancel()
                if self._in_flight is not None:
                    self._in_flight.cancel()
                return
        elif self._heartbeat_s > 0 and now - self._last_write >= self._heartbeat_s:
            self._last_write = now  # one heartbeat per idle interval
            self._on_idle()
        self._schedule(loop)


async def _resume(steps: Generator[Any, None, None], yielded: object) -> None:
    """Run an awaitable (``steps``: its ``__await__()``) to its end as a task would, from where a synchronous
    step left it: suspended on the future ``yielded`` (or on a bare yield, ``None``: the loop's next turn).
    Cancelling this cancels it."""
    while True:
        thrown: BaseException | None = None
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                # What a task does with a future its coroutine yields: take the "blocking" mark off (a second
                # await of it would refuse) and wait for it; cancelling this task then cancels the future.
                yielded._asyncio_future_blocking = False  # type: ignore[attr-defined]
                await yielded  # type: ignore[misc]
        except BaseException as exc:  # handed to the coroutine, as a task would (cancellation too)
            thrown = exc
        try:
            yielded = steps.send(None) if thrown is None else steps.throw(thrown)
        except StopIteration:
            return


_OPEN: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[SseResponse]] = weakref.WeakKeyDictionary()


def _open_responses(loop: asyncio.AbstractEventLoop) -> set[SseResponse]:
    """The responses streaming on ``loop``; the first one starts the loop's shutdown watcher."""
    responses = _OPEN.get(loop)
    if responses is None:
        responses = _OPEN[loop] = set()
        loop.create_task(_end_on_exit(responses), name="sse-shutdown-watcher")
    return responses


async def _end_on_exit(responses: set[SseResponse]) -> None:
    """When the server is told to exit, end every open stream (after what is already queued)."""
    await EventSourceResponse._listen_for_exit_signal()  # uvicorn's exit, as sse-starlette hooks it
    for response in list(responses):
        response._on_disconnect()
