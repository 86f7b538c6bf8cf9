"""The feed hub: publish once, fan out to bounded subscriber queues, resume from a bounded ring.

Concurrency (one event loop thread, no locks): :meth:`Feed.observe` runs inside
``bridge.submit`` on the ingest path and never awaits: it encodes and frames each
event once, appends it to the ring and offers the batch to every subscriber,
which only appends references to its bounded queue and wakes its writer. Each
subscriber's writer is the task serving its ``GET /v1/stream`` response: it
drains everything that accumulated since its last write into one chunk, so a
busy feed costs one write per subscriber per wake-up, not one per event.

Bounds, and what happens at each:

* ``ring_size`` / ``ring_max_bytes``: the oldest events leave the ring. A resume
  from an id that has left gets a ``missed`` notice with the count first.
* ``queue_size`` per subscriber: past it the subscriber stops receiving and is
  *lagging*; once its writer has drained the queue it gets a ``lagged`` notice
  with the count it lost, then (``lag_policy="resync"``) the lost events still in
  the ring, or (``"disconnect"``) the end of its stream, to resume by Last-Event-ID.
* ``max_subscribers``: one more is refused (:class:`FeedFull`).
* A frozen socket: the response's send timeout cuts it (see ``web/stream.py``).

Event ids are integers that grow by one per event. A hub starts numbering at the
wall-clock microsecond, so every id from an earlier process is below its first
one and a resume across a restart is recognised instead of being misread.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Protocol

from otel_bridge import semconv as sc
from otel_bridge.config import FeedSettings
from otel_bridge.model import AgentEvent, EventKind, Placement
from otel_bridge.sinks.feed import sse
from otel_bridge.sinks.feed.filters import ItemFilter
from otel_bridge.sinks.feed.record import FeedRecord, encode, enrich
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

_MAX_RUN_AGENTS = 10_000
"""Runs whose agent (and conversation) is remembered, for the agent and thread filters on events
that do not name it; LRU."""

_MAX_CHUNK = 64 * 1024
"""Largest write to one subscriber (a single frame may exceed it)."""


class FeedFull(Exception):
    """``max_subscribers`` are connected already."""


class FeedItem:
    """One published event: its filter keys, its canonical SSE frame, and other formats' frames on demand."""

    __slots__ = ("_alt", "agent", "dialect", "frame", "kind", "notes", "record", "run_id", "seq", "source", "thread_id")

    def __init__(self, record: FeedRecord, kind: EventKind, frame: bytes) -> None:
        self.seq = record.seq
        self.kind = kind
        self.run_id = record.run_id
        self.thread_id = record.conversation_id or record.run_id  # the hub sets the run's remembered one
        self.agent = record.agent
        self.dialect = record.dialect
        self.source = record.source
        self.record = record
        self.frame = frame
        self.notes: dict[str, object] | None = None  # per-format state noted at publish time
        self._alt: dict[str, bytes] | None = None

    def frame_for(self, fmt: FeedFormat | None) -> bytes:
        """The frame in ``fmt`` (``None``: canonical), made once and then shared by every subscriber."""
        if fmt is None:
            return self.frame
        if self._alt is None:
            self._alt = {}
        framed = self._alt.get(fmt.name)
        if framed is None:
            framed = self._alt[fmt.name] = fmt.frame(self)
        return framed


class FeedFormat(Protocol):
    """Another wire form of the feed (AG-UI: :mod:`.agui`), plugged in when the feed is built."""

    name: str

    def observe(self, item: FeedItem) -> None:
        """Called for every event in publish order; may note state on ``item.notes``. Must be cheap."""

    def frame(self, item: FeedItem) -> bytes:
        """The SSE frame(s) for one event; called at most once per event."""

    def notice(self, event: str, body: Mapping[str, object]) -> bytes:
        """A feed notice (``missed``, ``lagged``) in this format."""


class Feed:
    """The live feed of one bridge. Add :meth:`observe` with ``bridge.add_observer``."""

    def __init__(
        self,
        settings: FeedSettings,
        *,
        content: bool = False,
        content_limit: int | None = None,
        formats: Sequence[FeedFormat] = (),
        stats: Stats | None = None,
        first_seq: int | None = None,
        names: sc.Naming = sc.V1_41,
        redact_payload: Callable[[str], str] | None = None,
    ) -> None:
        self.settings = settings
        self._redact_payload = redact_payload  # the mapper's payload redaction: the feed shows no more
        self._names = names  # the conventions' version of the records' keys
        self._content = content
        self._content_limit = content_limit  # the spans' attribute_max_length: the same cuts on both
        self._formats = {f.name: f for f in formats}
        self._stats = stats
        self.first_seq = first_seq if first_seq is not None else time.time_ns() // 1000
        self._next_seq = self.first_seq
        self._ring: deque[FeedItem] = deque()
        self._ring_bytes = 0
        self._subscribers: dict[Subscriber, None] = {}
        self._run_agents: OrderedDict[str, str] = OrderedDict()
        self._run_threads: OrderedDict[str, str] = OrderedDict()
        self._closed = False
        self.published = 0
        self.delivered = 0
        self.lag_events = 0
        self.lost = 0
        self.send_timeouts = 0
        self.refused = 0

    # --- publishing (the ingest path: never awaits) --------------------------

    def observe(self, events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
        """Publish a mapped batch: enrich, encode and frame each event once, then offer to every subscriber."""
        settings = self.settings
        formats = tuple(self._formats.values())
        items: list[FeedItem] = []
        for event, placement in zip(events, placements, strict=True):
            seq = self._next_seq
            self._next_seq += 1
            record = enrich(
                event,
                placement,
                seq,
                agent=self._agent_of(event),
                trace_url_template=settings.trace_url_template,
                content=self._content,
                limit=self._content_limit,
                names=self._names,
                redact=self._redact_payload,
            )
            framed = sse.frame(encode(record), event=event.kind.value, event_id=seq, split_lines=False)
            item = FeedItem(record, event.kind, framed)
            item.thread_id = self._thread_of(event)
            for fmt in formats:
                fmt.observe(item)
            items.append(item)
        if not items:
            return
        self.published += len(items)
        self._keep(items)
        for subscriber in self._subscribers:
            subscriber.offer(items)

    def _agent_of(self, event: AgentEvent) -> str | None:
        runs = self._run_agents
        if event.agent is not None:
            if runs.get(event.run_id) != event.agent:
                runs[event.run_id] = event.agent
                runs.move_to_end(event.run_id)
                if len(runs) > _MAX_RUN_AGENTS:
                    runs.popitem(last=False)
            return event.agent
        return runs.get(event.run_id)

    def _thread_of(self, event: AgentEvent) -> str:
        """The run's conversation, remembered for its events that do not name it (else the run itself)."""
        threads = self._run_threads
        if event.conversation_id is not None:
            if threads.get(event.run_id) != event.conversation_id:
                threads[event.run_id] = event.conversation_id
                threads.move_to_end(event.run_id)
                if len(threads) > _MAX_RUN_AGENTS:
                    threads.popitem(last=False)
            return event.conversation_id
        return threads.get(event.run_id, event.run_id)

    def _keep(self, items: list[FeedItem]) -> None:
        ring = self._ring
        ring.extend(items)
        self._ring_bytes += sum(len(item.frame) for item in items)
        limit_n = self.settings.ring_size
        limit_bytes = self.settings.ring_max_bytes
        while len(ring) > limit_n or (self._ring_bytes > limit_bytes and len(ring) > 1):
            self._ring_bytes -= len(ring.popleft().frame)

    # --- subscribing ----------------------------------------------------------

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(self._formats)

    def format(self, name: str) -> FeedFormat:
        """The format plugged in as ``name`` (``KeyError`` if none)."""
        return self._formats[name]

    @property
    def oldest_seq(self) -> int:
        """The id of the oldest event still in the ring (``newest_seq + 1`` when it is empty)."""
        return self._ring[0].seq if self._ring else self._next_seq

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def newest_seq(self) -> int:
        """The id of the last published event (``first_seq - 1`` before any)."""
        return self._next_seq - 1

    def subscribe(
        self, flt: ItemFilter | None = None, fmt: str | None = None, last_event_id: int | None = None
    ) -> Subscriber:
        """A new subscriber; with ``last_event_id``, it first gets what it missed from the ring.

        Raises :class:`FeedFull` past ``max_subscribers`` and ``KeyError`` for an unknown format.
        The replay is computed and the subscriber registered with no await in between, so
        nothing published meanwhile is lost or repeated.
        """
        if self._closed or len(self._subscribers) >= self.settings.max_subscribers:
            self.refused += 1
            raise FeedFull(f"the feed has {len(self._subscribers)} subscribers (feed.max_subscribers)")
        format_ = self._formats[fmt] if fmt is not None else None
        flt = None if flt is None or flt.is_everything else flt
        initial = [sse.retry(self.settings.retry_ms)]
        if last_event_id is not None:
            initial.extend(self._resume(last_event_id, flt, format_))
        subscriber = Subscriber(self, flt, format_, initial)
        self._subscribers[subscriber] = None
        return subscriber

    def _resume(self, last_id: int, flt: ItemFilter | None, fmt: FeedFormat | None) -> list[bytes]:
        ring = self._ring
        oldest = ring[0].seq if ring else self._next_seq
        newest = self.newest_seq
        if last_id >= newest:
            if last_id == newest:
                return []
            # From the future: another server, or a clock that went back. Say so and go live.
            return [self._notice(fmt, sc.FEED_EVENT_MISSED, last_id, None, "unknown_id", oldest)]
        frames: list[bytes] = []
        start = 0
        if last_id < self.first_seq - 1:
            frames.append(self._notice(fmt, sc.FEED_EVENT_MISSED, last_id, None, "restarted", oldest))
        elif last_id + 1 < oldest:
            frames.append(self._notice(fmt, sc.FEED_EVENT_MISSED, last_id, oldest - last_id - 1, "evicted", oldest))
        else:
            start = last_id + 1 - oldest
        frames.extend(
            item.frame_for(fmt) for item in itertools.islice(ring, start, None) if flt is None or flt.matches(item)
        )
        return frames

    def _notice(
        self, fmt: FeedFormat | None, event: str, last_id: int, missed: int | None, reason: str, oldest: int
    ) -> bytes:
        body: dict[str, object] = {
            "missed": missed,
            "reason": reason,
            "last_event_id": last_id,
            "oldest_available": oldest,
        }
        if fmt is not None:
            return fmt.notice(event, body)
        return sse.frame(encode(body), event=event, split_lines=False)

    def _recover(self, subscriber: Subscriber) -> tuple[list[bytes], bool]:
        """A lagging subscriber whose queue is drained: the ``lagged`` notice, then resync or end."""
        lag_from = subscriber.lag_from
        dropped = subscriber.dropped
        subscriber.lag_from = None
        subscriber.dropped = 0
        assert lag_from is not None
        policy = self.settings.lag_policy
        recovered: list[bytes] = []
        if policy == "resync":
            ring = self._ring
            oldest = ring[0].seq if ring else self._next_seq
            flt, fmt = subscriber.filter, subscriber.format
            recovered = [
                item.frame_for(fmt)
                for item in itertools.islice(ring, max(0, lag_from - oldest), None)
                if flt is None or flt.matches(item)
            ]
        lost = max(0, dropped - len(recovered))
        self.lag_events += 1
        self.lost += lost
        if self._stats is not None and lost:
            self._stats.feed_events_lost += lost  # its own counter: not a span the bridge lost
        body: dict[str, object] = {
            "lost": lost,
            "recovered": len(recovered),
            "policy": policy,
            "last_event_id": lag_from - 1,
        }
        fmt = subscriber.format
        notice = (
            fmt.notice(sc.FEED_EVENT_LAGGED, body)
            if fmt is not None
            else sse.frame(encode(body), event=sc.FEED_EVENT_LAGGED, split_lines=False)
        )
        return [notice, *recovered], policy == "disconnect"

    def _unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.pop(subscriber, None)

    def close(self) -> None:
        """End every subscriber's stream (server shutdown); later subscriptions are refused."""
        self._closed = True
        for subscriber in list(self._subscribers):
            subscriber.close()

    def snapshot(self) -> dict[str, object]:
        """Counters for ``/v1/health``."""
        return {
            "subscribers": len(self._subscribers),
            "queued_max": max((len(s.queue) for s in self._subscribers), default=0),
            "published": self.published,
            "delivered": self.delivered,
            "ring_events": len(self._ring),
            "ring_bytes": self._ring_bytes,
            "newest_id": self.newest_seq,
            "lagged": self.lag_events,
            "lost": self.lost,
            "send_timeouts": self.send_timeouts,
            "refused": self.refused,
            # Events a UI format held back because their run had ended (AG-UI, AI SDK), by format.
            "late_dropped": {name: getattr(fmt, "late_dropped", 0) for name, fmt in self._formats.items()},
        }


class Subscriber:
    """One ``GET /v1/stream`` connection: a filter, a format, a bounded queue and its writer."""

    __slots__ = ("_feed", "_initial", "_waiter", "closed", "dropped", "filter", "format", "lag_from", "queue", "size")

    def __init__(self, feed: Feed, flt: ItemFilter | None, fmt: FeedFormat | None, initial: list[bytes]) -> None:
        self._feed = feed
        self.filter = flt
        self.format = fmt
        self.size = feed.settings.queue_size
        self.queue: deque[FeedItem] = deque()
        self.lag_from: int | None = None  # first event this subscriber did not get
        self.dropped = 0  # events that matched while lagging
        self.closed = False
        self._initial = initial
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, items: list[FeedItem]) -> None:
        """Queue what matches, up to the bound; past it, count and mark lagging. Never blocks."""
        flt = self.filter
        if self.lag_from is not None:
            self.dropped += len(items) if flt is None else sum(1 for item in items if flt.matches(item))
            return
        queue = self.queue
        room = self.size - len(queue)
        if flt is None and len(items) <= room:
            queue.extend(items)
        else:
            for item in items:
                if flt is not None and not flt.matches(item):
                    continue
                if room > 0:
                    queue.append(item)
                    room -= 1
                else:
                    if self.lag_from is None:
                        self.lag_from = item.seq
                    self.dropped += 1
        if self.queue or self.lag_from is not None:
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
            end = False
            while True:
                if pending:
                    yield _take(pending, _MAX_CHUNK)
                    continue
                if end:
                    return
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
                    more, end = feed._recover(self)
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
