"""One ``GET /v1/stream`` connection: its filter and format, a bounded queue, and its writer.

The hub (:mod:`.hub`) offers what was published to every subscriber once a round,
which only appends references to its queue (or starts lagging past ``queue_size``)
and asks to be written in that round (:mod:`.rounds`). Two things write a subscriber's
bytes, both in whole frames, at most ``MAX_CHUNK`` a chunk (:meth:`Subscriber._take`,
which also cuts after a UI form's run end; an unfiltered subscriber's round write takes
the chunks the round cut once for every subscriber in step, :meth:`.rounds.Rounds.shared_chunks`):

* **The round** (:meth:`Subscriber.flush`, the hub's callback): when the writer is
  parked with nothing pending and the connection (a :class:`Connection`, the
  response) has no write in flight, the round frames what is queued and hands it to
  the connection itself. That is the writer's next step taken where it stands, so a
  round costs one write per subscriber and no task switch; the writer stays parked.
* **The writer**, :meth:`Subscriber.chunks` (the response's task): everything that
  may await or end the stream: the ``retry:`` hint, a resume's pages, a lagging
  subscriber's notice and resync, a write behind one still in flight (back-pressure:
  the queue fills meanwhile and past its bound the subscriber lags), the end. The
  round wakes it for those, and for every subscriber with no connection attached.

Order holds because the round writes only while the writer is parked with nothing
pending and no write is in flight; a heartbeat comes between frames, never inside one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from otel_bridge.sinks.feed import sse
from otel_bridge.sinks.feed.filters import ItemFilter
from otel_bridge.sinks.feed.item import FeedFormat, FeedItem
from otel_bridge.sinks.feed.runs import END_OF_RUN

if TYPE_CHECKING:
    from otel_bridge.sinks.feed.hub import Feed

MAX_CHUNK = 64 * 1024
"""Largest write to one subscriber (a single frame may exceed it)."""

HEARTBEAT = sse.comment("heartbeat")
"""What an idle stream writes every ``heartbeat_s``."""


class Connection(Protocol):
    """Where a subscriber's chunks go when the hub's round writes them (the response, ``web/sse_response.py``)."""

    def writable(self) -> bool:
        """The stream has started and no write is in flight: a chunk written now goes out in order."""

    def write(self, chunk: bytes) -> None:
        """Hand ``chunk`` to the client now, from outside the writer. A write that cannot finish at once is
        the connection's to finish (its send timeout counts from now); until then :meth:`writable` is false."""


class Subscriber:
    """One ``GET /v1/stream`` connection: a filter, a format, a bounded queue and its writer."""

    __slots__ = (
        "_beat",
        "_connection",
        "_end",
        "_feed",
        "_pending",
        "_waiter",
        "closed",
        "dropped",
        "filter",
        "format",
        "lag_after",
        "lag_from",
        "queue",
        "resume",
        "size",
        "skip_through",
        "until_run_end",
    )

    def __init__(
        self,
        feed: Feed,
        flt: ItemFilter | None,
        fmt: FeedFormat | None,
        initial: list[bytes],
        until_run_end: bool = False,
    ) -> None:
        """``until_run_end``: the stream ends after the first frame that ends a run (a UI form's)."""
        self._feed = feed
        self.filter = flt
        self.format = fmt
        self.until_run_end = until_run_end
        self.size = feed.settings.queue_size
        self.queue: deque[FeedItem] = deque()
        self.lag_from: int | None = None  # first event this subscriber did not get
        self.lag_after: int | None = None  # the event published just before it (a resync reads after it)
        self.dropped = 0  # events that matched while lagging
        self.resume: tuple[int, int | None] | None = None  # (after, until): what the writer reads first
        self.skip_through: int | None = None  # live events up to this id were asked past (a resume ahead of us)
        self.closed = False
        self._pending: deque[bytes] = deque(initial)  # frames taken from the queue, not written yet
        self._end = False  # nothing after what is pending: a run's end, or a lag with the "disconnect" policy
        self._connection: Connection | None = None
        self._waiter: asyncio.Future[None] | None = None  # set while the writer is parked
        self._beat = False  # a heartbeat comment is due (the response's idle timer asked)

    def attach(self, connection: Connection) -> None:
        """Let the hub's rounds write to ``connection`` while the writer is parked (see the module docstring)."""
        self._connection = connection

    def offer(self, items: list[FeedItem], prev_seq: int | None = None) -> None:
        """Queue what matches, up to the bound; past it, count and mark lagging. Never blocks.

        ``prev_seq`` is the id of the item published just before ``items``.
        """
        skip = self.skip_through
        if skip is not None:
            if items[-1].seq <= skip:
                return
            self.skip_through = None
            skipped = sum(1 for item in items if item.seq <= skip)
            if skipped:
                prev_seq = items[skipped - 1].seq
                items = items[skipped:]
        flt = self.filter
        if self.lag_from is not None:
            self.dropped += len(items) if flt is None else sum(1 for item in items if flt.matches(item))
            return
        queue = self.queue
        room = self.size - len(queue)
        if flt is None and len(items) <= room:
            queue.extend(items)
        else:
            for i, item in enumerate(items):
                if flt is not None and not flt.matches(item):
                    continue
                if room > 0:
                    queue.append(item)
                    room -= 1
                else:
                    if self.lag_from is None:
                        self.lag_from = item.seq
                        self.lag_after = items[i - 1].seq if i > 0 else prev_seq
                    self.dropped += 1
        if self.queue or self.lag_from is not None:
            self._feed.rounds.wake_soon(self)

    def heartbeat(self) -> None:
        """Write a ``: heartbeat`` comment next, in line with the frames (the response calls this when idle)."""
        self._beat = True
        self.flush()

    def flush(self) -> None:
        """Write what is due (queued frames, a heartbeat) from here if the writer is parked with nothing
        pending and the connection can take it now; wake the writer for anything else (the hub's round)."""
        connection = self._connection
        waiter = self._waiter
        if (
            connection is None
            or waiter is None
            or waiter.done()  # woken already: the writer takes it from here
            or self.lag_from is not None
            or self.closed
            or not connection.writable()
        ):
            self._wake()
            return
        pending = self._pending
        feed = self._feed
        queue = self.queue
        if queue and self.filter is None and not self.until_run_end and not self._beat:
            chunks = feed.rounds.shared_chunks(
                queue, self.format
            )  # the same events as the last subscriber's: same bytes
            feed.delivered += len(queue)
            queue.clear()
            for i, chunk in enumerate(chunks):
                if not connection.writable():  # a chunk still going out: the writer sends the rest after it
                    pending.extend(chunks[i:])
                    self._wake()
                    return
                feed.writes += 1
                connection.write(chunk)
            return
        if self._beat:
            self._beat = False
            pending.append(HEARTBEAT)
        self._drain()
        while pending and connection.writable():
            feed.writes += 1
            connection.write(self._take())
        if pending or self._end:
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """End this subscriber's stream after what is already queued."""
        self.closed = True
        self._feed._unsubscribe(self)
        self._wake()

    def _drain(self) -> None:
        """Frame what is queued, in this subscriber's format, onto what is pending."""
        queue = self.queue
        if not queue:
            return
        fmt = self.format
        if fmt is None:
            self._pending.extend(item.frame for item in queue)
        else:
            self._pending.extend(item.frame_for(fmt) for item in queue)
        self._feed.delivered += len(queue)
        queue.clear()

    def _take(self) -> bytes:
        """Whole pending frames from the left, up to ``MAX_CHUNK`` bytes (at least one); after a run's end
        (``until_run_end``) nothing more."""
        pending = self._pending
        if not self.until_run_end and len(pending) > 1 and sum(map(len, pending)) <= MAX_CHUNK:
            chunk = b"".join(pending)  # the common case: everything pending is one chunk
            pending.clear()
            return chunk
        out = [pending.popleft()]
        size = len(out[0])
        if self.until_run_end and out[0].endswith(END_OF_RUN):
            return self._ended(out)
        while pending and size + len(pending[0]) <= MAX_CHUNK:
            frame = pending.popleft()
            size += len(frame)
            out.append(frame)
            if self.until_run_end and frame.endswith(END_OF_RUN):
                return self._ended(out)
        return b"".join(out)

    def _ended(self, out: list[bytes]) -> bytes:
        self._end = True
        self._pending.clear()
        self.queue.clear()
        return b"".join(out)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes to write, as they become available: what accumulated, in chunks of at most
        ``MAX_CHUNK`` bytes, so one write never waits long on a slow reader (the send timeout
        measures a single write). While this is parked, the hub's rounds may write for it (:meth:`flush`)."""
        feed = self._feed
        pending = self._pending
        try:
            if self.resume is not None:
                after: int | None
                after, until = self.resume
                self.resume = None
                first = True
                while after is not None and not self._end:
                    frames, after = await feed._replay(self, after, until, first)
                    first = False
                    pending.extend(frames)
                    while after is not None and pending:  # a long resume: one page at a time
                        yield self._take()
            while True:
                if pending:
                    feed.writes += 1
                    yield self._take()
                    continue
                if self._end:
                    return
                if self._beat:
                    self._beat = False
                    yield HEARTBEAT
                    continue
                if not self.queue and self.lag_from is None:
                    if self.closed:
                        return
                    self._waiter = asyncio.get_running_loop().create_future()
                    try:
                        await self._waiter
                    finally:
                        self._waiter = None
                    continue
                self._drain()
                if self.lag_from is not None:
                    more, end = await feed._recover(self)
                    pending.extend(more)
                    self._end = self._end or end
        finally:
            self.closed = True
            feed._unsubscribe(self)
