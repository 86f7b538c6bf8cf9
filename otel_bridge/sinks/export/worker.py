"""The export worker process: ``python -m otel_bridge.sinks.export.worker``.

Reads an :class:`~otel_bridge.sinks.export.pipe.Init` and then span batches from
stdin, runs an ordinary :class:`OtlpExporter` (queue, retry, transport) on its
own event loop, and reports its counters on stdout. When stdin closes it shuts
the exporter down (exporting what it holds, bounded by the export timeout; with
a durable queue the rest stays on disk), reports once more and exits.

It stops only on the parent's instruction (the end of stdin): the parent
starts it in a session of its own, so the terminal's Ctrl-C and a stop signal
sent to the sidecar's process group do not reach it, and it ignores SIGINT and
SIGTERM as well, so a stop aimed at the whole group cannot cut its drain short.
With a durable queue it first takes the queue folder's worker lock, waiting for
a worker of an earlier sidecar that is still draining the same folder. Only
this process imports the transports.

Its cost is per batch, not per span (BENCHMARKS.md, "The export path after the
encoder"), and most of a batch's cost was waking up: every wake-up of the process
costs more than the work done in it. So the worker wakes only when there is work
(a frame on stdin, a collector's answer, a retry's backoff): its reports ride on
those wake-ups (:class:`Reports`, no timer), with the in-memory queue it sends a
frame as soon as it comes (the sidecar has batched it for ``schedule_delay_s``
already; waiting as long again only delayed the spans and cost a timer), and its
loop is uvloop's where that is installed. On glibc it also keeps freed memory for
reuse (:func:`keep_freed_memory`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import msgspec

from otel_bridge.runtime import keep_freed_memory
from otel_bridge.sinks.export.durable_queue import WORKER_LOCK, DirLock
from otel_bridge.sinks.export.exporter import OtlpExporter
from otel_bridge.sinks.export.factory import make_transport
from otel_bridge.sinks.export.pipe import Init, Report, frame, frame_spans, read_frame
from otel_bridge.sinks.export.result import SendResult, Transport
from otel_bridge.stats import Stats


class Reports:
    """The worker's counters to the parent, written when they changed and at most once a loop iteration.

    ``soon()`` asks for a report at the end of the current loop iteration (several asks, one report); a
    report equal to the last one written is not written again. The worker asks after a frame it queued
    with a durable queue (``accepted``: the parent learns at once what is on disk), after a frame that
    queued nothing (all dropped: no export attempt will follow), and after every export attempt (the
    counters, the queue's depth and ``last_error`` change there). Every change of the counters happens in
    one of these, so no timer is needed: an idle worker does not wake at all (it used to report every
    0.2 s, and after every frame).
    """

    def __init__(self, build: Callable[[bool], Report], out: BinaryIO) -> None:
        self._build = build
        self._out = out
        self._pending = False
        self._last: Report | None = None

    def soon(self) -> None:
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._pending = False
        self.write()

    def write(self, final: bool = False) -> None:
        report = self._build(final)
        if report == self._last:
            return
        self._last = report
        with contextlib.suppress(OSError):
            self._out.write(frame(msgspec.msgpack.encode(report)))
            self._out.flush()


class ReportingTransport:
    """A :class:`Transport` that asks for a report after every attempt (the link after it counts the result)."""

    def __init__(self, transport: Transport, after: Callable[[], None]) -> None:
        self._transport = transport
        self._after = after

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        try:
            return await self._transport.send(body, timeout_s)
        finally:
            self._after()  # runs at the end of this loop iteration, once the sender has counted the result

    async def close(self) -> None:
        await self._transport.close()


async def main() -> None:
    """Read the settings, then batches until stdin closes; export; report."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**31)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    first = await read_frame(reader)
    if first is None:
        return
    init = msgspec.msgpack.decode(first, type=Init)
    lock = None
    if init.settings.durable_queue_dir is not None:
        lock = DirLock(Path(init.settings.durable_queue_dir), WORKER_LOCK)
        await lock.acquire_waiting()
    stats = Stats()
    accepted = 0

    def build(final: bool) -> Report:
        return Report(
            exported=stats.spans_exported.get(exporter.name, 0),
            failed=stats.spans_export_failed.get(exporter.name, 0),
            dropped=dict(stats.dropped),
            queue_depth=exporter.queue_depth,
            last_error=exporter.last_error,
            final=final,
            accepted=accepted,
            resent=stats.spans_resent.get(exporter.name, 0),
            durable=lock is not None,
        )

    reports = Reports(build, sys.stdout.buffer)
    exporter = OtlpExporter(
        init.settings,
        stats,
        init.resource,
        init.scope,
        init.schema_url,
        ReportingTransport(make_transport(init.settings), reports.soon),
        lock_queue_dir=False,
        # The sidecar's in-memory queue hands over a batch every schedule_delay_s: send it as it comes.
        # A durable queue is handed every process.HANDOVER_S and batches by schedule_delay_s here.
        delay_s=None if lock is not None else 0.0,
    )
    await exporter.start()
    reports.write()
    while (data := await read_frame(reader)) is not None:
        count = frame_spans(data)
        queued = exporter.queue_depth
        exporter.consume_encoded(data, count)  # a durable queue stores the frame as it came (either form)
        accepted += count
        if lock is not None or exporter.queue_depth <= queued:
            reports.soon()  # on disk (the parent learns at once what is safe), or nothing to send
    await exporter.shutdown()
    if lock is not None:
        lock.release()
    reports.write(final=True)


def run() -> None:
    # Stop on the parent's word only (the end of stdin), never on a signal meant for the group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s otel-bridge export worker: %(message)s")
    keep_freed_memory()
    try:
        import uvloop
    except ImportError:  # uvloop comes with uvicorn[standard] where it builds; asyncio's loop otherwise
        asyncio.run(main())
    else:
        uvloop.run(main())


if __name__ == "__main__":
    run()
