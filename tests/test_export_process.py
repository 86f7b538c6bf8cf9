"""The OTLP export worker process: spans cross a pipe, a real collector receives them, counters come back."""

from __future__ import annotations

import asyncio
import fcntl
import pathlib

import msgspec
import pytest
import uvloop

from otel_bridge.aio import cancel_and_wait
from otel_bridge.config import OtlpSettings
from otel_bridge.model import SpanKind, SpanRecord, StatusCode
from otel_bridge.sinks.export.pipe import Init
from otel_bridge.sinks.export.process import PIPE_BYTES, WorkerPipe
from otel_bridge.sinks.export_process import ProcessExporter
from otel_bridge.sinks.otlp_proto import ENCODER_ENV, native_available, native_unavailable_reason
from otel_bridge.stats import Stats
from tests.support.ports import free_port
from tests.support.rotel import Rotel

native = pytest.mark.skipif(not native_available(), reason=f"native encoder not built: {native_unavailable_reason()}")


def span(i: int) -> SpanRecord:
    return SpanRecord(
        trace_id=bytes(16 * [3]), span_id=(i + 1).to_bytes(8, "big"), parent_span_id=None, name=f"chat m{i}",
        kind=SpanKind.CLIENT, start_ns=1_800_000_000_000_000_000, end_ns=1_800_000_000_100_000_000,
        attributes={"gen_ai.operation.name": "chat", "n": i, "f": 0.5, "arr": ("a", "b")},
        status_code=StatusCode.ERROR if i % 2 else StatusCode.UNSET,
    )  # fmt: skip


@pytest.mark.parametrize("encoder", ["pure", pytest.param("native", marks=native)])
async def test_spans_reach_a_real_collector_through_the_worker(
    rotel: Rotel, encoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either form across the pipe: msgpack records (pure: the worker encodes) or OTLP bytes (native)."""
    monkeypatch.setenv(ENCODER_ENV, encoder)
    stats = Stats()
    settings = OtlpSettings(endpoint=rotel.http_endpoint + "/v1/traces", schedule_delay_s=0.02)
    exporter = ProcessExporter(settings, stats, {"service.name": "worker-test"}, ("t", "1"), "")
    await exporter.start()
    exporter.consume([span(i) for i in range(700)])
    await exporter.shutdown()  # drains through the child before it exits
    assert stats.spans_exported == {"otlp": 700}
    assert stats.dropped == {}
    received = await asyncio.to_thread(rotel.wait_for_spans, lambda s: len(s) >= 700)
    by_name = {s.name: s for s in received}
    assert len(by_name) == 700
    s5 = by_name["chat m5"]
    assert s5.status.code == 2
    assert {kv.key: kv.value for kv in s5.attributes}["arr"].array_value.values[1].string_value == "b"


async def test_export_failures_in_the_worker_are_counted_in_the_parent() -> None:
    stats = Stats()
    settings = OtlpSettings(
        endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", schedule_delay_s=0.02, timeout_s=0.5, max_retry_s=0.5
    )
    exporter = ProcessExporter(settings, stats, {}, ("t", "1"), "")
    await exporter.start()
    exporter.consume([span(i) for i in range(3)])
    await exporter.shutdown()
    assert stats.spans_exported == {"otlp": 0}  # the series exists from the start
    assert stats.spans_export_failed == {"otlp": 3}
    assert stats.dropped == {"export_retries_exhausted": 3}
    assert exporter.last_error is not None
    assert "ConnectError" in exporter.last_error


async def test_shutdown_without_start_counts_what_was_queued() -> None:
    stats = Stats()
    exporter = ProcessExporter(OtlpSettings(endpoint="http://127.0.0.1:9/v1/traces"), stats, {}, ("t", "1"), "")
    exporter.consume([span(1)])
    await exporter.shutdown()
    assert stats.dropped == {"export_shutdown": 1}


def _unreachable_settings() -> OtlpSettings:
    return OtlpSettings(
        endpoint=f"http://127.0.0.1:{free_port()}/v1/traces",
        max_batch_spans=1,
        schedule_delay_s=0.02,
        timeout_s=0.5,
        max_retry_s=0.5,
    )


async def test_a_span_that_cannot_cross_the_pipe_is_counted_and_the_pump_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13, item 1: an unencodable span used to kill the pump, silently ending export.

    With the pure encoder the batch crosses as msgpack, which cannot carry the time: that span is dropped.
    """
    monkeypatch.setenv(ENCODER_ENV, "pure")
    stats = Stats()
    exporter = ProcessExporter(_unreachable_settings(), stats, {}, ("t", "1"), "")
    await exporter.start()
    bad = msgspec.structs.replace(span(1), start_ns=2**70)  # beyond msgpack's 64-bit integers
    exporter.consume([span(0), bad, span(2)])
    await exporter.shutdown()
    assert stats.dropped == {"export_encode_error": 1, "export_retries_exhausted": 2}


@native
async def test_with_the_native_encoder_the_sidecar_sends_otlp_bytes_and_clamps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The native path encodes in the sidecar: the out-of-range time is clamped (as the reference does), not lost;
    a span not even the clamp can encode is dropped and counted alone."""
    monkeypatch.setenv(ENCODER_ENV, "native")
    stats = Stats()
    exporter = ProcessExporter(_unreachable_settings(), stats, {}, ("t", "1"), "")
    assert "encoded in the sidecar" in exporter._sender.encoder  # type: ignore[attr-defined]
    await exporter.start()
    clamped = msgspec.structs.replace(span(1), start_ns=2**70)
    broken = msgspec.structs.replace(span(3), trace_id=None)  # a bug's record: no encoder can write it
    exporter.consume([span(0), clamped, broken, span(2)])
    await exporter.shutdown()
    assert stats.dropped == {"export_encode_error": 1, "export_retries_exhausted": 3}


async def test_with_the_pure_encoder_a_record_the_worker_cannot_read_is_dropped_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """msgpack carries a record no ``SpanRecord`` can hold; the worker drops that span, not its batch."""
    monkeypatch.setenv(ENCODER_ENV, "pure")
    stats = Stats()
    settings = msgspec.structs.replace(_unreachable_settings(), max_batch_spans=10)
    exporter = ProcessExporter(settings, stats, {}, ("t", "1"), "")
    await exporter.start()
    exporter.consume([span(0), msgspec.structs.replace(span(1), trace_id=None), span(2)])
    await exporter.shutdown()
    assert stats.dropped == {"export_encode_error": 1, "export_retries_exhausted": 2}


def pipe_max_size() -> int:
    path = pathlib.Path("/proc/sys/fs/pipe-max-size")
    return int(path.read_text()) if path.exists() else 0


async def test_the_worker_s_stdin_pipe_holds_a_whole_batch_where_the_system_allows() -> None:
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("this system has no F_GETPIPE_SZ: the pipe keeps its default size")
    if pipe_max_size() < PIPE_BYTES:
        pytest.skip("/proc/sys/fs/pipe-max-size is below 1 MiB here: the pipe keeps its default size")
    exporter = ProcessExporter(OtlpSettings(endpoint="http://127.0.0.1:9/v1/traces"), Stats(), {}, ("t", "1"), "")
    await exporter.start()
    try:
        proc = exporter._pipe._proc  # the pipe's size is only visible on its file descriptor
        assert proc is not None
        assert proc.stdin is not None
        fd = proc.stdin.transport.get_extra_info("pipe").fileno()
        assert fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) == PIPE_BYTES
    finally:
        await exporter.shutdown()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_batch_written_as_its_worker_dies_waits_for_the_new_worker(rotel: Rotel, loop: str) -> None:
    """The race the fault drill found (1 run in ~10): the worker is gone, its pipe closed, but the supervisor has
    not yet seen it exit. The write failed (uvloop raises, asyncio's loop drops the bytes) and the spans were
    lost, uncounted or counted as gone; now the batch waits for the restarted worker and is delivered."""

    async def scenario() -> Stats:
        stats = Stats()
        settings = OtlpSettings(endpoint=rotel.http_endpoint + "/v1/traces", schedule_delay_s=0.02)
        pipe = WorkerPipe(settings, stats, Init(settings, {"service.name": "race"}, ("t", "1"), ""), "otlp")
        await pipe.start()
        # Hold the supervisor back, so that the window between the pipe closing and the exit being seen stays open.
        assert pipe._supervisor is not None
        assert pipe._proc is not None
        assert pipe._proc.stdin is not None
        await cancel_and_wait(pipe._supervisor)
        pipe._proc.kill()
        await pipe._proc.wait()
        stdin = pipe._proc.stdin
        for _ in range(200):
            if stdin.is_closing():
                break
            await asyncio.sleep(0.01)
        sending = asyncio.create_task(pipe.send_batch([span(i) for i in range(5)], budget_s=10))
        await asyncio.sleep(0.2)
        assert not sending.done()  # waiting for a worker, not written into the dead pipe
        pipe._supervisor = asyncio.create_task(pipe._supervise())  # sees the exit, restarts the worker
        await asyncio.wait_for(sending, 10)
        await pipe.close()  # the new worker exports what it was handed, then exits
        return stats

    run = uvloop.run if loop == "uvloop" else asyncio.run
    stats = run(scenario())
    assert stats.dropped == {}
    assert stats.spans_exported == {"otlp": 5}
    received = rotel.wait_for_spans(lambda s: len(s) >= 5)
    assert sorted(s.name for s in received) == [f"chat m{i}" for i in range(5)]
