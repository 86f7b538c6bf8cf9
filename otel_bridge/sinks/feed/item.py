"""One published event as the feed keeps it, and the other wire forms' interface.

A :class:`FeedItem` holds an event's filter keys, its encoded record and its canonical SSE
frame (made on first read, then shared by every subscriber); other formats' frames are made
once, on demand (:meth:`FeedItem.frame_for`). A :class:`NoticeItem` is a ``missed`` notice
queued in line with the events. Backends build items with :func:`frame_item`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from otel_bridge import semconv as sc
from otel_bridge.model import EventKind
from otel_bridge.sinks.feed import sse
from otel_bridge.sinks.feed.backend import WireId
from otel_bridge.sinks.feed.record import FeedRecord, encode


class FeedItem:
    """One published event: its filter keys, its canonical SSE frame, and other formats' frames on demand.

    ``seq`` is its place in the backend's order; ``wire_id`` is how its ``id:`` line writes that
    (``None``: no ``id:`` line, an event served while the shared backend was away). The canonical
    frame is made from the encoded record on first use (a subscriber, a resume), so a feed nobody
    reads does not frame its events; ``size`` is that frame's length, known without making it.
    """

    __slots__ = (
        "_alt",
        "_data",
        "_frame",
        "agent",
        "dialect",
        "kind",
        "notes",
        "record",
        "run_id",
        "seq",
        "size",
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
        self.seq = record.seq if seq is None else seq
        self.wire_id: WireId | None = self.seq if wire_id == -1 else wire_id
        self.kind = kind
        self.run_id = record.run_id
        self.thread_id = record.conversation_id or record.run_id  # the hub sets the run's remembered one
        self.agent = record.agent
        self.dialect = record.dialect
        self.source = record.source
        self.record = record
        self._frame = frame
        self._data = data
        if frame is not None:
            self.size = len(frame)
        elif data is not None:
            self.size = sse.frame_size(len(data), event=kind.value, event_id=self.wire_id)
        else:
            raise ValueError("a feed item needs its frame or its encoded record")
        self.notes: dict[str, object] | None = None  # per-format state noted at publish time
        self._alt: dict[str, bytes] | None = None

    @property
    def frame(self) -> bytes:
        """The canonical SSE frame, made once and then shared by every subscriber."""
        frame = self._frame
        if frame is None:
            assert self._data is not None
            frame = self._frame = sse.frame(self._data, event=self.kind.value, event_id=self.wire_id, split_lines=False)
            self._data = None
        return frame

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


class NoticeItem(FeedItem):
    """A feed notice queued in line with the events (a gap), framed for each format on demand."""

    def __init__(self, seq: int, body: dict[str, object]) -> None:  # no FeedItem.__init__: there is no record
        self.seq = seq
        self.wire_id = None
        self.notes = None
        self._alt = None
        self._data = None
        self._frame = sse.frame(encode(body), event=sc.FEED_EVENT_MISSED, split_lines=False)
        self.size = len(self._frame)
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
        """Called for every event in publish order; may note state on ``item.notes``. Must be cheap."""

    def frame(self, item: FeedItem) -> bytes:
        """The SSE frame(s) for one event; called at most once per event."""

    def notice(self, event: str, body: Mapping[str, object]) -> bytes:
        """A feed notice (``missed``, ``lagged``) in this format."""
