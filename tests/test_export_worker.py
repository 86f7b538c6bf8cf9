"""The export worker process on its own: its reports ride on the wake-ups that change them, and it sends at once.

The worker is started as the sidecar starts it (``python -m otel_bridge.sinks.export.worker``,
an :class:`Init` then batch frames on stdin) and its stdout is read frame by frame, so each
test sees exactly which reports it writes and when. The collector is a real rotel.
"""

from __future__ import annotations

import asyncio
import io
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest

from otel_bridge.config import OtlpSettings
from otel_bridge.model import SpanKind, SpanRecord
from otel_bridge.sinks.export.encoded import EncodedSpans, pack
from otel_bridge.sinks.export.pipe import Init, Report, frame, read_frame
from otel_bridge.sinks.export.process import WORKER_MODULE
from otel_bridge.sinks.export.worker import Reports
from tests.support.ports import free_port
from tests.support.rotel import Rotel


def spans(n: int, first: int = 0) -> bytes:
    records = [
        SpanRecord(
            trace_id=bytes(16 * [7]),
            span_id=(first + i + 1).to_bytes(8, "big"),
            parent_span_id=None,
            name=f"op {first + i}",
            kind=SpanKind.INTERNAL,
            start_ns=1_800_000_000_000_000_000,
            end_ns=1_800_000_000_100_000_000,
            attributes={"n": i},
        )
        for i in range(n)
    ]
    return msgspec.msgpack.encode(records)


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    def send(self, payload: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(payload))

    async def report(self, timeout_s: float = 10.0) -> Report | None:
        """The next report, or ``None`` when none comes within ``timeout_s``."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                data = await read_frame(self.proc.stdout)
        except TimeoutError:
            return None
        assert data is not None, "the worker's stdout ended"
        return msgspec.msgpack.decode(data, type=Report)

    async def end(self) -> list[Report]:
        """Close stdin; every report until the worker exits (the last one final)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        reports = []
        while (report := await self.report()) is not None:
            reports.append(report)
            if report.final:
                break
        await asyncio.wait_for(self.proc.wait(), 10)
        return reports


WITHOUT_UVLOOP = "import sys; sys.modules['uvloop'] = None; from otel_bridge.sinks.export.worker import run; run()"
"""The worker where uvloop cannot be imported: it runs on asyncio's own loop."""


@asynccontextmanager
async def worker(settings: OtlpSettings, loop: str = "uvloop") -> AsyncIterator[Worker]:
    command = ["-m", WORKER_MODULE] if loop == "uvloop" else ["-c", WITHOUT_UVLOOP]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    try:
        w = Worker(proc)
        w.send(msgspec.msgpack.encode(Init(settings, {"service.name": "worker-test"}, ("t", "1"), "")))
        first = await w.report()
        assert first is not None
        assert (first.accepted, first.exported, first.final) == (0, 0, False)  # the one report at the start
        yield w
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_an_idle_worker_writes_no_report(rotel: Rotel) -> None:
    """No timer: the worker used to report every 0.2 s, each a wake-up of both processes for nothing."""
    async with worker(OtlpSettings(endpoint=rotel.http_endpoint + "/v1/traces")) as w:
        assert await w.report(timeout_s=1.0) is None
        final = await w.end()
    assert [r.final for r in final] == [True]


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_with_the_in_memory_queue_a_frame_is_sent_at_once_and_reported_after_its_export(
    rotel: Rotel, loop: str
) -> None:
    """The sidecar batched the frame for schedule_delay_s already: the worker does not wait as long again.

    Its one report comes after the export (the frame's arrival alone changes nothing the sidecar needs).
    """
    settings = OtlpSettings(endpoint=rotel.http_endpoint + "/v1/traces", schedule_delay_s=30.0)
    async with worker(settings, loop) as w:
        started = time.monotonic()
        w.send(spans(5))
        report = await w.report()
        assert report is not None
        assert time.monotonic() - started < 5  # not the 30 s schedule delay
        assert (report.accepted, report.exported, report.queue_depth, report.last_error) == (5, 5, 0, None)
        assert await w.report(timeout_s=0.5) is None
        final = await w.end()
    assert [(r.exported, r.final) for r in final] == [(5, True)]


async def test_a_frame_nothing_of_which_is_queued_is_reported_at_once() -> None:
    """No export attempt follows a frame the queue dropped whole, so the report cannot wait for one.

    (A batch already encoded is kept or dropped whole; its bytes are never sent here.)"""
    settings = OtlpSettings(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", max_queue_spans=3)
    async with worker(settings) as w:
        w.send(pack(EncodedSpans(5, b"never sent")))
        report = await w.report()
        assert report is not None
        assert (report.accepted, report.dropped, report.queue_depth) == (5, {"export_queue_full": 5}, 0)
        await w.end()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_with_a_durable_queue_a_frame_is_acknowledged_before_it_is_sent(
    rotel: Rotel, tmp_path: Path, loop: str
) -> None:
    """``accepted`` tells the sidecar what is on disk: it comes at once, not after the export."""
    settings = OtlpSettings(
        endpoint=rotel.http_endpoint + "/v1/traces", queue_dir=str(tmp_path / "queue"), schedule_delay_s=0.5
    )
    async with worker(settings, loop) as w:
        w.send(spans(4))
        ack = await w.report()
        assert ack is not None
        assert (ack.accepted, ack.exported, ack.queue_depth, ack.durable) == (4, 0, 4, True)
        exported = await w.report()
        assert exported is not None
        assert (exported.exported, exported.queue_depth) == (4, 0)
        await w.end()


async def test_a_failed_attempt_is_reported_when_it_fails_and_not_again_while_nothing_changes() -> None:
    settings = OtlpSettings(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", timeout_s=0.3, max_retry_s=1.5)
    async with worker(settings) as w:
        w.send(spans(2))
        failing = await w.report()
        assert failing is not None
        assert failing.last_error is not None
        assert "ConnectError" in failing.last_error
        assert failing.failed == 0  # still within its retry budget; the same error again is not reported again
        given_up = await w.report()
        assert given_up is not None
        assert (given_up.failed, given_up.dropped) == (2, {"export_retries_exhausted": 2})
        await w.end()


async def test_reports_are_written_once_a_loop_iteration_and_only_when_they_changed() -> None:
    out = io.BytesIO()
    counters = {"exported": 0}

    def build(final: bool) -> Report:
        return Report(counters["exported"], 0, {}, 0, None, final=final)

    reports = Reports(build, out)
    for _ in range(3):
        reports.soon()
    await asyncio.sleep(0)
    assert out.getvalue() == frame(msgspec.msgpack.encode(build(False)))  # three asks, one report
    reports.soon()
    await asyncio.sleep(0)
    assert len(out.getvalue()) == len(frame(msgspec.msgpack.encode(build(False))))  # nothing changed: not written
    counters["exported"] = 3
    reports.soon()
    await asyncio.sleep(0)
    reports.write(final=True)
    decoded = []
    stream = asyncio.StreamReader()
    stream.feed_data(out.getvalue())
    stream.feed_eof()
    while (data := await read_frame(stream)) is not None:
        decoded.append(msgspec.msgpack.decode(data, type=Report))
    assert [(r.exported, r.final) for r in decoded] == [(0, False), (3, False), (3, True)]


FAULTS = """
import resource, sys
from otel_bridge.runtime import keep_freed_memory
if sys.argv[1] == "keep":
    keep_freed_memory()
def cycle():  # a batch's buffers: a few of ~300 KB, touched, then freed
    buffers = [bytearray(300_000) for _ in range(4)]
    for b in buffers:
        b[::4096] = bytes(len(b[::4096]))
for _ in range(5):
    cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, check=True, text=True)
    return int(done.stdout)


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="keep_freed_memory tunes glibc's allocator; this C library is not glibc"
)
def test_batch_sized_buffers_reuse_memory_instead_of_faulting_pages_in_anew() -> None:
    """With glibc's defaults every cycle of batch-sized buffers trimmed the heap and faulted its pages in again."""
    assert page_faults("default") > 10_000
    assert page_faults("keep") < 1_000
