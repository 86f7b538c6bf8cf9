"""The feed kept in this process: a bounded ring of framed events (``feed.backend = "memory"``, the default).

Ids are the hub's own sequence numbers: integers that grow by one per event from
the wall-clock microsecond at startup, so every id from an earlier process is
below this one's first and a resume across a restart is recognised
(``restarted``) instead of being misread. The ring is bounded by
``feed.ring_size`` events and ``feed.ring_max_bytes`` framed bytes; a resume from
an id that has left it gets a ``missed`` notice with the count.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from otel_bridge.config import FeedSettings
from otel_bridge.sinks.feed.backend import Backlog, Entry, Gap, GapNotice, MakeItem, Publish, WireId

if TYPE_CHECKING:
    from otel_bridge.sinks.feed.item import FeedItem


class MemoryBackend:
    """A :class:`~.backend.FeedBackend` holding the newest events of this process."""

    def __init__(self, settings: FeedSettings, first_seq: int) -> None:
        self._settings = settings
        self.first_seq = first_seq
        self.ring: deque[FeedItem] = deque()
        self.ring_bytes = 0
        self._newest: int | None = None
        self._publish: Publish | None = None
        self._make_item: MakeItem | None = None

    def bind(self, publish: Publish, make_item: MakeItem, gap: GapNotice) -> None:
        self._publish = publish
        self._make_item = make_item

    def append(self, entries: Sequence[Entry]) -> None:
        make_item, publish = self._make_item, self._publish
        assert make_item is not None, "bind() first"
        assert publish is not None
        items = [make_item(record, data, record.seq, record.seq) for record, data in entries]
        if not items:
            return
        self._keep(items)
        self._newest = items[-1].seq
        publish(items)

    def _keep(self, items: list[FeedItem]) -> None:
        ring = self.ring
        ring.extend(items)
        self.ring_bytes += sum(item.size for item in items)
        limit_n = self._settings.ring_size
        limit_bytes = self._settings.ring_max_bytes
        while len(ring) > limit_n or (self.ring_bytes > limit_bytes and len(ring) > 1):
            self.ring_bytes -= ring.popleft().size

    async def read_from(self, after: int, until: int | None, limit: int) -> Backlog:
        # Never suspends: a caller that awaits it sees the ring as it is now.
        ring = self.ring
        newest = self.first_seq - 1 if self._newest is None else self._newest
        if until is not None:
            newest = min(newest, until)
        oldest = ring[0].seq if ring else newest + 1
        if after >= newest:
            if after == newest:
                return Backlog()
            # From the future: another server, or a clock that went back. Say so and go live.
            return Backlog(gap=Gap("unknown_id", None, oldest))
        gap: Gap | None = None
        start = 0
        if after < self.first_seq - 1:
            gap = Gap("restarted", None, oldest)
        elif after + 1 < oldest:
            gap = Gap("evicted", oldest - after - 1, oldest)
        else:
            start = after + 1 - oldest
        stop = min(start + limit, newest + 1 - oldest)
        return Backlog(list(itertools.islice(ring, start, stop)), gap, more=stop < newest + 1 - oldest)

    @property
    def newest_id(self) -> int | None:
        return self._newest

    def wire_id(self, seq: int) -> WireId:
        return seq

    def parse_id(self, text: str) -> int:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"Last-Event-ID must be an event id from this feed (an integer), got {text!r}") from None

    async def start(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def snapshot(self) -> dict[str, object]:
        return {"backend": "memory", "ring_events": len(self.ring), "ring_bytes": self.ring_bytes}
