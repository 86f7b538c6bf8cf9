"""The export worker process: ``python -m otel_bridge.sinks.export.worker``.

Reads an :class:`~otel_bridge.sinks.export.pipe.Init` and then span batches from
stdin, runs an ordinary :class:`OtlpExporter` (queue, retry, transport) on its
own event loop, and reports its counters on stdout. When stdin closes it shuts
the exporter down (exporting what it holds, bounded by the export timeout),
reports once more and exits. Only this process imports the transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import msgspec

from otel_bridge.model import SpanRecord
from otel_bridge.sinks.export.exporter import OtlpExporter
from otel_bridge.sinks.export.pipe import REPORT_S, Init, Report, frame, read_frame
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
    stats = Stats()
    exporter = OtlpExporter(init.settings, stats, init.resource, init.scope, init.schema_url)
    await exporter.start()
    out = sys.stdout.buffer

    def report(final: bool = False) -> None:
        message = Report(
            exported=stats.spans_exported.get(exporter.name, 0),
            failed=stats.spans_export_failed.get(exporter.name, 0),
            dropped=dict(stats.dropped),
            queue_depth=exporter.queue_depth,
            last_error=exporter.last_error,
            final=final,
        )
        with contextlib.suppress(OSError):
            out.write(frame(msgspec.msgpack.encode(message)))
            out.flush()

    async def reporter() -> None:
        while True:
            await asyncio.sleep(REPORT_S)
            report()

    reporting = asyncio.create_task(reporter())
    decode = msgspec.msgpack.Decoder(list[SpanRecord]).decode
    while (data := await read_frame(reader)) is not None:
        exporter.consume(decode(data))
    reporting.cancel()
    await exporter.shutdown()
    report(final=True)


def run() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s otel-bridge export worker: %(message)s")
    asyncio.run(main())


if __name__ == "__main__":
    run()
