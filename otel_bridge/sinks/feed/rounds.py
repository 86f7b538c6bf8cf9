"""The feed's rounds: when what is published reaches the subscribers, and who writes it.

What the backend hands back to the hub is kept for the next *round*: a callback on the loop
(at once after a quiet spell, else spaced by the number of subscribers, :data:`_ROUND_COST_S`)
that offers what was published since the last one to every subscriber (which only appends
references to its bounded queue; so a publish costs nothing per subscriber, and a round one offer
each, however many POSTs came between) and then calls each one's
:meth:`~.subscriber.Subscriber.flush`. What waits for a round is bounded like a queue
(``queue_size``: past it, it is offered at once), and the hub offers it before a new subscriber
registers, a lag is counted or a gap notice is queued, so each of those sees the events in their
order. A subscriber whose writer is parked and whose connection has no write in flight is written
right there: what accumulated since its last write, as one chunk, handed to its response's
``send`` (unfiltered subscribers in step share the very bytes, :meth:`Rounds.shared_chunks`).
Anything else (a resume, a lag, the end of a stream, a write behind a slow one) wakes its writer,
the task serving its ``GET /v1/stream`` response. So a busy feed costs one write per subscriber per
round, not one per event, and no task switch per subscriber; a round over many subscribers yields
to the loop every :data:`_ROUND_SLICE_S` so ingest is not held behind it, and no round starts
before the last one has ended.

Concurrency: one event loop thread, no locks; outside a loop (a test publishing directly) a round
runs at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from otel_bridge.sinks.feed.subscriber import MAX_CHUNK

if TYPE_CHECKING:
    from otel_bridge.sinks.feed.item import FeedFormat, FeedItem
    from otel_bridge.sinks.feed.subscriber import Subscriber

_ROUND_COST_S = 50e-6
"""Subscribers whose queue got events are written together in rounds, spaced by at least this much per
subscriber: about twice what one write costs (BENCHMARKS.md: 15-30 us, most of it the socket's), so
however fast events come (one per POST) the fan-out stays near half a core, each write carrying every
event since the last round. A publish after a quieter spell is written at once (on the next turn of the
loop)."""
_MAX_ROUND_GAP_S = 0.05
"""The most rounds are spaced, whatever the number of subscribers (the latency it may add)."""
_ROUND_SLICE_S = 0.005
"""The longest a round holds the loop before it lets other work in (ingest) and goes on at the next turn."""
_SLICE_CHECK = 32
"""Subscribers flushed between looks at the clock."""


class Rounds:
    """The rounds of one feed over its ``subscribers`` (the hub's own registry, read here, never changed)."""

    def __init__(self, subscribers: dict[Subscriber, None], queue_size: int) -> None:
        self._subscribers = subscribers
        self._queue_size = queue_size
        self._to_wake: dict[Subscriber, None] = {}
        self._unoffered: list[FeedItem] = []  # published since the last round (offered to every subscriber in it)
        self._unoffered_prev: int | None = None  # the id published just before them
        self._shared: tuple[FeedItem, FeedItem, int, FeedFormat | None, list[bytes]] | None = None
        self._round: asyncio.Handle | None = None
        self._last_round = float("-inf")

    def publish(self, items: list[FeedItem], prev_seq: int | None) -> None:
        """Keep ``items`` (published after the id ``prev_seq``) for the next round: one offer each per round."""
        if not self._unoffered:
            self._unoffered_prev = prev_seq
        self._unoffered.extend(items)
        if len(self._unoffered) >= self._queue_size:  # bounded like a queue: offered at once
            self.offer_pending()
        self._soon()

    def offer_pending(self) -> None:
        """Offer every subscriber what was published since the last round (the round's first step)."""
        items = self._unoffered
        if not items:
            return
        self._unoffered = []
        prev = self._unoffered_prev
        for subscriber in self._subscribers:
            subscriber.offer(items, prev)

    def wake_soon(self, subscriber: Subscriber) -> None:
        """Write ``subscriber`` in the next round, together with every other subscriber that got events."""
        self._to_wake[subscriber] = None
        self._soon()

    def _soon(self) -> None:
        if self._round is not None:  # one is due, or going on: what it does not write, the next one does
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside a loop (a test): nobody can be waiting
            self._run()
            return
        self._next(loop)

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        gap = min(_MAX_ROUND_GAP_S, len(self._subscribers) * _ROUND_COST_S)
        delay = self._last_round + gap - loop.time()
        self._round = loop.call_later(delay, self._run) if delay > 0 else loop.call_soon(self._run)

    def _run(self) -> None:
        """A round: what was published since the last one is offered to every subscriber, then every subscriber
        that got events writes them (from here, see :meth:`Subscriber.flush`)."""
        self.offer_pending()
        to_wake, self._to_wake = self._to_wake, {}
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside a loop (a test): nothing to slice
            for subscriber in to_wake:
                subscriber.flush()
            return
        self._last_round = loop.time()
        self._flush_slice(iter(list(to_wake)), loop)

    def _flush_slice(self, subscribers: Iterator[Subscriber], loop: asyncio.AbstractEventLoop) -> None:
        """Flush subscribers for up to :data:`_ROUND_SLICE_S`, then leave the rest to the loop's next turn, so
        a round over thousands of subscribers never holds ingest back for long. No round starts before this
        one has ended (rounds that overlapped would keep pushing the same subscribers to the back)."""
        deadline = loop.time() + _ROUND_SLICE_S
        for n, subscriber in enumerate(subscribers, 1):
            subscriber.flush()
            if n % _SLICE_CHECK == 0 and loop.time() > deadline:
                self._round = loop.call_soon(self._flush_slice, subscribers, loop)
                return
        self._round = None
        if self._to_wake or self._unoffered:  # published during the round: the next one, spaced as usual
            self._next(loop)

    def shared_chunks(self, queue: deque[FeedItem], fmt: FeedFormat | None) -> list[bytes]:
        """The frames of an unfiltered subscriber's ``queue`` as chunks of whole frames (at most ``MAX_CHUNK``
        bytes each, unless one frame is larger), shared with every other subscriber whose queue holds the same
        events: in a round, all the unfiltered ones in step. Two unfiltered queues with the same first and last
        item and length hold the same items: each is everything published (and every gap notice) from its
        first item to its last."""
        first, last, n = queue[0], queue[-1], len(queue)
        shared = self._shared
        if shared is not None and shared[0] is first and shared[1] is last and shared[2] == n and shared[3] is fmt:
            return shared[4]
        frames = [item.frame for item in queue] if fmt is None else [item.frame_for(fmt) for item in queue]
        chunk = b"".join(frames)
        if len(chunk) <= MAX_CHUNK:
            chunks = [chunk]
        else:  # a busy round: cut once here, not once per subscriber
            chunks = []
            part: list[bytes] = []
            size = 0
            for frame in frames:
                if part and size + len(frame) > MAX_CHUNK:
                    chunks.append(b"".join(part))
                    part, size = [], 0
                part.append(frame)
                size += len(frame)
            chunks.append(b"".join(part))
        self._shared = (first, last, n, fmt, chunks)
        return chunks
