"""Where the feed's events are kept in order: the seam between the hub and its storage.

The hub (:mod:`.hub`) hands each published event to a :class:`FeedBackend` as a
:class:`~.item.FeedItem` that enriches, encodes and frames itself on first use; the
backend gives every event its place in the order (its id) and hands the items back
to the hub's ``publish``, which fans them out to the subscribers. The in-process
ring keeps the very items (nothing is encoded until read); a shared backend encodes
each to store it and builds new items from what it reads back. A resume (``Last-Event-ID``)
and a lagging subscriber's resync read from the backend with :meth:`read_from`.

Two implementations: :class:`~.memory.MemoryBackend`, a bounded ring in this
process (ids are integers from the startup microsecond), and
:class:`~.redis_backend.RedisBackend`, one Redis stream shared by a fleet of
sidecars (ids are the stream's ids, so a resume works on any sidecar).

Ids inside the process are integers that grow with the order; each backend says
how one is written on the wire (:meth:`FeedBackend.wire_id`) and read back
(:meth:`FeedBackend.parse_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from otel_bridge.sinks.feed.item import FeedItem
    from otel_bridge.sinks.feed.record import FeedRecord

WireId = int | str
"""An event id as the SSE ``id:`` line and the notices write it."""

MakeItem = Callable[["FeedRecord", bytes, int, "WireId | None"], "FeedItem"]
"""The hub's framing: ``(record, data, seq, wire id)`` to a framed item (``None``: a frame with no ``id:``)."""

Publish = Callable[[list["FeedItem"]], None]
"""The hub's fan-out: items in order, to every subscriber. Never awaits."""

GapNotice = Callable[[str], None]
"""The hub's notice to every subscriber that events may be missing from here on (the reason)."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Why a read cannot give everything after the id asked for (the ``missed`` notice's body)."""

    reason: str
    """``evicted`` (trimmed away), ``restarted`` (an id from before this process), ``unknown_id``, ``unavailable``."""
    missed: int | None
    """How many are missing, when the backend can tell."""
    oldest: WireId | None
    """The oldest id still kept."""


@dataclass(slots=True)
class Backlog:
    """What one :meth:`FeedBackend.read_from` found, oldest first."""

    items: list[FeedItem] = field(default_factory=list)
    gap: Gap | None = None
    """Said before the items, when some are missing."""
    more: bool = False
    """A full page: read again after the last item."""
    skip_through: int | None = None
    """The id asked for is valid but newer than anything published here yet (another sidecar's read is
    ahead of ours): live events up to it are skipped rather than repeated."""


class FeedBackend(Protocol):
    """The feed's storage and order. All methods run on the event loop thread."""

    def bind(self, publish: Publish, make_item: MakeItem, gap: GapNotice) -> None:
        """The hub's callbacks; called once, before anything is appended."""

    def append(self, items: Sequence[FeedItem]) -> None:
        """Add events in order (ids from the hub's sequence; ``item.data`` is the encoded record, made on
        first use). Never awaits and never blocks the ingest path."""

    async def read_from(self, after: int, until: int | None, limit: int) -> Backlog:
        """Up to ``limit`` events with ids in ``(after, until]`` (``until`` ``None``: no upper bound)."""

    @property
    def newest_id(self) -> int | None:
        """The id of the last event handed to ``publish`` (``None`` before any)."""

    def wire_id(self, seq: int) -> WireId:
        """How id ``seq`` is written on the wire."""

    def parse_id(self, text: str) -> int:
        """An id from the wire (``Last-Event-ID``); ``ValueError`` with a message for one this feed never wrote."""

    async def start(self) -> None:
        """Start background work (connections, read loops)."""

    async def shutdown(self) -> None:
        """Stop it; safe if never started."""

    def snapshot(self) -> dict[str, object]:
        """Counters for ``/v1/health``."""
