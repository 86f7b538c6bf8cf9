"""The Bridge as the running pipeline: order of a batch, observers, rejections, start and shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from otel_bridge import semconv as sc
from otel_bridge.bridge import Bridge
from otel_bridge.config import MappingSettings
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind, Placement
from otel_bridge.pipeline import EventConsumer, EventObserver, Lifecycle, ListSink
from otel_bridge.stats import Stats
from tests.conftest import FakeClock

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def ev(kind: EventKind, t_ms: int, *, own_time: bool = True, **fields: Any) -> AgentEvent:
    return AgentEvent(
        kind=kind, run_id="r", timestamp_ns=T0 + t_ms * MS, timestamp_from_source=own_time, dialect="test",
        original_type=f"{kind}@{t_ms}", **fields,
    )  # fmt: skip


def bridge_with(
    clock: FakeClock, *, observers: Sequence[EventObserver] = (), components: Sequence[Lifecycle] = ()
) -> tuple[Bridge, ListSink, Stats]:
    sink, stats = ListSink(), Stats()
    mapper = SpanMapper(MappingSettings(), sink, stats, clock=clock.monotonic)
    bridge = Bridge(mapper, stats, sweep_interval_s=60.0, observers=observers, components=components)
    return bridge, sink, stats


class Component:
    """A lifecycle component that records what it saw, into a shared journal."""

    def __init__(self, name: str, journal: list[str], sink: ListSink | None = None) -> None:
        self.name, self.journal, self.sink = name, journal, sink

    async def start(self) -> None:
        self.journal.append(f"start {self.name}")

    async def shutdown(self) -> None:
        spans = len(self.sink.spans) if self.sink is not None else 0
        self.journal.append(f"shutdown {self.name} after {spans} spans")


def test_the_bridge_is_an_event_consumer(clock: FakeClock) -> None:
    bridge, _, _ = bridge_with(clock)
    consumer: EventConsumer = bridge  # mypy checks the protocol
    assert consumer.submit([]) == []


def test_a_batch_with_its_own_times_is_mapped_oldest_first_and_equal_times_keep_their_order(clock: FakeClock) -> None:
    bridge, _, stats = bridge_with(clock)
    batch = [
        ev(EventKind.LLM_COMPLETED, 50, call_id="c", model="m"),
        ev(EventKind.LLM_STARTED, 10, call_id="c", model="m"),
        ev(EventKind.RUN_STARTED, 0),
        ev(EventKind.STEP_STARTED, 10, name="second at 10"),
    ]
    pairs = bridge.submit(batch)
    assert [e for e, _ in pairs] == [batch[2], batch[1], batch[3], batch[0]]
    assert stats.events_received == 4


def test_an_arrival_stamped_batch_keeps_the_producers_order(clock: FakeClock) -> None:
    bridge, _, _ = bridge_with(clock)
    batch = [ev(EventKind.RUN_STARTED, 5, own_time=False), ev(EventKind.STEP_STARTED, 1, own_time=False, name="s")]
    assert [e for e, _ in bridge.submit(batch)] == batch


def test_observers_see_each_batch_in_order_and_a_failing_one_breaks_nothing(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, list[str], int]] = []

    def observer(name: str) -> EventObserver:
        def observe(events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
            seen.append((name, [e.original_type for e in events], len(placements)))

        return observe

    def failing(events: Sequence[AgentEvent], placements: Sequence[Placement]) -> None:
        raise RuntimeError("observer bug")

    bridge, sink, _ = bridge_with(clock, observers=[observer("first"), failing])
    bridge.add_observer(observer("added"))
    with caplog.at_level(logging.ERROR, logger="otel_bridge.bridge"):
        pairs = bridge.submit([ev(EventKind.LLM_COMPLETED, 5, call_id="c", model="m")])
        bridge.submit([])  # an empty batch is not observed
    assert len(pairs) == 1
    assert len(sink.spans) == 1  # the span went out despite the observer
    assert seen == [("first", ["llm.completed@5"], 1), ("added", ["llm.completed@5"], 1)]
    assert [r.getMessage() for r in caplog.records] == ["event observer failed"]


def test_rejections_are_counted_by_reason(clock: FakeClock) -> None:
    bridge, _, stats = bridge_with(clock)
    bridge.reject("invalid_json")
    bridge.reject("invalid_json", 2)
    bridge.reject("undecodable")
    assert stats.events_rejected == {"invalid_json": 3, "undecodable": 1}


def test_close_all_ends_every_open_run_with_the_reason(clock: FakeClock) -> None:
    bridge, sink, _ = bridge_with(clock)
    bridge.submit([ev(EventKind.RUN_STARTED, 0, agent="a")])
    assert sink.spans == []
    bridge.close_all(sc.CLOSE_END_OF_INPUT)
    (root,) = sink.spans
    assert root.attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_END_OF_INPUT
    assert bridge.mapper.open_runs == 0


async def test_shutdown_closes_the_runs_before_the_components_stop_in_order(clock: FakeClock) -> None:
    journal: list[str] = []
    sink_seen = ListSink()
    components = [Component("exporter", journal, sink_seen), Component("metrics push", journal, sink_seen)]
    stats = Stats()
    mapper = SpanMapper(MappingSettings(), sink_seen, stats, clock=clock.monotonic)
    bridge = Bridge(mapper, stats, sweep_interval_s=60.0, components=components)
    await bridge.start()
    bridge.submit([ev(EventKind.RUN_STARTED, 0)])
    await bridge.shutdown()
    assert journal == [
        "start exporter",
        "start metrics push",
        "shutdown exporter after 1 spans",  # the run closed at shutdown was already handed on
        "shutdown metrics push after 1 spans",
    ]
    assert sink_seen.spans[0].attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_SHUTDOWN


async def test_shutdown_is_safe_when_start_never_ran(clock: FakeClock) -> None:
    journal: list[str] = []
    bridge, _, _ = bridge_with(clock, components=[Component("exporter", journal)])
    await bridge.shutdown()
    await bridge.shutdown()  # and twice
    assert journal == ["shutdown exporter after 0 spans", "shutdown exporter after 0 spans"]


async def test_the_sweeper_closes_idle_runs_while_the_bridge_runs(clock: FakeClock) -> None:
    sink, stats = ListSink(), Stats()
    mapper = SpanMapper(MappingSettings(run_idle_timeout_s=10.0), sink, stats, clock=clock.monotonic)
    bridge = Bridge(mapper, stats, sweep_interval_s=0.01)
    await bridge.start()
    try:
        bridge.submit([ev(EventKind.RUN_STARTED, 0)])
        clock.now = 11.0
        for _ in range(500):
            if sink.spans:
                break
            await asyncio.sleep(0.01)
    finally:
        await bridge.shutdown()
    (root,) = sink.spans
    assert root.attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_IDLE


async def test_the_sweeper_wakes_when_a_grace_is_over_not_a_whole_interval_later() -> None:
    # Real time: a grace of 0.1 s under a sweep interval of 60 s; the root span is out while the bridge runs.
    sink, stats = ListSink(), Stats()
    mapper = SpanMapper(MappingSettings(run_end_grace_s=0.1), sink, stats)
    bridge = Bridge(mapper, stats, sweep_interval_s=60.0)
    await bridge.start()
    try:
        await asyncio.sleep(0.05)  # the sweeper is asleep when the run ends
        bridge.submit([ev(EventKind.RUN_STARTED, 0), ev(EventKind.RUN_FINISHED, 10)])
        assert sink.spans == []
        for _ in range(100):
            if sink.spans:
                break
            await asyncio.sleep(0.01)
        (root,) = sink.spans  # before shutdown, which would close it too
    finally:
        await bridge.shutdown()
    assert sc.BRIDGE_CLOSE_REASON not in root.attributes  # ended by its producer
