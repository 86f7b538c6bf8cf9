"""A frozen and a slow subscriber do not slow ingest or the other subscribers, and memory stays bounded."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from otel_bridge.config import Settings
from tests.support.live import LiveServer, RawSubscriber, post, sse, wait_for

QUEUE = 100
RING = 1_000
PHASE = 6_000  # ~6 MB of frames: more than a frozen socket's kernel buffers hold
BATCH = 100
PAD = "x" * 800  # ~1 KB per feed event


@pytest.fixture
def server() -> Iterator[LiveServer]:
    live = LiveServer(
        # The send timeout cuts the frozen subscriber. 10 s, not less: on a loaded 2-core machine the steady
        # reader's thread (in this process, beside the ingest loop) can be starved for seconds, and a
        # shorter timeout cut it mid-frame too.
        msgspec.convert({"feed": {"queue_size": QUEUE, "ring_size": RING, "send_timeout_s": 10.0}}, Settings)
    )
    try:
        yield live
    finally:
        live.stop()


class Reader(threading.Thread):
    """A well-behaved subscriber (httpx-sse) that keeps every event name it gets."""

    def __init__(self, url: str, total: int) -> None:
        super().__init__(daemon=True)
        self.url, self.total = url, total
        self.names: list[str] = []
        self.notices: list[str] = []
        self.ready = threading.Event()

    def run(self) -> None:
        with sse(self.url + "/v1/stream", timeout=30) as events:
            self.ready.set()
            for event in events:
                if event.event in ("lagged", "missed"):
                    self.notices.append(event.event)
                    continue
                self.names.append(msgspec.json.decode(event.data)["name"])
                if len(self.names) == self.total:
                    return


def ingest(url: str, phase: str, health: list[dict[str, Any]]) -> float:
    """Post one phase in batches; the ingest rate in events per second. Samples the feed's health."""
    started = time.perf_counter()
    for b in range(PHASE // BATCH):
        events = [
            {"kind": "progress", "run_id": "r", "name": f"{phase}{b * BATCH + i}", "error": PAD} for i in range(BATCH)
        ]
        assert post(url, events).status_code == 202
        if b % 10 == 0:
            health.append(httpx.get(url + "/v1/health").json()["feed"])
    return PHASE / (time.perf_counter() - started)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_frozen_and_slow_subscribers_cost_nobody_else(server: LiveServer) -> None:
    health: list[dict[str, Any]] = []
    steady = Reader(server.url, 2 * PHASE)
    steady.start()
    assert steady.ready.wait(10)
    rate_alone = ingest(server.url, "a", health)

    frozen = RawSubscriber(server.port, rcvbuf=4096)  # connects, never reads
    slow = RawSubscriber(server.port, rcvbuf=16_384)
    try:
        wait_for(lambda: server.feed.subscribers == 3, what="three subscribers")
        posted = threading.Event()
        last = f'"name":"b{PHASE - 1}"'.encode()

        def read_slowly() -> None:
            # Behind the feed while ingest runs, then catch up until the last event (or the server cuts it).
            deadline = time.monotonic() + 60
            while not slow.closed and time.monotonic() < deadline:
                if not posted.is_set():
                    slow.read(8192, timeout=0.5)
                    time.sleep(0.05)  # at most ~160 KB/s: well behind the feed, even on a loaded machine
                else:
                    slow.read(1 << 20, timeout=0.5)
                    if last in slow.raw[-4096:]:
                        return

        slow_thread = threading.Thread(target=read_slowly, daemon=True)
        slow_thread.start()
        rss_before = rss_mb()
        rate_with = ingest(server.url, "b", health)
        rss_growth = rss_mb() - rss_before
        posted.set()

        steady.join(60)
        slow_thread.join(60)
        # The steady subscriber got everything, once, in order, and was never told it lagged.
        assert steady.names == [f"a{i}" for i in range(PHASE)] + [f"b{i}" for i in range(PHASE)]
        assert steady.notices == []
        # Ingest did not wait for anyone (generous bound: the machine is noisy and shared).
        assert rate_with >= 0.5 * rate_alone, (rate_alone, rate_with)
        # The frozen socket was cut by the send timeout; nothing piled up for it meanwhile.
        wait_for(lambda: server.feed.send_timeouts >= 1, timeout=30, what="the frozen subscriber to be cut")
        assert max(h["queued_max"] for h in health) <= QUEUE
        assert max(h["ring_events"] for h in health) <= RING
        assert rss_growth < 64, rss_growth
        # The slow one: every event is accounted for: received, or lost and told so.
        events = slow.events()
        received = [int(e["id"]) for e in events if "id" in e]
        lost = sum(e["data"]["lost"] for e in events if e.get("event") == "lagged")
        assert received == sorted(set(received))  # in order, no duplicates
        assert any(e.get("event") == "lagged" for e in events)
        assert len(received) + lost == PHASE
    finally:
        frozen.close()
        slow.close()
    print(f"ingest alone {rate_alone:.0f} ev/s, with a frozen and a slow subscriber {rate_with:.0f} ev/s")
