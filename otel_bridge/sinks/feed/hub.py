"""The feed hub: keep in a backend, enrich and frame once on first read, fan out to bounded subscriber queues.

Concurrency (one event loop thread, no locks): :meth:`Feed.observe` runs inside
``bridge.submit`` on the ingest path and never awaits: it gives each event its
id, takes what only that moment knows (its run's agent and thread) and appends
it to the :mod:`backend <.backend>` as a :class:`~.item.PublishedEvent` (the
event and its placement). Enriching, encoding and framing happen once, when
something first reads the event (a subscriber, a resume, a UI form, or a shared
backend, which stores the encoded record), so a feed nobody reads costs one small
object per event. The backend gives each event its place in the order and hands
it back, in order, to the hub's ``_publish``: at once for the in-process ring
(:mod:`.memory`), from its one read loop for a Redis stream shared by a fleet
(:mod:`.redis_backend`). ``_publish`` gives it to the formats' state and keeps it
for the next *round* (:mod:`.rounds`), which offers it to every subscriber's bounded queue
and writes each waiting subscriber from the round itself: a busy feed costs one write per
subscriber per round, not one per event, and no task switch per subscriber.

Bounds, and what happens at each:

* The backend's bounds (the ring's ``ring_size`` / ``ring_max_bytes``, the
  stream's trimming): a resume from an id that has left gets a ``missed`` notice first.
* ``queue_size`` per subscriber: past it the subscriber stops receiving and is
  *lagging*; once its writer has drained the queue it gets a ``lagged`` notice
  with the count it lost, then (``lag_policy="resync"``) the lost events the
  backend still keeps (at most ``ring_size``), or (``"disconnect"``) the end of
  its stream, to resume by Last-Event-ID.
* ``max_subscribers``: one more is refused (:class:`FeedFull`).
* What waits for a round: ``queue_size`` events; past it they are offered at once.
* A frozen socket: the response's send timeout cuts it (see ``web/stream.py``), also
  when the write it is stuck in is a round's.
* A backend that goes away (Redis down): every subscriber gets a ``missed``
  notice where the gap starts (the backend calls :meth:`Feed._gap`).

A resume and a resync read ``(after, until]`` where ``until`` is the newest id
published when the subscriber registered (or the resync began); everything
published later reaches its queue, so nothing is lost or repeated across the
read's await.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from otel_bridge import semconv as sc
from otel_bridge.config import FeedSettings
from otel_bridge.model import AgentEvent, Placement
from otel_bridge.sinks.feed import sse
from otel_bridge.sinks.feed.backend import Backlog, FeedBackend, Gap
from otel_bridge.sinks.feed.filters import ItemFilter
from otel_bridge.sinks.feed.item import FeedFormat, FeedItem, NoticeItem, PublishedEvent, frame_item
from otel_bridge.sinks.feed.memory import MemoryBackend
from otel_bridge.sinks.feed.record import Enricher, FeedRecord, encode
from otel_bridge.sinks.feed.rounds import Rounds
from otel_bridge.sinks.feed.runs import LateEvents
from otel_bridge.sinks.feed.subscriber import Subscriber
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

_MAX_RUN_AGENTS = 10_000
"""Runs whose agent (and conversation) is remembered, for the agent and thread filters on events
that do not name it; LRU."""


class FeedFull(Exception):
    """``max_subscribers`` are connected already."""


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
        backend: FeedBackend | None = None,
        names: sc.Naming = sc.V1_41,
        redact_payload: Callable[[str], str] | None = None,
    ) -> None:
        """``backend``: where events are kept and ordered (default: the in-process ring, ids from ``first_seq``);
        ``names``: the conventions' version of the records' keys; ``redact_payload``: the mapper's payload
        redaction (the feed shows no more than the spans)."""
        self.settings = settings
        self._formats = {f.name: f for f in formats}
        self._stats = stats
        self.first_seq = first_seq if first_seq is not None else time.time_ns() // 1000
        self._next_seq = self.first_seq
        self.backend: FeedBackend = backend or MemoryBackend(settings, self.first_seq)
        self.backend.bind(self._publish, frame_item, self._gap)
        self._enricher = Enricher(
            trace_url_template=settings.trace_url_template,
            content=content,
            limit=content_limit,  # the spans' attribute_max_length: the same cuts on both
            names=names,
            redact=redact_payload,
        )
        # In this process's own order, the run's thread is taken when an event is published; a shared
        # backend's events are read back in the fleet's order, so there it is taken as each is read.
        self._threads_here = backend is None
        self._observers = [_batch_observer(f) for f in formats]
        # Late events of the UI forms, counted for /v1/health without making a form translate anything.
        self._late: LateEvents | None = None
        if any(hasattr(f, "late_dropped") for f in formats):
            self._late = LateEvents(max_pending=settings.ring_size)
            self._observers.append(self._late.observe_batch)
        # A shared backend's reads build new items; the formats' notes are on the ones published here,
        # so a resume uses those where this process published them (the in-process ring holds them).
        self._recent: OrderedDict[int, FeedItem] | None = None if backend is None else OrderedDict()
        # The last item published (a lag resync reads after it).
        self._prev_seq: int | None = self.first_seq - 1 if backend is None else self.backend.newest_id
        self._subscribers: dict[Subscriber, None] = {}
        self._run_agents: OrderedDict[str, str] = OrderedDict()
        self._run_threads: OrderedDict[str, str] = OrderedDict()
        self._closed = False
        self.rounds = Rounds(self._subscribers, settings.queue_size)
        self.published = 0
        self.delivered = 0
        self.writes = 0  # chunks written to subscribers (several events each on a busy feed)
        self.lag_events = 0
        self.lost = 0
        self.send_timeouts = 0
        self.refused = 0

    # --- publishing (the ingest path: never awaits) --------------------------

    def observe(self, events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
        """Publish a mapped batch: give each event its id and take what only this moment knows (its run's
        agent and, kept here, thread); enriching, encoding and framing wait until something reads it."""
        if not events:
            return
        seq = self._next_seq
        enricher = self._enricher
        agents = self._run_agents
        threads = self._run_threads if self._threads_here else None
        items: list[FeedItem] = []
        append = items.append
        for event, placement in zip(events, placements, strict=True):
            run_id = event.run_id
            agent = event.agent
            if agent is None:
                agent = agents.get(run_id)
            elif agents.get(run_id) != agent:
                _remember(agents, run_id, agent)
            thread_id = run_id
            if threads is not None:
                conversation = event.conversation_id
                if conversation is None:
                    thread_id = threads.get(run_id, run_id)
                else:
                    thread_id = conversation
                    if threads.get(run_id) != conversation:
                        _remember(threads, run_id, conversation)
            append(PublishedEvent(event, placement, seq, agent, thread_id, enricher))
            seq += 1
        self._next_seq = seq
        self.backend.append(items)

    def _publish(self, items: list[FeedItem]) -> None:
        """The backend's events, in order: to every format's state, then every subscriber."""
        if not self._threads_here:  # read back from a shared backend: the run's thread as read, in read order
            for item in items:
                item.thread_id = self._thread_of(item.record)
        recent = self._recent
        if recent is not None:
            for item in items:
                recent[item.seq] = item
            while len(recent) > self.settings.ring_size:
                recent.popitem(last=False)
        for observe in self._observers:
            observe(items)
        self.published += len(items)
        if self._subscribers:  # offered to them all in the next round: one offer each per round, not per publish
            self.rounds.publish(items, self._prev_seq)
        self._prev_seq = items[-1].seq

    def _gap(self, reason: str) -> None:
        """The backend went away: every subscriber is told, in line with its events, that some may be missing."""
        self.rounds.offer_pending()  # what was published before it goes first
        prev = self._prev_seq
        body: dict[str, object] = {
            "missed": None,
            "reason": reason,
            "last_event_id": None if prev is None else self.backend.wire_id(prev),
            "oldest_available": None,
        }
        notice = NoticeItem(prev if prev is not None else 0, body)
        for subscriber in self._subscribers:
            subscriber.queue.append(notice)  # past the queue's bound: one per outage
            subscriber.flush()

    def _thread_of(self, record: FeedRecord) -> str:
        """The run's conversation, remembered for its events that do not name it (else the run itself)."""
        threads = self._run_threads
        run_id, conversation = record.run_id, record.conversation_id
        if conversation is not None:
            if threads.get(run_id) != conversation:
                _remember(threads, run_id, conversation)
            return conversation
        return threads.get(run_id, run_id)

    # --- subscribing ----------------------------------------------------------

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(self._formats)

    def format(self, name: str) -> FeedFormat:
        """The format plugged in as ``name`` (``KeyError`` if none)."""
        return self._formats[name]

    @property
    def oldest_seq(self) -> int:
        """The id of the oldest event still kept, where the backend can tell cheaply (the in-process ring);
        else 0: a resume from before what is kept then gets the backend's ``missed`` notice."""
        ring = getattr(self.backend, "ring", None)
        if ring is None:
            return 0
        return int(ring[0].seq) if ring else self._next_seq

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def newest_seq(self) -> int | None:
        """The id of the last published event (``None`` before any)."""
        return self.backend.newest_id

    def parse_id(self, text: str) -> int:
        """A ``Last-Event-ID`` as this feed's backend writes ids; ``ValueError`` saying why not."""
        return self.backend.parse_id(text)

    def subscribe(
        self,
        flt: ItemFilter | None = None,
        fmt: str | None = None,
        last_event_id: int | None = None,
        *,
        until_run_end: bool = False,
    ) -> Subscriber:
        """A new subscriber; with ``last_event_id``, it first gets what it missed from the backend;
        ``until_run_end``: its stream ends after the first run end (a UI form following one run).

        Raises :class:`FeedFull` past ``max_subscribers`` and ``KeyError`` for an unknown format.
        The subscriber is registered now and its writer reads the backend up to the newest id
        published now, so what is published meanwhile reaches its queue once.
        """
        if self._closed or len(self._subscribers) >= self.settings.max_subscribers:
            self.refused += 1
            raise FeedFull(f"the feed has {len(self._subscribers)} subscribers (feed.max_subscribers)")
        format_ = self._formats[fmt] if fmt is not None else None
        flt = None if flt is None or flt.is_everything else flt
        initial = [sse.retry(self.settings.retry_ms)]
        subscriber = Subscriber(self, flt, format_, initial, until_run_end)
        if last_event_id is not None:
            subscriber.resume = (last_event_id, self.backend.newest_id)
        self.rounds.offer_pending()  # published before it came: not its (a resume reads them)
        self._subscribers[subscriber] = None
        return subscriber

    async def _replay(
        self, subscriber: Subscriber, after: int, until: int | None, first: bool
    ) -> tuple[list[bytes], int | None]:
        """One page of a resume: the ``missed`` notice (first page), the frames; and where the next page starts."""
        backlog = await self._read(after, until)
        flt, fmt = subscriber.filter, subscriber.format
        frames: list[bytes] = []
        if first and backlog.gap is not None:
            gap = backlog.gap
            body: dict[str, object] = {
                "missed": gap.missed,
                "reason": gap.reason,
                "last_event_id": self.backend.wire_id(after),
                "oldest_available": gap.oldest,
            }
            frames.append(
                fmt.notice(sc.FEED_EVENT_MISSED, body)
                if fmt is not None
                else sse.frame(encode(body), event=sc.FEED_EVENT_MISSED, split_lines=False)
            )
        if backlog.skip_through is not None:
            subscriber.skip_through = backlog.skip_through
        frames.extend(item.frame_for(fmt) for item in backlog.items if flt is None or flt.matches(item))
        return frames, backlog.items[-1].seq if backlog.more and backlog.items else None

    async def _read(self, after: int, until: int | None) -> Backlog:
        try:
            backlog = await self.backend.read_from(after, until, self.settings.ring_size)
        except Exception as exc:  # the backend is away: the subscriber is told and goes live
            log.warning("feed: reading the backend failed: %s", exc)
            return Backlog(gap=_unavailable())
        recent = self._recent
        if recent is not None and backlog.items:
            backlog.items = [recent.get(item.seq, item) for item in backlog.items]
        return backlog

    async def _recover(self, subscriber: Subscriber) -> tuple[list[bytes], bool]:
        """A lagging subscriber whose queue is drained: the ``lagged`` notice, then resync or end."""
        self.rounds.offer_pending()  # what is published goes into the count (dropped) that the resync makes up for
        lag_after = subscriber.lag_after
        dropped = subscriber.dropped
        subscriber.lag_from = None
        subscriber.lag_after = None
        subscriber.dropped = 0
        policy = self.settings.lag_policy
        recovered: list[bytes] = []
        if policy == "resync" and lag_after is not None:
            # Up to what is published now; what is published during the read reaches the queue.
            backlog = await self._read(lag_after, self.backend.newest_id)
            flt, fmt = subscriber.filter, subscriber.format
            recovered = [item.frame_for(fmt) for item in backlog.items if flt is None or flt.matches(item)]
        lost = max(0, dropped - len(recovered))
        self.lag_events += 1
        self.lost += lost
        if self._stats is not None and lost:
            self._stats.feed_events_lost += lost  # its own counter: not a span the bridge lost
        body: dict[str, object] = {
            "lost": lost,
            "recovered": len(recovered),
            "policy": policy,
            "last_event_id": None if lag_after is None else self.backend.wire_id(lag_after),
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
        self.rounds.offer_pending()  # what was published goes out before the end
        for subscriber in list(self._subscribers):
            subscriber.close()

    async def start(self) -> None:
        """Start the backend (its connection and read loop, for a shared one)."""
        await self.backend.start()

    async def shutdown(self) -> None:
        """Stop the backend (a shared stream's writer appends what it still holds). Safe if never started."""
        await self.backend.shutdown()

    def snapshot(self) -> dict[str, object]:
        """Counters for ``/v1/health``."""
        newest = self.newest_seq
        late = self._late.late_dropped if self._late is not None else 0
        return {
            "subscribers": len(self._subscribers),
            "queued_max": max((len(s.queue) for s in self._subscribers), default=0),
            "published": self.published,
            "delivered": self.delivered,
            "writes": self.writes,
            **self.backend.snapshot(),
            "newest_id": None if newest is None else self.backend.wire_id(newest),
            "lagged": self.lag_events,
            "lost": self.lost,
            "send_timeouts": self.send_timeouts,
            "refused": self.refused,
            # Events a UI format holds back because their run had ended (AG-UI, AI SDK), by format.
            "late_dropped": {name: late if hasattr(fmt, "late_dropped") else 0 for name, fmt in self._formats.items()},
        }


def _remember(runs: OrderedDict[str, str], run_id: str, value: str) -> None:
    """Note a run's agent or conversation (a change only: cheap on the ingest path); the least recent go first."""
    runs[run_id] = value
    runs.move_to_end(run_id)
    if len(runs) > _MAX_RUN_AGENTS:
        runs.popitem(last=False)


def _batch_observer(fmt: FeedFormat) -> Callable[[list[FeedItem]], None]:
    """``fmt.observe_batch``, or its ``observe`` called for each item."""
    observe_batch: Callable[[list[FeedItem]], None] | None = getattr(fmt, "observe_batch", None)
    if observe_batch is not None:
        return observe_batch
    observe = fmt.observe

    def each(items: list[FeedItem]) -> None:
        for item in items:
            observe(item)

    return each


def _unavailable() -> Gap:
    return Gap("unavailable", None, None)
