"""The bridge: the running pipeline every source submits to.

It runs what :func:`otel_bridge.assembly.assemble` built from the settings and
builds nothing itself: it maps each batch (in time order when the events carry
their own times), tells the observers, sweeps timeouts, and starts and stops
the background components in a stated order. A run the mapper closes itself
(idle timeout, eviction, shed, shutdown, end of input) is told to the observers
as one synthetic terminal event on its root span
(:func:`otel_bridge.mapping.closing.close_notice`), so that the store lists it
as ended and a UI response following it ends. All methods run on the event
loop thread; the only background task it owns is the timeout sweeper.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Callable, Sequence

from otel_bridge import semconv as sc
from otel_bridge.aio import cancel_and_wait
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, Placement
from otel_bridge.pipeline import EventObserver, Lifecycle
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

_TIMESTAMP = operator.attrgetter("timestamp_ns")
_FROM_SOURCE = operator.attrgetter("timestamp_from_source")


def in_time_order(events: Sequence[AgentEvent]) -> Sequence[AgentEvent]:
    """A batch whose events all carry their own timestamps is mapped in time order.

    Event logs are often served newest first (OpenIntent's is); mapping them as
    given would end a run before its calls start. A stable sort keeps the
    producer's order for equal times. Arrival-stamped batches keep their order.
    """
    if len(events) > 1 and all(map(_FROM_SOURCE, events)):  # read in C: no generator frame per event
        return sorted(events, key=_TIMESTAMP)
    return events


MIN_SWEEP_S = 0.01
"""The sweeper's shortest sleep between two sweeps while no ended run is due (a grace shorter than this)."""


class Bridge:
    """Events in, spans out: the :class:`~otel_bridge.pipeline.EventConsumer` every source is given.

    ``components`` are started in order and shut down in order after every
    open run is closed, so an exporter still sends the spans that closing
    produced and a metrics push after it counts them.
    """

    def __init__(
        self,
        mapper: SpanMapper,
        stats: Stats,
        *,
        sweep_interval_s: float,
        observers: Sequence[EventObserver] = (),
        components: Sequence[Lifecycle] = (),
        prepare: Callable[[Sequence[AgentEvent]], Sequence[AgentEvent]] | None = None,
    ) -> None:
        self.mapper = mapper
        # Applied to every batch before the mapper and the observers see it (redaction).
        self._prepare = prepare
        self.stats = stats
        self._sweep_interval_s = sweep_interval_s
        self._observers: list[EventObserver] = list(observers)
        self._components = tuple(components)
        self._sweeper: asyncio.Task[None] | None = None
        mapper.report_closes()
        self._closed = mapper.closed_runs  # tested after each batch: nothing else on the hot path

    def add_observer(self, observer: EventObserver) -> None:
        """One more observer, called after those given at assembly."""
        self._observers.append(observer)

    def submit(self, events: Sequence[AgentEvent]) -> list[tuple[AgentEvent, Placement]]:
        """Map a batch now; spans that finish go to the sinks before this returns."""
        if not events:
            return []
        ordered = in_time_order(events if self._prepare is None else self._prepare(events))
        self.stats.events_received += len(ordered)
        placements = self.mapper.process(ordered)
        self._tell(ordered, placements)
        if self._closed:  # runs a bound evicted while mapping
            self._tell_closed()
        return list(zip(ordered, placements, strict=True))

    def _tell(self, events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
        for observer in self._observers:
            try:
                observer(events, placements)
            except Exception:  # an observer must never break ingest
                log.exception("event observer failed")

    def _tell_closed(self) -> None:
        """The observers get a terminal event for each run the mapper closed without its producer's end."""
        closed = self.mapper.take_closed()
        if closed:
            events, placements = zip(*closed, strict=True)
            self._tell(events, placements)

    def reject(self, reason: str, n: int = 1) -> None:
        """Count ``n`` inputs rejected for ``reason``."""
        self.stats.reject(reason, n)

    def close_all(self, reason: str) -> None:
        """Close every open run now; its spans go to the sinks before this returns."""
        self.mapper.close_all(reason)
        self._tell_closed()

    def sweep(self) -> None:
        """Close what timed out now (the sweeper does this every ``sweep_interval_s``)."""
        self.mapper.sweep()
        self._tell_closed()

    def shed_oldest(self, n: int) -> int:
        """Close the ``n`` least recently active open runs now (the observers are told); returns how many."""
        shed = self.mapper.shed_oldest(n)
        self._tell_closed()
        return shed

    async def start(self) -> None:
        for component in self._components:
            await component.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="span-timeouts")

    def _next_sweep_in(self) -> float:
        """Every ``sweep_interval_s``, or sooner when an ended run's grace is over, so that its root span
        is exported then, not up to a whole interval later. Never longer than the grace itself: a run that
        ends while the sweeper sleeps is then never due before it wakes (nor more than :data:`MIN_SWEEP_S` after
        it is due, where the grace is shorter than that)."""
        delay = self._sweep_interval_s
        grace = self.mapper.end_grace_s  # 0: a run ends with its batch (the mapper closes it), nothing to wait for
        if 0 < grace < delay:
            delay = max(grace, MIN_SWEEP_S)
        end_in = self.mapper.next_end_in()
        if end_in is not None and end_in < delay:
            delay = end_in
        return delay

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._next_sweep_in())
            try:
                self.sweep()
            except Exception:
                log.exception("timeout sweep failed")

    async def shutdown(self) -> None:
        """Close every open run (status says why), then stop the components in order. Safe without ``start``."""
        await cancel_and_wait(self._sweeper)
        self._sweeper = None
        self.mapper.close_all(sc.CLOSE_SHUTDOWN)
        self._tell_closed()  # before the feed stops: a UI following a run still open gets its end
        for component in self._components:
            await component.shutdown()
