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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import msgspec

from otel_bridge.sinks.export.durable_queue import WORKER_LOCK, DirLock
from otel_bridge.sinks.export.exporter import OtlpExporter
from otel_bridge.sinks.export.pipe import REPORT_S, Init, Report, frame, frame_spans, read_frame
from otel_bridge.stats import Stats


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
    exporter = OtlpExporter(init.settings, stats, init.resource, init.scope, init.schema_url, lock_queue_dir=False)
    await exporter.start()
    out = sys.stdout.buffer
    accepted = 0

    def report(final: bool = False) -> None:
        message = Report(
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
        with contextlib.suppress(OSError):
            out.write(frame(msgspec.msgpack.encode(message)))
            out.flush()

    async def reporter() -> None:
        while True:
            report()
            await asyncio.sleep(REPORT_S)

    reporting = asyncio.create_task(reporter())
    while (data := await read_frame(reader)) is not None:
        count = frame_spans(data)
        exporter.consume_encoded(data, count)  # a durable queue stores the frame as it came (either form)
        accepted += count
        report()  # the parent learns at once what is safe here (on disk, with a durable queue)
    reporting.cancel()
    await exporter.shutdown()
    if lock is not None:
        lock.release()
    report(final=True)


def run() -> None:
    # Stop on the parent's word only (the end of stdin), never on a signal meant for the group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s otel-bridge export worker: %(message)s")
    asyncio.run(main())


if __name__ == "__main__":
    run()
