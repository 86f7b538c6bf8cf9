"""The feed kept in this process: a bounded ring of published events (``feed.backend = "memory"``, the default).

Ids are the hub's own sequence numbers: integers that grow by one per event from
the wall-clock microsecond at startup, so every id from an earlier process is
below this one's first and a resume across a restart is recognised
(``restarted``) instead of being misread. The ring is bounded by
``feed.ring_size`` events and ``feed.ring_max_bytes`` framed bytes; a resume from
an id that has left it gets a ``missed`` notice with the count.

The ring keeps the hub's items as they are: an event nobody has read is not
framed, so its frame's size is not known. Each published batch counts as one
cheap bound on its frames' sizes, which also covers the events it holds (the
events encoded as one JSON array: :func:`~.item.batch_bound`; an item of any
other kind, its own :meth:`~.item.FeedItem.size_bound`), until the sum passes
``ring_max_bytes``; then the exact sizes are made, newest first, until the sum
fits or every size is exact, and only then do the oldest leave. So the ring
holds exactly the events it would hold were every frame made at once (the
longest run of newest events within both bounds), and a feed whose events are
far below the byte bound never frames one to count it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from otel_bridge.config import FeedSettings
from otel_bridge.sinks.feed.backend import Backlog, Gap, GapNotice, MakeItem, Publish, WireId
from otel_bridge.sinks.feed.item import batch_bound

if TYPE_CHECKING:
    from otel_bridge.sinks.feed.item import FeedItem


class _Span:
    """A run of consecutive ring items and their weight: a bound on their frames, or their exact sizes' sum."""

    __slots__ = ("count", "exact", "weight")

    def __init__(self, count: int, weight: int, exact: bool) -> None:
        self.count = count
        self.weight = weight
        self.exact = exact


class MemoryBackend:
    """A :class:`~.backend.FeedBackend` holding the newest events of this process."""

    def __init__(self, settings: FeedSettings, first_seq: int) -> None:
        self._settings = settings
        self.first_seq = first_seq
        self.ring: deque[FeedItem] = deque()
        # The ring's items in runs, oldest first: a published batch weighed at once by a bound, or one
        # item weighed exactly (module docstring). An exact run is always one item.
        self._spans: deque[_Span] = deque()
        self._bounds = 0  # runs weighed by a bound
        self.ring_bytes = 0
        """The sum of the runs' weights: the framed bytes, where events not framed yet count as their bound."""
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
        ring, spans = self.ring, self._spans
        ring.extend(items)
        bound = batch_bound(items)
        if bound is not None:
            spans.append(_Span(len(items), bound, False))
            self.ring_bytes += bound
            self._bounds += 1
        else:
            for item in items:
                known = item.size_known  # a bound that is the size itself
                weight = item.size_bound()
                spans.append(_Span(1, weight, known))
                self.ring_bytes += weight
                self._bounds += not known
        over = len(ring) - self._settings.ring_size
        if over > 0:
            self._drop_oldest(over)
        limit_bytes = self._settings.ring_max_bytes
        if self.ring_bytes > limit_bytes:
            self._make_exact(limit_bytes)
            while self.ring_bytes > limit_bytes and len(ring) > 1:
                self._drop_oldest(1)

    def _drop_oldest(self, n: int) -> None:
        """The ``n`` oldest items leave; a run they only partly leave keeps its bound (it covered them all)."""
        ring, spans = self.ring, self._spans
        for _ in range(n):
            ring.popleft()
        while n:
            span = spans[0]
            if span.count > n:
                span.count -= n
                return
            n -= span.count
            spans.popleft()
            self.ring_bytes -= span.weight
            self._bounds -= not span.exact

    def _make_exact(self, limit: int) -> None:
        """Weigh runs exactly, newest first, until the ring fits ``limit`` or every weight is exact.

        A run weighed by a bound becomes one exact run per item. Weighing the whole of a run where the
        newest part would have done keeps the same events: exact sizes never exceed the bound.
        """
        ring, spans = self.ring, self._spans
        done: list[_Span] = []  # the newest runs, taken off the right, exact now
        end = len(ring)  # the ring index after the run at hand
        while self._bounds and self.ring_bytes > limit:
            span = spans.pop()
            start = end - span.count
            if span.exact:
                done.append(span)
            else:
                self.ring_bytes -= span.weight
                self._bounds -= 1
                for i in range(end - 1, start - 1, -1):
                    size = ring[i].size
                    self.ring_bytes += size
                    done.append(_Span(1, size, True))
            end = start
        spans.extend(reversed(done))

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
