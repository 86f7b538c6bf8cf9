"""OTLP export in a worker process, so encoding and sending use the second core.

Encoding a span to OTLP protobuf costs about 7 us in Python, serialising it to
msgpack about 0.85 us (BENCHMARKS.md). The event loop therefore hands finished
spans to a child process (``python -m otel_bridge.sinks.export_process``) as
length-prefixed msgpack batches on its stdin, and the child runs the ordinary
:class:`OtlpExporter` (batching, retry, backoff) on its own event loop. The
child writes its counters to stdout every ``_REPORT_S`` and once more when it
exits; they land in the parent's :class:`Stats` as deltas. A plain subprocess,
not ``multiprocessing``: nothing of the parent's ``__main__`` is re-imported.

Concurrency: in the parent, one task (``_pump``) drains the bounded queue into
the child's stdin (``drain()`` gives back-pressure without blocking the loop)
and one task (``_read_reports``) applies the child's reports. ``shutdown``
drains the queue, closes stdin (the end of input), and waits for the child to
export what it holds and exit, bounded by twice the export timeout; past that
the child is killed and what it still held is counted as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import sys
from collections.abc import Sequence

import msgspec

from otel_bridge.config import OtlpSettings
from otel_bridge.model import AttributeValue, SpanRecord
from otel_bridge.sinks.base import BatchQueue
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

_REPORT_S = 0.2
_LENGTH = struct.Struct("<I")


class _Init(msgspec.Struct):
    settings: OtlpSettings
    resource: dict[str, AttributeValue]
    scope: tuple[str, str]
    schema_url: str


class _Report(msgspec.Struct):
    """The child's cumulative counters."""

    exported: int
    failed: int
    dropped: dict[str, int]
    queue_depth: int
    last_error: str | None
    final: bool = False


def _frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One length-prefixed message, or ``None`` at the end of the stream."""
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


async def _child() -> None:
    """The worker: read the settings, then batches until stdin closes; export; report."""
    from otel_bridge.sinks.otlp import OtlpExporter  # only the child imports the transports

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**31)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    first = await _read_frame(reader)
    if first is None:
        return
    init = msgspec.msgpack.decode(first, type=_Init)
    stats = Stats()
    exporter = OtlpExporter(init.settings, stats, init.resource, init.scope, init.schema_url)
    await exporter.start()
    out = sys.stdout.buffer

    def report(final: bool = False) -> None:
        message = _Report(
            exported=stats.spans_exported.get(exporter.name, 0),
            failed=stats.spans_export_failed.get(exporter.name, 0),
            dropped=dict(stats.dropped),
            queue_depth=exporter.queue_depth,
            last_error=exporter.last_error,
            final=final,
        )
        with contextlib.suppress(OSError):
            out.write(_frame(msgspec.msgpack.encode(message)))
            out.flush()

    async def reporter() -> None:
        while True:
            await asyncio.sleep(_REPORT_S)
            report()

    reporting = asyncio.create_task(reporter())
    decode = msgspec.msgpack.Decoder(list[SpanRecord]).decode
    while (data := await _read_frame(reader)) is not None:
        exporter.consume(decode(data))
    reporting.cancel()
    await exporter.shutdown()
    report(final=True)


class ProcessExporter:
    """A :class:`SpanSink` with the :class:`OtlpExporter` interface whose work runs in a child process."""

    name = "otlp"

    def __init__(
        self,
        settings: OtlpSettings,
        stats: Stats,
        resource: dict[str, AttributeValue],
        scope: tuple[str, str],
        schema_url: str,
    ) -> None:
        self._s = settings
        self._stats = stats
        self._init = msgspec.msgpack.encode(_Init(settings, resource, scope, schema_url))
        self._queue = BatchQueue(settings.max_queue_spans, settings.max_batch_spans, stats)
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode_report = msgspec.msgpack.Decoder(_Report).decode
        self._seen = _Report(0, 0, {}, 0, None)
        self._proc: asyncio.subprocess.Process | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._report_task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def queue_depth(self) -> int:
        return len(self._queue) + self._seen.queue_depth

    @property
    def last_error(self) -> str | None:
        return self._seen.last_error

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self._queue.offer(spans)

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "otel_bridge.sinks.export_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**20,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(_frame(self._init))
        self._pump_task = asyncio.create_task(self._pump(), name="otlp-export-pump")
        self._report_task = asyncio.create_task(self._read_reports(), name="otlp-export-reports")

    async def _read_reports(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while (data := await _read_frame(self._proc.stdout)) is not None:
            self._apply(self._decode_report(data))
        if not self._stopping:
            log.error("the OTLP export worker exited (code %s); spans can no longer be exported", self._proc.returncode)

    def _apply(self, report: _Report) -> None:
        seen = self._seen
        if report.exported != seen.exported:
            self._stats.spans_exported[self.name] += report.exported - seen.exported
        if report.failed != seen.failed:
            self._stats.spans_export_failed[self.name] += report.failed - seen.failed
        for reason, count in report.dropped.items():
            delta = count - seen.dropped.get(reason, 0)
            if delta:
                self._stats.drop(reason, delta)
        self._seen = report

    async def _pump(self) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        stdin = self._proc.stdin
        while True:
            if not self._stopping:
                await self._queue.wait_batch(self._s.schedule_delay_s)
            while self._queue:
                batch = self._queue.take()
                try:
                    stdin.write(_frame(self._encode(batch)))
                    await stdin.drain()
                except (ConnectionError, RuntimeError) as exc:
                    self._stats.drop("export_worker_gone", len(batch) + self._queue.clear())
                    log.error("cannot hand spans to the OTLP export worker: %s", exc)
            if self._stopping:
                return

    async def force_flush(self, timeout_s: float | None = None) -> None:
        """Hand everything queued to the child now (it exports on its own schedule)."""
        self._queue.wake()
        await asyncio.sleep(0)

    async def shutdown(self) -> None:
        """Drain to the child, let it export what it holds (bounded), then stop it."""
        self._stopping = True
        self._queue.wake()
        if self._pump_task is not None:
            await self._pump_task
        if self._proc is None:
            if self._queue:
                self._stats.drop("export_shutdown", self._queue.clear())
            return
        assert self._proc.stdin is not None
        with contextlib.suppress(ConnectionError, RuntimeError):
            self._proc.stdin.close()  # the end of input: the child drains and exits
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


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s otel-bridge export worker: %(message)s")
    asyncio.run(_child())
