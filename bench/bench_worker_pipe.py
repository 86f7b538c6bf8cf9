"""The worker pipe's size: CPU per batch frame crossing to a reading child, with the default pipe and with PIPE_BYTES.

The parent writes 200 KB frames (a batch of 512 encoded spans is ~200 KiB) the way WorkerPipe does
(``write`` + ``drain``) to a child that reads them the way the export worker does (``read_frame`` on an
asyncio pipe reader); the figure is CPU time of both processes (this one's ``process_time`` and the
child's rusage) per frame, rounds interleaved, median (min-max).

Usage: python bench/bench_worker_pipe.py [--rounds 8] [--frames 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import resource
import statistics
import sys
import time

from otel_bridge.sinks.export.pipe import frame
from otel_bridge.sinks.export.process import PIPE_BYTES

CHILD = """
import asyncio, sys
from otel_bridge.sinks.export.pipe import read_frame
async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**31)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    while await read_frame(reader) is not None:
        pass
asyncio.run(main())
"""


async def cpu_per_frame(wide: bool, frames: int) -> float:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, stdin=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    if wide:
        fcntl.fcntl(proc.stdin.transport.get_extra_info("pipe").fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    payload = frame(os.urandom(200_000))
    await asyncio.sleep(0.3)  # the child has started
    cpu0, child0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(frames):
        proc.stdin.write(payload)
        await proc.stdin.drain()
        await asyncio.sleep(0)
    proc.stdin.close()
    await proc.wait()
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = child1.ru_utime + child1.ru_stime - child0.ru_utime - child0.ru_stime
    return (time.process_time() - cpu0 + child) / frames * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()
    results: dict[bool, list[float]] = {False: [], True: []}
    for i in range(args.rounds):
        for wide in (False, True) if i % 2 == 0 else (True, False):
            results[wide].append(asyncio.run(cpu_per_frame(wide, args.frames)))
    for wide, xs in results.items():
        label = f"{PIPE_BYTES >> 10} KiB pipe" if wide else "default pipe"
        print(f"{label:14} {statistics.median(xs):5.0f} us/frame ({min(xs):.0f}-{max(xs):.0f})")


if __name__ == "__main__":
    main()
