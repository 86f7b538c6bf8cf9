"""The memory budget (issue 13, item 6): soft limit refuses, hard limit sheds, recovery resumes.

A fake memory (``read_rss_mb``) crosses the limits deterministically; the guard's
``check`` is called by hand, so no test waits on the sampler's timing. The real
process, pushed past a real budget, is in ``test_limits_sidecar.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from otel_bridge import semconv as sc
from otel_bridge.app import create_app
from otel_bridge.assembly import Pipeline, assemble
from otel_bridge.config import ConfigError, LimitsSettings, Settings, SourceSettings, load_settings
from otel_bridge.limits import MemoryGuard, MemoryState, process_rss_mb
from otel_bridge.model import EventKind
from otel_bridge.pipeline import ListSink
from otel_bridge.sources.manager import SourceManager
from otel_bridge.sources.upstream import UpstreamSource
from otel_bridge.stats import Stats
from tests.conftest import FakeClock
from tests.support.golden import FIXTURES
from tests.support.sse_server import start_capture_server
from tests.test_lifecycle import ev, mapper
from tests.test_upstream_sources import eventually


class FakeMemory:
    """What the guard reads: set ``mb`` by hand. Counts the forced collections asked for."""

    def __init__(self, mb: float = 50.0) -> None:
        self.mb = mb
        self.reclaims = 0

    def read(self) -> float:
        return self.mb

    def reclaim(self) -> None:
        self.reclaims += 1


class Shed:
    def __init__(self, open_runs: int) -> None:
        self.open_runs = open_runs
        self.asked: list[int] = []

    def __call__(self, n: int) -> int:
        self.asked.append(n)
        closed = min(n, self.open_runs)
        self.open_runs -= closed
        return closed


def guard_with(memory: FakeMemory, shed: Shed, stats: Stats, **limits: Any) -> MemoryGuard:
    settings = LimitsSettings(**{"max_memory_mb": 100.0, **limits})
    return MemoryGuard(
        settings,
        stats,
        shed=shed,
        open_runs=lambda: shed.open_runs,
        read_rss_mb=memory.read,
        reclaim=memory.reclaim,
    )


def test_the_soft_limit_defaults_to_the_collectors_20_percent_spike() -> None:
    assert LimitsSettings().max_memory_mb == 0  # no budget unless asked for
    assert LimitsSettings(max_memory_mb=1000).soft_limit_mb == 800
    assert LimitsSettings(max_memory_mb=1000, memory_soft_pct=50).soft_limit_mb == 500


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_memory_mb": -1}, "max_memory_mb must be >= 0"),
        ({"memory_soft_pct": 0}, "memory_soft_pct must be > 0 and <= 100"),
        ({"memory_soft_pct": 120}, "memory_soft_pct must be > 0 and <= 100"),
        ({"check_interval_s": 0}, "check_interval_s must be > 0"),
    ],
)
def test_bad_limits_fail_at_startup(limits: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LimitsSettings(**limits)


def test_the_budget_is_set_from_the_environment() -> None:
    assert load_settings(environ={"OTEL_BRIDGE_MAX_MEMORY_MB": "512"}).limits.max_memory_mb == 512
    with pytest.raises(ConfigError, match="OTEL_BRIDGE_MAX_MEMORY_MB must be MiB"):
        load_settings(environ={"OTEL_BRIDGE_MAX_MEMORY_MB": "lots"})


def test_below_the_soft_limit_everything_is_admitted() -> None:
    memory, shed, stats = FakeMemory(79.9), Shed(10), Stats()
    guard = guard_with(memory, shed, stats)
    assert guard.check() is MemoryState.OK
    assert guard.admit("http")
    assert (guard.reason, stats.memory_refusals, shed.asked, memory.reclaims) == (None, {}, [], 0)


def test_above_the_soft_limit_new_work_is_refused_and_counted() -> None:
    memory, shed, stats = FakeMemory(80.0), Shed(10), Stats()
    guard = guard_with(memory, shed, stats, check_interval_s=0.25)
    assert guard.check() is MemoryState.SOFT
    assert not guard.admit("http")
    assert not guard.admit("http")
    assert stats.memory_refusals == {"http": 2}
    assert guard.retry_after_s == 1  # whole seconds, at least one
    assert guard.reason == "memory 80 MiB is over the soft limit of 80 MiB: refusing new work"
    assert shed.asked == []  # nothing is closed below the hard limit
    assert stats.dropped == {}


def test_above_the_soft_limit_memory_is_reclaimed_on_the_first_check_then_every_fifth() -> None:
    memory, shed, stats = FakeMemory(90.0), Shed(10), Stats()
    guard = guard_with(memory, shed, stats)
    reclaims = []
    for _ in range(11):
        guard.check()
        reclaims.append(memory.reclaims)
    assert reclaims == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]
    memory.mb = 10.0
    guard.check()
    memory.mb = 90.0
    guard.check()  # over again: the first check over reclaims at once
    assert memory.reclaims == 4


def test_above_the_hard_limit_the_oldest_runs_are_shed_a_tenth_per_check() -> None:
    memory, shed, stats = FakeMemory(100.0), Shed(25), Stats()
    guard = guard_with(memory, shed, stats)
    assert guard.check() is MemoryState.HARD
    assert guard.check() is MemoryState.HARD
    assert shed.asked == [3, 3]  # ceil(25 / 10), then ceil(22 / 10)
    assert stats.dropped == {"memory_limit": 6}
    assert guard.runs_shed == 6
    assert memory.reclaims == 2  # after every shed
    assert guard.reason == (
        "memory 100 MiB is over the hard limit of 100 MiB: refusing new work and closing the oldest open runs"
    )
    shed.open_runs = 0
    guard.check()
    assert shed.asked == [3, 3, 1]
    assert stats.dropped == {"memory_limit": 6}  # nothing left to shed


def test_a_reclaim_that_frees_enough_decides_the_check() -> None:
    memory, shed, stats = FakeMemory(85.0), Shed(0), Stats()

    def reclaim() -> None:
        memory.mb = 60.0

    limits = LimitsSettings(max_memory_mb=100)
    guard = MemoryGuard(limits, stats, shed=shed, open_runs=lambda: 0, read_rss_mb=memory.read, reclaim=reclaim)
    assert guard.check() is MemoryState.OK
    assert guard.admit("http")


def test_below_the_soft_limit_again_work_resumes() -> None:
    memory, shed, stats = FakeMemory(100.0), Shed(5), Stats()
    guard = guard_with(memory, shed, stats)
    guard.check()
    memory.mb = 79.0
    assert guard.check() is MemoryState.OK
    assert guard.admit("http")
    assert guard.reason is None
    assert guard.snapshot() == {
        "state": "ok",
        "rss_mb": 79.0,
        "soft_limit_mb": 80.0,
        "hard_limit_mb": 100.0,
        "runs_shed": 1,
    }


async def test_a_source_waiting_to_be_admitted_resumes_when_memory_falls() -> None:
    memory, shed, stats = FakeMemory(90.0), Shed(0), Stats()
    guard = guard_with(memory, shed, stats)
    await guard.wait_admitted("source")  # admitted: returns at once, counts nothing
    assert stats.memory_refusals == {}
    guard.check()
    waiting = asyncio.create_task(guard.wait_admitted("source"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    memory.mb = 10.0
    guard.check()
    await asyncio.wait_for(waiting, 5)
    assert stats.memory_refusals == {"source": 1}


def test_shed_oldest_closes_the_least_recently_active_runs_as_evicted(clock: FakeClock) -> None:
    m, sink, _ = mapper(clock)
    for t, run in enumerate(("a", "b", "c")):
        m.process([ev(EventKind.RUN_STARTED, t, run=run), ev(EventKind.TOOL_STARTED, t, run=run, call_id="x")])
    m.process([ev(EventKind.TOOL_COMPLETED, 5, run="a", call_id="x")])  # "a" is now the most recent
    assert m.shed_oldest(2) == 2
    assert m.open_runs == 1
    roots = [s for s in sink.spans if s.parent_span_id is None]
    assert len(roots) == 2
    assert all(s.attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_EVICTED for s in roots)
    assert {s.attributes[sc.BRIDGE_RUN_ID] for s in roots} == {"b", "c"}
    assert m.shed_oldest(5) == 1
    assert m.shed_oldest(1) == 0


def test_the_real_process_memory_is_read() -> None:
    assert 5 < process_rss_mb() < 100_000


# -- through the app ------------------------------------------------------------------------------------------
Budgeted = tuple[TestClient, Pipeline, FakeMemory, ListSink]


@pytest.fixture
def budgeted() -> Iterator[Budgeted]:
    memory = FakeMemory(10.0)
    sink = ListSink()
    # One check at start; after that the test checks by hand.
    settings = Settings(limits=LimitsSettings(max_memory_mb=100, check_interval_s=3600))
    pipeline = assemble(settings, extra_sinks=[sink], read_rss_mb=memory.read)
    with TestClient(create_app(settings, pipeline)) as client:
        yield client, pipeline, memory, sink


EVENTS = b'{"kind":"run.started","run_id":"r1","timestamp":"2026-11-30T12:00:00Z"}'


def test_ingest_answers_503_with_retry_after_and_health_says_why(
    budgeted: Budgeted,
) -> None:
    client, pipeline, memory, _ = budgeted
    assert pipeline.guard is not None
    memory.mb = 85.0
    pipeline.guard.check()
    refused = client.post("/v1/events", content=EVENTS, headers={"Content-Type": "application/json"})
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "3600"
    assert refused.json() == {
        "error": "memory_limit",
        "message": "memory 85 MiB is over the soft limit of 80 MiB: refusing new work",
    }
    assert pipeline.stats.events_received == 0  # refused, not mapped
    health = client.get("/v1/health").json()
    assert health["status"] == "degraded"
    assert health["reasons"] == ["memory 85 MiB is over the soft limit of 80 MiB: refusing new work"]
    assert health["memory_refusals"] == {"http": 1}
    assert health["memory"]["state"] == "soft"
    metrics = client.get("/metrics").text
    assert 'otel_bridge_memory_refusals_total{where="http"} 1' in metrics

    memory.mb = 50.0
    pipeline.guard.check()
    accepted = client.post("/v1/events", content=EVENTS, headers={"Content-Type": "application/json"})
    assert accepted.status_code == 202, accepted.text
    health = client.get("/v1/health").json()
    assert health["status"] == "ok"
    assert "reasons" not in health


def test_the_openapi_schema_documents_the_503(budgeted: Budgeted) -> None:
    client, _, _, _ = budgeted
    responses = client.get("/openapi.json").json()["paths"]["/v1/events"]["post"]["responses"]
    assert "memory_limit" in responses["503"]["description"]


def test_above_the_hard_limit_the_app_closes_the_oldest_runs(
    budgeted: Budgeted,
) -> None:
    client, pipeline, memory, sink = budgeted
    assert pipeline.guard is not None
    body = b"\n".join(
        msgspec.json.encode({"kind": "run.started", "run_id": f"r{i}", "timestamp": f"2026-11-30T12:00:0{i}Z"})
        for i in range(5)
    )
    assert client.post("/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"}).status_code == 202
    assert pipeline.mapper.open_runs == 5
    memory.mb = 120.0
    pipeline.guard.check()
    assert pipeline.mapper.open_runs == 4
    health = client.get("/v1/health").json()
    assert health["dropped"] == {"memory_limit": 1}
    assert health["memory"]["runs_shed"] == 1
    assert [s.attributes[sc.BRIDGE_RUN_ID] for s in sink.spans] == ["r0"]  # the least recently active
    assert sink.spans[0].attributes[sc.BRIDGE_CLOSE_REASON] == sc.CLOSE_EVICTED


def test_no_budget_means_no_guard() -> None:
    assert assemble(Settings()).guard is None


async def test_a_subscribed_source_pauses_reading_while_refused() -> None:
    upstream = start_capture_server((FIXTURES / "locus" / "weather.sse").read_text())
    assert upstream.server is not None
    memory = FakeMemory(90.0)
    sink = ListSink()
    settings = Settings(limits=LimitsSettings(max_memory_mb=100, check_interval_s=3600))
    pipeline = assemble(settings, extra_sinks=[sink], pricer=None, read_rss_mb=memory.read)
    assert pipeline.guard is not None
    pipeline.guard.check()
    manager = SourceManager(
        pipeline.bridge, [SourceSettings(url=f"{upstream.server.url}/stream", name="agent")], guard=pipeline.guard
    )
    source = manager.sources[0]
    assert isinstance(source, UpstreamSource)
    await manager.start()
    try:
        await eventually(lambda: source.status.connected, what="the connection")
        await asyncio.sleep(0.5)  # the upstream trickles 7-byte chunks: unpaused, frames would arrive now
        assert source.status.frames == 0
        assert pipeline.stats.memory_refusals == {"source": 1}
        memory.mb = 10.0
        pipeline.guard.check()
        await eventually(lambda: source.status.last_event_id == upstream.frames[-1].id, what="every frame")
    finally:
        await manager.shutdown()
        upstream.server.stop()
    assert pipeline.stats.events_received > 0


def test_runs_shed_over_the_hard_limit_are_told_to_the_observers() -> None:
    memory = FakeMemory(10.0)
    settings = Settings(limits=LimitsSettings(max_memory_mb=100, check_interval_s=3600))
    pipeline = assemble(settings, pricer=None, read_rss_mb=memory.read)
    assert pipeline.guard is not None
    seen: list[tuple[str, str]] = []
    pipeline.bridge.add_observer(lambda events, _: seen.extend((e.kind.value, e.original_type) for e in events))
    pipeline.bridge.submit([ev(EventKind.RUN_STARTED, 0, run="held", agent="a")])
    memory.mb = 200.0  # over the hard limit: the oldest open run is closed early
    pipeline.guard.check()
    assert pipeline.mapper.open_runs == 0
    # The feed and the store hear of it (a UI following the run sees it end), as of any run the bridge closes.
    assert seen[-1] == (EventKind.RUN_FAILED.value, sc.RUN_CLOSED_TYPES[sc.CLOSE_EVICTED])
