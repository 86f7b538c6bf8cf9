"""The one interface between stages: what each stage may call on the next.

Sources hand decoded events to an :class:`EventConsumer` (the running bridge),
never to the bridge itself; the mapper hands finished spans to a
:class:`SpanSink`; whoever wants each mapped batch with its placements is an
:class:`EventObserver`; anything with background work is a :class:`Lifecycle`.
Sources, mapping and sinks import this module and nothing of one another, so
every stage can be tested with an in-memory next stage (:class:`ListSink`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from otel_bridge.model import AgentEvent, Placement, SpanRecord
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

SINK_FAILED = "sink_failed:"
"""Drop reason prefix, followed by the sink's name: the spans a raising sink may have lost."""


class EventConsumer(Protocol):
    """What a source gives its events to (the bridge). Called on the event loop thread only."""

    def submit(self, events: Sequence[AgentEvent]) -> list[tuple[AgentEvent, Placement]]:
        """Map a batch now and say where each event landed."""
        ...

    def reject(self, reason: str, n: int = 1) -> None:
        """Count ``n`` inputs rejected for ``reason`` (bad frames, bodies, log entries)."""
        ...

    def close_all(self, reason: str) -> None:
        """End every open run now (``reason`` becomes the close reason): the end of a replayed input."""
        ...


class SpanSink(Protocol):
    """Takes finished spans. Must not block and must not raise into the caller."""

    def consume(self, spans: Sequence[SpanRecord]) -> None: ...


EventObserver = Callable[[Sequence[AgentEvent], Sequence[Placement]], None]
"""Called after each mapped batch with the events and where each landed (the store, the live feed).

Also called with the terminal event of each run the bridge closed itself (timeout, eviction, shutdown,
end of input): a synthesised ``run.finished`` / ``run.failed`` on the run's root span
(:func:`otel_bridge.mapping.closing.close_notice`), so every run an observer saw start also ends for it.
"""


class Lifecycle(Protocol):
    """A component with background work. ``shutdown`` is safe even if ``start`` never ran."""

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


class SpanExporter(SpanSink, Lifecycle, Protocol):
    """A sink that sends spans elsewhere in the background, and says how it is doing (``/v1/health``)."""

    @property
    def queue_depth(self) -> int:
        """Spans taken but not yet sent."""
        ...

    @property
    def last_error(self) -> str | None:
        """Why the last send failed; ``None`` once one succeeds again."""
        ...

    @property
    def encoder(self) -> str:
        """Which encoder writes the requests, and where (native or pure; the sidecar or its worker)."""
        ...


class ListSink:
    """In-memory sink for tests and for ``replay``: keeps every span it is given."""

    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self.spans.extend(spans)


class FanoutSink:
    """Gives the same spans to several named sinks, each guarded from the others.

    A sink that raises breaks its own contract; the others still get every
    span, the batch is counted as dropped for that sink
    (``sink_failed:<name>``), and the first failure of each sink is logged
    with its traceback (later ones are only counted: a broken sink must not
    flood the log at ingest rate).
    """

    def __init__(self, sinks: Mapping[str, SpanSink], stats: Stats) -> None:
        self._sinks = tuple(sinks.items())
        self._stats = stats
        self._logged: set[str] = set()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._sinks)

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        for name, sink in self._sinks:
            try:
                sink.consume(spans)
            except Exception:
                self._stats.drop(SINK_FAILED + name, len(spans))
                if name not in self._logged:
                    self._logged.add(name)
                    log.exception("span sink %s failed; its failures are counted as %s%s", name, SINK_FAILED, name)
