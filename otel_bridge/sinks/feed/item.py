"""One published event as the feed keeps it, and the other wire forms' interface.

A :class:`FeedItem` holds an event's filter keys and, each made on first use and then shared
by every subscriber, its record, its encoded record and its canonical SSE frame; other
formats' frames are made once, on demand (:meth:`FeedItem.frame_for`). What this process
publishes starts as a :class:`PublishedEvent`: the mapped event and its placement, with what
only the moment of publishing knows (its id, its run's agent and thread), so that publishing
to a feed nobody reads costs one small object per event. A :class:`NoticeItem` is a
``missed`` notice queued in line with the events. A shared backend builds the items it reads
back with :func:`frame_item`.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Protocol

from otel_bridge import semconv as sc
from otel_bridge.model import AgentEvent, EventKind, Placement
from otel_bridge.sinks.feed import sse
from otel_bridge.sinks.feed.backend import WireId
from otel_bridge.sinks.feed.record import Enricher, FeedRecord, encode


class FeedItem:
    """One published event: its filter keys, its record, its canonical SSE frame, other formats' frames on demand.

    ``seq`` is its place in the backend's order; ``wire_id`` is how its ``id:`` line writes that
    (``None``: no ``id:`` line, an event served while the shared backend was away). The record
    (:attr:`record`), its JSON and the canonical frame (:attr:`frame`) are each made on first use
    (a subscriber, a resume, a UI form, a shared backend that stores the JSON), then kept and
    shared, so a feed nobody reads neither enriches nor frames its events (:class:`PublishedEvent`).
    """

    __slots__ = (
        "_alt",
        "_data",
        "_frame",
        "_record",
        "_size",
        "agent",
        "dialect",
        "kind",
        "notes",
        "run_id",
        "seq",
        "source",
        "thread_id",
        "wire_id",
    )

    def __init__(
        self,
        record: FeedRecord,
        kind: EventKind,
        frame: bytes | None,
        seq: int | None = None,
        wire_id: WireId | None = -1,
        data: bytes | None = None,
    ) -> None:
        """``frame``: the canonical frame, or ``None`` to make it from ``data`` (the encoded record) when first used."""
        if frame is None and data is None:
            raise ValueError("a feed item needs its frame or its encoded record")
        self.seq = record.seq if seq is None else seq
        self.wire_id: WireId | None = self.seq if wire_id == -1 else wire_id
        self.kind = kind
        self.run_id = record.run_id
        self.thread_id = record.conversation_id or record.run_id  # the hub sets the run's remembered one
        self.agent = record.agent
        self.dialect = record.dialect
        self.source = record.source
        self._record: FeedRecord | None = record
        self._frame = frame
        self._data = data
        self._size: int | None = None
        self.notes: dict[str, object] | None = None  # per-format state noted at publish time
        self._alt: dict[str, bytes] | None = None

    @property
    def record(self) -> FeedRecord:
        """What the event says (the JSON object on its ``data:`` line), made once."""
        record = self._record
        if record is None:
            record = self._record = self._enrich()
        return record

    def _enrich(self) -> FeedRecord:
        raise AssertionError("an item built from a record always has it")  # pragma: no cover

    @property
    def data(self) -> bytes:
        """The encoded record (the ``data:`` line), made once; a shared backend stores it."""
        data = self._data
        if data is None:
            frame = self._frame
            if frame is not None:  # framed already: the frame holds it (its one data line)
                return frame[frame.index(b"data: ") + 6 : -2]
            data = self._data = encode(self.record)
        return data

    @property
    def frame(self) -> bytes:
        """The canonical SSE frame, made once and then shared by every subscriber."""
        frame = self._frame
        if frame is None:
            frame = self._frame = sse.frame(self.data, event=self.kind.value, event_id=self.wire_id, split_lines=False)
            self._data = None  # the frame holds it
        return frame

    @property
    def size(self) -> int:
        """The canonical frame's length (made from the encoded record, without framing it)."""
        size = self._size
        if size is None:
            frame = self._frame
            if frame is not None:
                size = len(frame)
            else:
                size = sse.frame_size(len(self.data), event=self.kind.value, event_id=self.wire_id)
            self._size = size
        return size

    @property
    def size_known(self) -> bool:
        """Whether :attr:`size` is known without enriching the event."""
        return self._size is not None or self._frame is not None or self._data is not None

    def size_bound(self) -> int:
        """At least :attr:`size` (and at least what the item holds), known cheaply: the size itself here."""
        return self.size

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


class PublishedEvent(FeedItem):
    """An event this process published, kept as the mapped event and its placement until someone reads it.

    What depends on the moment of publishing (its id, its run's agent and thread) is taken then;
    the rest of the record is a pure function of the event and its placement (both immutable) and
    of the feed's fixed settings (:class:`~.record.Enricher`), so enriching it later gives the very
    record enriching it at once would have. Once enriched, the event is let go.
    """

    __slots__ = ("_enricher", "_event", "_placement")

    def __init__(
        self, event: AgentEvent, placement: Placement, seq: int, agent: str | None, thread_id: str, enricher: Enricher
    ) -> None:  # no FeedItem.__init__: there is no record yet (this runs once per published event: kept lean)
        self.seq = seq
        self.wire_id = seq
        self.kind = event.kind
        self.run_id = event.run_id
        self.thread_id = thread_id
        self.agent = agent
        self.dialect = event.dialect
        self.source = event.source
        self._record = None
        self._frame = None
        self._data = None
        self._size = None
        self.notes = None
        self._alt = None
        self._event: AgentEvent | None = event
        self._placement: Placement | None = placement
        self._enricher = enricher

    def _enrich(self) -> FeedRecord:
        event, placement = self._event, self._placement
        assert event is not None
        assert placement is not None
        record = self._enricher.record(event, placement, self.seq, self.agent)
        self._event = self._placement = None  # the record says all the feed shows of them
        return record

    def size_bound(self) -> int:
        """Its frame's size once known; until then a bound on it that also covers the event it holds."""
        event = self._event
        if event is None or self._data is not None or self._frame is not None:
            return self.size
        bound = self._enricher.frame_bound(event, self.agent)
        return self.size if bound is None else bound


def batch_bound(items: Sequence[FeedItem]) -> int | None:
    """A bound on the summed sizes of ``items``' frames (and on what they hold), made in one pass.

    For the hub's fresh batch (every item a :class:`PublishedEvent` not yet enriched, one enricher)
    it is :meth:`~.record.Enricher.batch_bound`; ``None`` for any other batch, whose items are then
    weighed one by one (:meth:`FeedItem.size_bound`).
    """
    first = items[0] if items else None
    if not isinstance(first, PublishedEvent):
        return None
    enricher = first._enricher
    events: list[AgentEvent] = []
    for item in items:
        if type(item) is not PublishedEvent or item._event is None or item._enricher is not enricher:
            return None
        events.append(item._event)
    return enricher.batch_bound(events, sum(map(len, filter(None, map(_agent, items)))))


_agent = operator.attrgetter("agent")


class NoticeItem(FeedItem):
    """A feed notice queued in line with the events (a gap), framed for each format on demand."""

    def __init__(self, seq: int, body: dict[str, object]) -> None:  # no FeedItem.__init__: there is no record
        self.seq = seq
        self.wire_id = None
        self.notes = None
        self._alt = None
        self._data = None
        self._record = None
        self._frame = sse.frame(encode(body), event=sc.FEED_EVENT_MISSED, split_lines=False)
        self._size = len(self._frame)
        self._body = body

    def frame_for(self, fmt: FeedFormat | None) -> bytes:
        return self.frame if fmt is None else fmt.notice(sc.FEED_EVENT_MISSED, self._body)


def frame_item(record: FeedRecord, data: bytes, seq: int, wire_id: WireId | None) -> FeedItem:
    """An event as every subscriber shares it (its canonical frame made on first use); backends build items so."""
    return FeedItem(record, EventKind(record.kind), None, seq, wire_id, data)


class FeedFormat(Protocol):
    """Another wire form of the feed (AG-UI: :mod:`.agui`), plugged in when the feed is built."""

    name: str

    def observe(self, item: FeedItem) -> None:
        """Called for every event in publish order; may note state on ``item.notes``. Must be cheap.

        A format may also have ``observe_batch(items)``, called instead with each published batch
        (a UI form only queues references: one call per batch, not one per event)."""

    def frame(self, item: FeedItem) -> bytes:
        """The SSE frame(s) for one event; called at most once per event."""

    def notice(self, event: str, body: Mapping[str, object]) -> bytes:
        """A feed notice (``missed``, ``lagged``) in this format."""
