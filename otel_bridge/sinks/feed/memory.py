"""The feed kept in this process: a bounded ring of published events (``feed.backend = "memory"``, the default).

Ids are the hub's own sequence numbers: integers that grow by one per event from
the wall-clock microsecond at startup, so every id from an earlier process is
below this one's first and a resume across a restart is recognised
(``restarted``) instead of being misread. The ring is bounded by
``feed.ring_size`` events and ``feed.ring_max_bytes`` framed bytes; a resume from
an id that has left it gets a ``missed`` notice with the count.

The ring keeps the hub's items as they are: an event nobody has read is not
framed, so its frame's size is not known. Each counts as a cheap bound on its
size (:meth:`~.item.FeedItem.size_bound`, which also covers the event it holds)
until that sum passes ``ring_max_bytes``; then the exact sizes are made, newest
first, until the sum fits or every size is exact, and only then do the oldest
leave. So the ring holds exactly the events it would hold were every frame made at
once (the longest run of newest events within both bounds), and a feed whose
events are far below the byte bound never frames one to count it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from otel_bridge.config import FeedSettings
from otel_bridge.sinks.feed.backend import Backlog, Gap, GapNotice, MakeItem, Publish, WireId

if TYPE_CHECKING:
    from otel_bridge.sinks.feed.item import FeedItem


class MemoryBackend:
    """A :class:`~.backend.FeedBackend` holding the newest events of this process."""

    def __init__(self, settings: FeedSettings, first_seq: int) -> None:
        self._settings = settings
        self.first_seq = first_seq
        self.ring: deque[FeedItem] = deque()
        self._weights: deque[int] = deque()  # each item's exact frame size, or a bound on it (module docstring)
        self._exact: deque[bool] = deque()  # whether its weight is the exact size
        self._bounds = 0  # weights that are bounds
        self.ring_bytes = 0
        """The sum of ``_weights``: the framed bytes, where an event not framed yet counts as its bound."""
        self._newest: int | None = None
        self._publish: Publish | None = None

    def bind(self, publish: Publish, make_item: MakeItem, gap: GapNotice) -> None:
        self._publish = publish

    def append(self, items: Sequence[FeedItem]) -> None:
        publish = self._publish
        assert publish is not None, "bind() first"
        if not items:
            return
        self._keep(items)
        self._newest = items[-1].seq
        publish(items if isinstance(items, list) else list(items))

    def _keep(self, items: Sequence[FeedItem]) -> None:
        ring, weights, exact = self.ring, self._weights, self._exact
        ring.extend(items)
        for item in items:
            weight = item.size_bound()
            known = item.size_known  # a bound that is the size itself
            weights.append(weight)
            exact.append(known)
            self.ring_bytes += weight
            self._bounds += not known
        limit_n = self._settings.ring_size
        while len(ring) > limit_n:
            self._drop_oldest()
        limit_bytes = self._settings.ring_max_bytes
        if self.ring_bytes > limit_bytes:
            self._make_exact(limit_bytes)
            while self.ring_bytes > limit_bytes and len(ring) > 1:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        self.ring.popleft()
        self.ring_bytes -= self._weights.popleft()
        self._bounds -= not self._exact.popleft()

    def _make_exact(self, limit: int) -> None:
        """Replace bounds by exact sizes, newest first, until the ring fits ``limit`` or every size is exact."""
        ring, weights, exact = self.ring, self._weights, self._exact
        i = len(ring)
        while self._bounds and self.ring_bytes > limit:
            i -= 1
            if exact[i]:
                continue
            size = ring[i].size
            self.ring_bytes += size - weights[i]
            weights[i] = size
            exact[i] = True
            self._bounds -= 1

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
