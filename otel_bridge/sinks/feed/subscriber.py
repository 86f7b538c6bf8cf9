"""One ``GET /v1/stream`` connection: its filter and format, a bounded queue, and its writer.

The hub (:mod:`.hub`) offers each published batch to every subscriber, which only
appends references to its queue (or starts lagging past ``queue_size``) and asks
the hub for a wake-up (in the hub's next round); the writer, :meth:`Subscriber.chunks`, first reads what a
resume asked for, then drains everything queued since its last write into one
chunk of at most 64 KiB, with heartbeats between frames, never inside one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from otel_bridge.sinks.feed import sse
from otel_bridge.sinks.feed.filters import ItemFilter
from otel_bridge.sinks.feed.item import FeedFormat, FeedItem

if TYPE_CHECKING:
    from otel_bridge.sinks.feed.hub import Feed

_MAX_CHUNK = 64 * 1024
"""Largest write to one subscriber (a single frame may exceed it)."""

HEARTBEAT = sse.comment("heartbeat")
"""What an idle stream writes every ``heartbeat_s``."""


class Subscriber:
    """One ``GET /v1/stream`` connection: a filter, a format, a bounded queue and its writer."""

    __slots__ = (
        "_beat",
        "_feed",
        "_initial",
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
    )

    def __init__(self, feed: Feed, flt: ItemFilter | None, fmt: FeedFormat | None, initial: list[bytes]) -> None:
        self._feed = feed
        self.filter = flt
        self.format = fmt
        self.size = feed.settings.queue_size
        self.queue: deque[FeedItem] = deque()
        self.lag_from: int | None = None  # first event this subscriber did not get
        self.lag_after: int | None = None  # the event published just before it (a resync reads after it)
        self.dropped = 0  # events that matched while lagging
        self.resume: tuple[int, int | None] | None = None  # (after, until): what the writer reads first
        self.skip_through: int | None = None  # live events up to this id were asked past (a resume ahead of us)
        self.closed = False
        self._initial = initial
        self._waiter: asyncio.Future[None] | None = None
        self._beat = False  # a heartbeat comment is due (the response's idle timer asked)

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
            self._feed._wake_soon(self)

    def heartbeat(self) -> None:
        """Write a ``: heartbeat`` comment next, in line with the frames (the response calls this when idle)."""
        self._beat = True
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

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes to write, as they become available: what accumulated, in chunks of at most
        ``_MAX_CHUNK`` bytes, so one write never waits long on a slow reader (the send timeout
        measures a single write)."""
        feed = self._feed
        pending: deque[bytes] = deque(self._initial)
        self._initial = []
        try:
            if self.resume is not None:
                after: int | None
                after, until = self.resume
                self.resume = None
                first = True
                while after is not None:
                    frames, after = await feed._replay(self, after, until, first)
                    first = False
                    pending.extend(frames)
                    while after is not None and pending:  # a long resume: one page at a time
                        yield _take(pending, _MAX_CHUNK)
            end = False
            while True:
                if pending:
                    feed.writes += 1
                    yield _take(pending, _MAX_CHUNK)
                    continue
                if end:
                    return
                if self._beat:
                    self._beat = False
                    yield HEARTBEAT
                    continue
                queue = self.queue
                if not queue and self.lag_from is None:
                    if self.closed:
                        return
                    self._waiter = asyncio.get_running_loop().create_future()
                    try:
                        await self._waiter
                    finally:
                        self._waiter = None
                    continue
                fmt = self.format
                if fmt is None:
                    pending.extend(item.frame for item in queue)
                else:
                    pending.extend(item.frame_for(fmt) for item in queue)
                feed.delivered += len(queue)
                queue.clear()
                if self.lag_from is not None:
                    more, end = await feed._recover(self)
                    pending.extend(more)
        finally:
            self.closed = True
            feed._unsubscribe(self)


def _take(parts: deque[bytes], limit: int) -> bytes:
    """Pop whole frames from the left, up to ``limit`` bytes (at least one)."""
    out = [parts.popleft()]
    size = len(out[0])
    while parts and size + len(parts[0]) <= limit:
        size += len(parts[0])
        out.append(parts.popleft())
    return b"".join(out)
