"""The durable export queue: what it keeps across outages and restarts, what it refuses and counts.

The queue is real SQLite in a tmp folder; the transport is scripted so each
failure can be forced (the real collector path is in test_faults.py).
"""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3
from collections.abc import Callable

import msgspec
import pytest

from otel_bridge.config import ConfigError, OtlpSettings, default_queue_dir, load_settings
from otel_bridge.sinks.export import batching
from otel_bridge.sinks.export.durable_queue import DB_NAME, DurableQueue
from otel_bridge.sinks.export.pipe import array_length
from otel_bridge.sinks.export.result import Outcome, SendResult
from otel_bridge.sinks.otlp import OtlpExporter
from otel_bridge.stats import Stats
from tests.test_exporter import span


def names(spans: list[object]) -> list[str]:
    return [s.name for s in spans]  # type: ignore[attr-defined]


def test_a_batch_stays_until_done_and_in_order(tmp_path: pathlib.Path) -> None:
    q = DurableQueue(tmp_path, 2**20, batch_spans=3, stats=Stats())
    q.offer([span(0), span(1)])
    q.offer([span(2), span(3)])
    assert len(q) == 4
    assert names(q.take()) == ["s0", "s1"]  # whole rows only: the second would pass the batch
    q.release()  # not delivered: still at the head
    assert names(q.take()) == ["s0", "s1"]
    q.done()
    assert names(q.take()) == ["s2", "s3"]
    q.done()
    assert len(q) == 0
    assert q.take() == []


def test_a_reopened_queue_sends_what_an_earlier_process_left_and_counts_resends(tmp_path: pathlib.Path) -> None:
    first = DurableQueue(tmp_path, 2**20, batch_spans=2, stats=Stats())
    first.offer([span(0), span(1)])
    first.offer([span(2), span(3)])
    assert names(first.take()) == ["s0", "s1"]  # taken, perhaps sent: then the process dies
    first._db.close()  # no close(): a crash leaves the WAL as it is

    stats = Stats()
    second = DurableQueue(tmp_path, 2**20, batch_spans=2, stats=stats)
    assert second.recovered == 4
    assert names(second.take()) == ["s0", "s1"]
    second.release()  # the outage goes on: tried again later in this process
    assert names(second.take()) == ["s0", "s1"]
    second.done()
    assert stats.spans_resent == {"otlp": 2}  # the batch that may have reached the collector already, once
    assert names(second.take()) == ["s2", "s3"]
    second.done()
    assert stats.spans_resent == {"otlp": 2}  # never taken before: not a re-send
    second.offer([span(4)])
    assert names(second.take()) == ["s4"]
    second.release()
    assert names(second.take()) == ["s4"]  # taken twice in this process: a retry, not a re-send
    assert stats.spans_resent == {"otlp": 2}
    second.close()


def test_the_byte_bound_refuses_and_counts(tmp_path: pathlib.Path) -> None:
    stats = Stats()
    one = len(DurableQueue(tmp_path / "probe", 2**20, 1, Stats())._encode([span(0)]))
    q = DurableQueue(tmp_path / "q", max_bytes=3 * one, batch_spans=10, stats=stats)
    for i in range(5):
        q.offer([span(i)])
    assert len(q) == 3
    assert stats.dropped == {"export_queue_full": 2}
    q.take()
    q.done()
    q.offer([span(9)])  # room again once exported
    assert len(q) == 1


def test_an_unreadable_row_is_dropped_and_counted_not_its_neighbours(tmp_path: pathlib.Path) -> None:
    stats = Stats()
    q = DurableQueue(tmp_path, 2**20, batch_spans=10, stats=stats)
    q.offer([span(0)])
    q.offer_encoded(b"\xc1not msgpack", 2)
    q.offer([span(1)])
    assert names(q.take()) == ["s0", "s1"]
    q.done()
    assert len(q) == 0
    assert stats.dropped == {"export_queue_corrupt": 2}


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polling a plain counter, nothing to wait on
            await asyncio.sleep(0.01)


class Collector:
    """Down (retryable) until ``up`` is set; remembers every span name it accepted."""

    def __init__(self) -> None:
        self.up = False
        self.accepted: list[bytes] = []
        self.attempts = 0

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        self.attempts += 1
        if not self.up:
            return SendResult(Outcome.RETRYABLE, "HTTP 503: down")
        self.accepted.append(body)
        return SendResult(Outcome.SUCCESS)

    async def close(self) -> None:
        return None


def _settings(queue_dir: pathlib.Path) -> OtlpSettings:
    return OtlpSettings(
        endpoint="http://unused", queue_dir=str(queue_dir), schedule_delay_s=0.01, max_retry_s=0.05, timeout_s=0.2
    )


async def test_an_outage_longer_than_the_retry_budget_loses_nothing(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batching, "RETRY_PAUSE_S", 0.01)
    collector = Collector()
    stats = Stats()
    exp = OtlpExporter(_settings(tmp_path), stats, {}, ("t", "0"), "", transport=collector)
    await exp.start()
    exp.consume([span(i) for i in range(5)])
    await eventually(lambda: collector.attempts >= 20)  # many budgets spent: memory would have dropped it
    assert exp.queue_depth == 5
    assert stats.dropped == {}
    collector.up = True
    await eventually(lambda: stats.spans_exported.get("otlp", 0) == 5)
    await exp.shutdown()
    assert len(collector.accepted) == 1
    assert stats.dropped == {}
    assert stats.spans_export_failed == {"otlp": 0}


async def test_a_restart_during_an_outage_resumes_from_disk(tmp_path: pathlib.Path) -> None:
    down = Collector()
    first_stats = Stats()
    first = OtlpExporter(_settings(tmp_path), first_stats, {}, ("t", "0"), "", transport=down)
    await first.start()
    first.consume([span(i) for i in range(4)])
    await eventually(lambda: down.attempts >= 2)
    await first.shutdown()  # the collector is still down: the spans stay on disk
    assert first_stats.dropped == {}
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("SELECT SUM(spans) FROM batch").fetchone() == (4,)

    up = Collector()
    up.up = True
    stats = Stats()
    second = OtlpExporter(_settings(tmp_path), stats, {}, ("t", "0"), "", transport=up)
    await second.start()
    await eventually(lambda: stats.spans_exported.get("otlp", 0) == 4)
    await second.shutdown()
    # The first process's batch was taken and may have been in flight: its re-send is counted.
    assert stats.spans_resent == {"otlp": 4}
    assert stats.dropped == {}


async def test_a_second_sidecar_on_the_same_folder_fails_at_startup(tmp_path: pathlib.Path) -> None:
    first = OtlpExporter(_settings(tmp_path), Stats(), {}, ("t", "0"), "", transport=Collector())
    with pytest.raises(ConfigError, match="in use by another otel-bridge"):
        OtlpExporter(_settings(tmp_path), Stats(), {}, ("t", "0"), "", transport=Collector())
    await first.shutdown()  # safe without start; releases the folder
    again = OtlpExporter(_settings(tmp_path), Stats(), {}, ("t", "0"), "", transport=Collector())
    await again.shutdown()


def test_the_queue_folder_defaults_to_the_state_folder_when_export_is_on(tmp_path: pathlib.Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert load_settings(environ=env).otlp.queue_dir == str(tmp_path / "otel-bridge" / "export-queue")
    assert default_queue_dir({"XDG_STATE_HOME": "relative"}).parts[-4:-2] == (".local", "state")
    assert load_settings(environ={"XDG_STATE_HOME": str(tmp_path)}).otlp.queue_dir is None  # export off
    memory = load_settings(environ={**env, "OTEL_BRIDGE_QUEUE_DIR": "memory"}).otlp
    assert memory.queue_dir == "memory"
    assert memory.durable_queue_dir is None
    assert load_settings(environ={**env, "OTEL_BRIDGE_QUEUE_DIR": "/q"}).otlp.durable_queue_dir == "/q"
    with pytest.raises(ConfigError, match="queue_max_mb"):
        load_settings(overrides={"otlp": {"queue_max_mb": 0}})


@pytest.mark.parametrize("n", [0, 1, 15, 16, 512, 70_000])
def test_the_worker_counts_a_frame_from_its_header(n: int) -> None:
    assert array_length(msgspec.msgpack.encode([span(i % 3) for i in range(n)])) == n
    assert array_length(b"") == array_length(b"\xc1") == 0
