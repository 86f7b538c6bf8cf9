"""The fault suite: nothing lost, nothing stuck, with a real rotel collector and the real sidecar.

Loopback only, bounded in count and time: a 60 s collector outage under load
with a sidecar restart in the middle, a stop signal to the sidecar's whole
process group (SIGTERM and SIGINT), the export worker killed, and the sidecar
killed with SIGKILL. Each test
compares the span ids the sidecar produced with those the collector passed
on. Figures for a 5-minute outage come from bench/bench_faults.py
(BENCHMARKS.md).
"""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import time
from collections.abc import Iterator

import pytest

from otel_bridge.sinks.export.durable_queue import DB_NAME
from tests.support.faults import GroupSidecar, Load, RestartableRotel, wait_all_arrived

OUTAGE_S = 60.0


@pytest.fixture
def collector(tmp_path: pathlib.Path) -> Iterator[RestartableRotel]:
    rotel = RestartableRotel(tmp_path / "rotel.log")
    rotel.start()
    try:
        yield rotel
    finally:
        rotel.close()


def _env(collector: RestartableRotel, queue_dir: pathlib.Path, protocol: str = "grpc") -> dict[str, str]:
    endpoint = collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint + "/v1/traces"
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",  # a short drain at shutdown while the collector is down
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BRIDGE_QUEUE_DIR": str(queue_dir),
    }


def _queued_on_disk(queue_dir: pathlib.Path) -> int:
    with sqlite3.connect(queue_dir / DB_NAME) as db:
        (count,) = db.execute("SELECT COALESCE(SUM(spans), 0) FROM batch").fetchone()
    return int(count)


def test_a_collector_outage_with_a_sidecar_restart_loses_nothing(
    collector: RestartableRotel, tmp_path: pathlib.Path
) -> None:
    queue = tmp_path / "queue"
    load = Load()
    first = GroupSidecar(tmp_path / "first.log", _env(collector, queue))
    try:
        load.post(first, "before", 10)
        arrived, _ = wait_all_arrived(collector, load.expected_spans, timeout=30)
        assert len(arrived) == load.expected_spans

        collector.stop()
        load.post_for(first, "outage-a", OUTAGE_S / 2, runs_per_s=5)
        health = first.health()
        assert health["status"] == "degraded"
        assert any("OTLP export failing" in reason for reason in health["reasons"])
        assert first.signal_group(signal.SIGTERM) == 0, first.log()
    finally:
        first.kill_group()
    assert _queued_on_disk(queue) > 0  # what the first sidecar could not send waits on disk

    second = GroupSidecar(tmp_path / "second.log", _env(collector, queue))
    try:
        load.post_for(second, "outage-b", OUTAGE_S / 2, runs_per_s=5)
        collector.start()
        arrived, _ = wait_all_arrived(collector, load.expected_spans, timeout=90)
        missing = load.expected_spans - len(arrived)
        assert missing == 0, f"{missing} of {load.expected_spans} spans never arrived; {second.health()}"
        duplicated = {span_id: n for span_id, n in arrived.items() if n > 1}
        assert duplicated == {}  # nothing crashed: nothing was sent twice
        health = second.health()
        assert {k: v for k, v in health["dropped"].items() if k.startswith("export")} == {}
        deadline = time.monotonic() + 15
        while second.health()["status"] != "ok":
            assert time.monotonic() < deadline, second.health()
            time.sleep(0.1)
        assert second.signal_group(signal.SIGTERM) == 0, second.log()
    finally:
        second.kill_group()
    assert _queued_on_disk(queue) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_to_the_process_group_drains_export(
    sig: signal.Signals, collector: RestartableRotel, tmp_path: pathlib.Path
) -> None:
    load = Load()
    sidecar = GroupSidecar(tmp_path / "sidecar.log", _env(collector, tmp_path / "queue", "http/protobuf"))
    try:
        load.post(sidecar, "group", 40)  # still in their end grace: closed and exported by the drain
        assert sidecar.signal_group(sig) == 0, sidecar.log()
    finally:
        sidecar.kill_group()
    arrived, _ = wait_all_arrived(collector, load.expected_spans, timeout=30)
    assert len(arrived) == load.expected_spans
    assert max(arrived.values()) == 1
    assert "Traceback" not in sidecar.log()


def test_a_killed_export_worker_is_restarted_and_loses_only_what_it_counts(
    collector: RestartableRotel, tmp_path: pathlib.Path
) -> None:
    load = Load()
    sidecar = GroupSidecar(tmp_path / "sidecar.log", _env(collector, tmp_path / "queue"))
    try:
        load.post(sidecar, "before", 20)
        worker = sidecar.worker_pid()  # the sidecar's only child, started by this test's sidecar
        os.kill(worker, signal.SIGKILL)
        load.post(sidecar, "during", 20)
        deadline = time.monotonic() + 30
        while sidecar.health()["export_worker_restarts"] < 1:
            assert time.monotonic() < deadline, sidecar.log()
            time.sleep(0.1)
        assert sidecar.worker_pid() != worker
        load.post(sidecar, "after", 20)
        arrived, _ = wait_all_arrived(collector, load.expected_spans, timeout=30)
        health = sidecar.health()
        lost = health["dropped"].get("export_worker_gone", 0)
        missing = load.expected_spans - len(arrived)
        assert missing <= lost, f"{missing} spans missing but only {lost} counted: {health}"
        assert sidecar.signal_group(signal.SIGTERM) == 0, sidecar.log()
    finally:
        sidecar.kill_group()


def test_a_sidecar_killed_with_sigkill_has_handed_its_finished_spans_to_the_durable_queue(
    collector: RestartableRotel, tmp_path: pathlib.Path
) -> None:
    """What a SIGKILL loses is what the sidecar still holds: finished spans reach the worker (and the queue on
    disk) within ``process.HANDOVER_S`` of finishing, not after ``schedule_delay_s``."""
    queue = tmp_path / "queue"
    env = {**_env(collector, queue), "OTEL_BSP_SCHEDULE_DELAY": "30000"}  # the worker would send after 30 s
    collector.stop()  # nothing leaves: what was handed over stays on disk
    load = Load()
    sidecar = GroupSidecar(tmp_path / "sidecar.log", env)
    worker = sidecar.worker_pid()
    try:
        load.post(sidecar, "killed", 10)
        deadline = time.monotonic() + 15
        while sidecar.health()["spans_finished"] < load.expected_spans:  # the runs' end grace
            assert time.monotonic() < deadline, sidecar.health()
            time.sleep(0.05)
        time.sleep(0.5)  # ten times HANDOVER_S
        sidecar.proc.kill()  # the sidecar alone: its worker (a session of its own) reads the end of its input
        sidecar.proc.wait()
        deadline = time.monotonic() + 30
        while pathlib.Path(f"/proc/{worker}").exists():  # it drains (the collector is down) and exits
            assert time.monotonic() < deadline, "the export worker did not exit after its sidecar died"
            time.sleep(0.1)
    finally:
        sidecar.kill_group()
        if pathlib.Path(f"/proc/{worker}").exists():
            os.kill(worker, signal.SIGKILL)
    assert _queued_on_disk(queue) == load.expected_spans
