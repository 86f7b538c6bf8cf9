"""OTLP export in a worker process, so encoding and sending use the second core.

Encoding a span to OTLP protobuf costs about 7 us in Python, serialising it to
msgpack about 0.85 us (BENCHMARKS.md). :class:`ProcessExporter` is therefore
the same :class:`BatchingExporter` as the in-process one with a different
sender: :class:`WorkerPipe` hands each batch to a child process
(``python -m otel_bridge.sinks.export.worker``) as a length-prefixed msgpack
frame on its stdin, and the child runs the ordinary :class:`OtlpExporter`
(batching, retry, backoff) on its own event loop. The child's counters come
back on its stdout (:mod:`~otel_bridge.sinks.export.pipe`) and land in the
parent's :class:`Stats` as deltas. A plain subprocess, not ``multiprocessing``:
nothing of the parent's ``__main__`` is re-imported.

Concurrency: in the parent, the exporter's drain task writes batches to the
child's stdin (``drain()`` gives back-pressure without blocking the loop) and
one task (``_read_reports``) applies the child's reports. ``shutdown`` drains
the queue into the pipe, closes stdin (the end of input), and waits for the
child to export what it holds and exit, bounded by twice the export timeout
plus two seconds; past that the child is killed and what it still held is
counted as dropped. Once the pipe is broken every batch is counted as
``export_worker_gone``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import msgspec

from otel_bridge.config import OtlpSettings
from otel_bridge.model import AttributeValue, SpanRecord
from otel_bridge.sinks.export.batching import BatchingExporter
from otel_bridge.sinks.export.pipe import Init, Report, frame, read_frame
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

WORKER_MODULE = "otel_bridge.sinks.export.worker"


class WorkerPipe:
    """A :class:`~otel_bridge.sinks.export.batching.BatchSender` whose far end is the worker process."""

    def __init__(self, settings: OtlpSettings, stats: Stats, init: Init, name: str) -> None:
        self._s = settings
        self._stats = stats
        self._name = name
        self._init = msgspec.msgpack.encode(init)
        # Both counters exist from the start (at 0), so a scrape shows the series before the first failure.
        stats.spans_exported[name] += 0
        stats.spans_export_failed[name] += 0
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode_report = msgspec.msgpack.Decoder(Report).decode
        self._seen = Report(0, 0, {}, 0, None)
        self._proc: asyncio.subprocess.Process | None = None
        self._report_task: asyncio.Task[None] | None = None
        self._gone = False
        self._closing = False

    @property
    def held(self) -> int:
        return self._seen.queue_depth

    @property
    def last_error(self) -> str | None:
        return self._seen.last_error

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            WORKER_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**20,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(frame(self._init))
        self._report_task = asyncio.create_task(self._read_reports(), name="otlp-export-reports")

    async def send_batch(self, batch: list[SpanRecord], budget_s: float) -> None:
        """Write the batch to the child (the child has its own retry budget)."""
        assert self._proc is not None, "start() first"
        assert self._proc.stdin is not None
        if self._gone:
            self._stats.drop("export_worker_gone", len(batch))
            return
        try:
            payload = frame(self._encode(batch))
        except Exception:  # one unencodable span must not stop the pump
            log.exception("cannot serialise spans for the OTLP export worker; %d spans dropped", len(batch))
            self._stats.drop("export_encode_error", len(batch))
            return
        try:
            self._proc.stdin.write(payload)
            await self._proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._gone = True
            self._stats.drop("export_worker_gone", len(batch))
            log.error("cannot hand spans to the OTLP export worker: %s", exc)

    async def _read_reports(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while (data := await read_frame(self._proc.stdout)) is not None:
            self._apply(self._decode_report(data))
        if not self._closing:
            log.error("the OTLP export worker exited (code %s); spans can no longer be exported", self._proc.returncode)

    def _apply(self, report: Report) -> None:
        seen = self._seen
        if report.exported != seen.exported:
            self._stats.spans_exported[self._name] += report.exported - seen.exported
        if report.failed != seen.failed:
            self._stats.spans_export_failed[self._name] += report.failed - seen.failed
        for reason, count in report.dropped.items():
            delta = count - seen.dropped.get(reason, 0)
            if delta:
                self._stats.drop(reason, delta)
        self._seen = report

    async def close(self) -> None:
        """Close stdin (the end of input), let the child export what it holds (bounded), then stop it."""
        self._closing = True
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        with contextlib.suppress(ConnectionError, RuntimeError):
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 2 * self._s.timeout_s + 2)
        except TimeoutError:
            log.error("the OTLP export worker did not finish in time; killing it")
            self._stats.drop("export_shutdown", self._seen.queue_depth)
            self._proc.kill()
            await self._proc.wait()
        if self._report_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._report_task, 2)


class ProcessExporter(BatchingExporter):
    """A :class:`SpanSink` with the :class:`OtlpExporter` interface whose work runs in a child process."""

    def __init__(
        self,
        settings: OtlpSettings,
        stats: Stats,
        resource: dict[str, AttributeValue],
        scope: tuple[str, str],
        schema_url: str,
    ) -> None:
        pipe = WorkerPipe(settings, stats, Init(settings, resource, scope, schema_url), self.name)
        super().__init__(settings, stats, pipe)
