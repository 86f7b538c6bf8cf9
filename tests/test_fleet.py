"""A fleet of real sidecars (``otel-bridge serve`` subprocesses) and a feed-only process on one real Redis.

Every process runs ``fleet/otel-bridge.toml`` (the file docker-compose's ``fleet`` profile mounts) against a
``redis-server`` the test starts on a free loopback port. What is checked is what a UI sees: every event once,
in the stream's order, wherever it connects and reconnects, through a sidecar kill and a Redis restart.
"""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.fleet import FleetProcess, Received, Subscriber
from tests.support.live import post, wait_for
from tests.support.redis_server import REDIS_BIN, SKIP_REASON, RedisServer

pytestmark = pytest.mark.skipif(REDIS_BIN is None, reason=SKIP_REASON)
STREAM = "otel-bridge:feed"  # fleet/otel-bridge.toml


@pytest.fixture
def fleet(tmp_path: pathlib.Path) -> Iterator[Callable[..., Any]]:
    """``fleet(redis)`` -> (sidecars, feed process); everything is stopped afterwards."""
    started: list[FleetProcess] = []

    def start(redis: RedisServer, sidecars: int = 3) -> tuple[list[FleetProcess], FleetProcess]:
        procs = [FleetProcess("serve", redis.url, tmp_path / f"sidecar-{i}.log", wait=False) for i in range(sidecars)]
        feed = FleetProcess("feed", redis.url, tmp_path / "feed.log", wait=False)
        started.extend([*procs, feed])
        for proc in started:  # launched together: startup is most of these tests' time
            proc.wait_ready()
        return procs, feed

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture
def redis_server(tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", appendonly=True)
    try:
        yield server
    finally:
        server.stop()


def run_events(agent: str, run: int, n: int) -> list[dict[str, object]]:
    """One run of ``agent``: started, ``n`` progress events, finished; every event named uniquely."""
    run_id = f"{agent}-run{run}"
    events: list[dict[str, object]] = [{"kind": "run.started", "run_id": run_id, "agent": agent, "name": f"{run_id}:s"}]
    events += [{"kind": "progress", "run_id": run_id, "agent": agent, "name": f"{run_id}:{i}"} for i in range(n)]
    events.append({"kind": "run.finished", "run_id": run_id, "agent": agent, "name": f"{run_id}:f"})
    return events


def ingest(sidecar: FleetProcess, agent: str, runs: range, n: int = 8) -> list[str]:
    """Post ``runs`` of ``agent`` to ``sidecar``, one run per request; the names posted, in order."""
    names: list[str] = []
    for run in runs:
        events = run_events(agent, run, n)
        response = post(sidecar.url, events)
        assert response.status_code == 202, response.text
        names += [str(e["name"]) for e in events]
    return names


def in_parallel(*jobs: Callable[[], list[str]]) -> list[list[str]]:
    results: list[list[str]] = [[] for _ in jobs]

    def run(i: int) -> None:
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def stream_ids(redis: RedisServer) -> list[str]:
    client = redis.client()
    try:
        return [eid.decode() for eid, _ in client.xrange(STREAM)]
    finally:
        client.close()


def names_of(events: list[Received]) -> list[str]:
    return [str(e.data["name"]) for e in events]


def key(stream_id: str) -> tuple[int, int]:
    ms, _, n = stream_id.partition("-")
    return int(ms), int(n)


def assert_in_stream_order(events: list[Received]) -> None:
    ids = [e.id for e in events]
    assert None not in ids
    assert [key(i) for i in ids if i] == sorted({key(i) for i in ids if i}), "ids out of order or repeated"


def test_three_sidecars_one_feed_process_every_event_once_in_stream_order(
    redis_server: RedisServer, fleet: Callable[..., Any]
) -> None:
    sidecars, feed = fleet(redis_server)
    total = 3 * 6 * 10
    subscriber = Subscriber(feed.url, until=total)
    subscriber.start()
    assert subscriber.connected.wait(10)
    posted = in_parallel(*(lambda s=s, a=a: ingest(s, a, range(6)) for s, a in zip(sidecars, "ABC", strict=True)))
    events = subscriber.result()
    got = names_of(events)
    assert sorted(got) == sorted(name for names in posted for name in names)  # every event, once
    assert_in_stream_order(events)
    assert [e.id for e in events] == stream_ids(redis_server)  # the stream's ids, in its order, nothing else
    for names in posted:  # each agent's events in the order its sidecar took them
        mine = set(names)
        assert [n for n in got if n in mine] == names
    # The feed process ingests nothing and exports nothing.
    assert httpx.post(feed.url + "/v1/events", json={"kind": "progress", "run_id": "x"}).status_code in (404, 405)
    assert feed.health()["status"] == "ok"
    # It keeps no traces, and says so where the viewer asks for them (not a bare 404).
    for path in ("/v1/traces", "/v1/traces/" + "ab" * 16):
        traces = httpx.get(feed.url + path)
        assert (traces.status_code, traces.json()["error"]) == (404, "store_disabled")
        assert "feed-only process" in traces.json()["message"]


def test_a_killed_sidecar_and_a_dropped_subscriber_resume_without_loss_or_duplicates(
    redis_server: RedisServer, fleet: Callable[..., Any]
) -> None:
    sidecars, feed = fleet(redis_server)
    phase1 = in_parallel(*(lambda s=s, a=a: ingest(s, a, range(3)) for s, a in zip(sidecars, "ABC", strict=True)))
    n1 = sum(len(names) for names in phase1)
    first = Subscriber(feed.url, until=n1 // 2, last_event_id="0")  # from what the stream keeps, then it drops
    first.start()
    seen = first.result()
    wait_for(lambda: len(stream_ids(redis_server)) == n1, what="phase 1 in the stream")

    sidecars[0].kill()  # SIGKILL mid-stream: nothing is left in its buffer (all of phase 1 is in the stream)
    sidecars[0].start()  # the same port, a new process
    phase2 = in_parallel(*(lambda s=s, a=a: ingest(s, a, range(3, 6)) for s, a in zip(sidecars, "ABC", strict=True)))
    n2 = sum(len(names) for names in phase2)

    # The subscriber comes back on another process (a sidecar this time), from its last id.
    rest = Subscriber(sidecars[1].url, until=n1 - len(seen) + n2, last_event_id=seen[-1].id)
    rest.start()
    resumed = rest.result()
    assert rest.notices == []
    whole = seen + resumed
    assert_in_stream_order(whole)
    assert [e.id for e in whole] == stream_ids(redis_server)
    assert sorted(names_of(whole)) == sorted(n for names in phase1 + phase2 for n in names)


def test_redis_restarted_mid_load_ingest_keeps_answering_the_gap_is_marked_and_resume_works(
    redis_server: RedisServer, fleet: Callable[..., Any]
) -> None:
    sidecars, feed = fleet(redis_server, sidecars=2)
    runs, per_run = 40, 8
    total = 2 * runs * (per_run + 2)
    watcher = Subscriber(sidecars[0].url, until=total)
    watcher.start()
    assert watcher.connected.wait(10)
    slowest: list[float] = []
    degraded: list[object] = []

    def load(sidecar: FleetProcess, agent: str) -> list[str]:
        names: list[str] = []
        for run in range(runs):
            started = time.perf_counter()
            names += ingest(sidecar, agent, range(run, run + 1), per_run)
            slowest.append(time.perf_counter() - started)
            time.sleep(0.05)
        return names

    def outage() -> list[str]:
        time.sleep(0.6)
        redis_server.stop()  # SIGTERM: a clean shutdown, the AOF complete
        wait_for(lambda: sidecars[0].health()["status"] == "degraded", what="the sidecar to say so")
        degraded.append(sidecars[0].health()["reasons"])
        time.sleep(0.8)
        redis_server.start()
        return []

    posted = in_parallel(lambda: load(sidecars[0], "A"), lambda: load(sidecars[1], "B"), outage)
    all_names = sorted(n for names in posted for n in names)
    assert max(slowest) < 2.0  # ingest never waited on Redis
    assert "live feed: Redis unavailable" in str(degraded)

    # The sidecar's subscriber: the gap marked once, then every event once (its own during the outage at once).
    events = watcher.result()
    assert watcher.notices
    assert {n.data["reason"] for n in watcher.notices} == {"unavailable"}
    assert sorted(names_of(events)) == all_names
    before_gap = [e for e in watcher.received[: watcher.received.index(watcher.notices[0])] if e.id]

    wait_for(lambda: all(s.health()["feed"]["buffered"] == 0 for s in sidecars), what="the buffers to drain")
    for sidecar in sidecars:
        assert sidecar.health()["feed"]["not_appended"] == 0
        assert sidecar.health()["status"] == "ok"
    # Ids from before the restart still resume (AOF), on the feed process: the rest of the stream, once each.
    ids = stream_ids(redis_server)
    assert len(ids) == total
    resume = Subscriber(feed.url, until=total - len(before_gap), last_event_id=before_gap[-1].id)
    resume.start()
    resumed = resume.result()
    assert [e.id for e in resumed] == ids[len(before_gap) :]
    assert sorted(names_of(before_gap) + names_of(resumed)) == all_names
