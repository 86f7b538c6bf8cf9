"""The export worker's CPU per ingest request and per exported batch, at 10 and at 500 events a POST.

bench_pipeline's export-only sidecar (``start_bridge``: ``schedule_delay_s`` 0.1, the in-memory
queue, the export worker process; the native encoder when it is built) posting the same
workload to a real rotel collector (blackhole exporter) through a small counting proxy (its own
process), which tells how many export requests (batches) the worker sent. Measured from the
first measured POST until every span is delivered: the CPU of the export worker process (all
its threads, from ``/proc/<pid>/task/*/schedstat``, nanoseconds; the user/system split from
``/proc/<pid>/stat``, in clock ticks) and of the sidecar's main process, which reads and
applies the worker's reports. Divided by the POSTs ("per request") and by the export requests
("per batch").

``--before <checkout>`` measures an earlier otel-bridge too, in the same rounds (the order of
the versions alternating), each measurement in a fresh sidecar; medians and the min-max spread.

Usage: python bench/bench_worker_cycle.py [--rounds 7] [--before ../base] [--sizes 10,500]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import (
    WORKLOAD_SPANS_PER_RUN,
    Rotel,
    Server,
    bodies_of,
    free_port,
    make_workload,
    post_all,
    start_bridge,
    warm_up,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")

PROXY = r"""
import asyncio, sys
listen, upstream, count_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
MARK = b"POST /"
count = 0

async def pump(reader, writer, counting):
    global count
    tail = b""
    try:
        while data := await reader.read(1 << 20):
            if counting:
                seen = tail + data
                count += seen.count(MARK)
                tail = seen[-(len(MARK) - 1):]
                with open(count_file, "w") as f:
                    f.write(str(count))
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()

async def handle(reader, writer):
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
    await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


class CountingProxy:
    """Forwards loopback TCP to the collector and counts the HTTP requests that pass (its own process)."""

    def __init__(self, upstream: int, folder: pathlib.Path) -> None:
        self.port = free_port()
        self._file = folder / "requests"
        self._file.write_text("0")
        self._proc = subprocess.Popen([sys.executable, "-c", PROXY, str(self.port), str(upstream), str(self._file)])
        time.sleep(0.3)

    def requests(self) -> int:
        text = self._file.read_text()
        return int(text) if text else self.requests()

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait()


@dataclass
class Cpu:
    ns: int
    user_ticks: int
    sys_ticks: int


def cpu_of(pid: int) -> Cpu:
    """Run time of every thread of ``pid`` (ns), and its user and system ticks."""
    ns = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            ns += int(pathlib.Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except OSError:
            continue
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return Cpu(ns, int(fields[11]), int(fields[12]))


def worker_pid(parent: int) -> int:
    for _ in range(200):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
                cmdline = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"export.worker" in cmdline:
                return int(entry)
        time.sleep(0.05)
    raise SystemExit("no export worker process found")


@dataclass
class Sample:
    worker_per_post: float
    worker_user_per_post: float
    worker_sys_per_post: float
    worker_per_batch: float
    sidecar_per_post: float
    batches: int


def measure(server: Server, proxy: CountingProxy, bodies: list[bytes], n_spans: int) -> Sample:
    try:
        with httpx.Client(timeout=120) as client:
            warm_spans = warm_up(server, client)
            worker = worker_pid(server.proc.pid)
            w0, s0, b0 = cpu_of(worker), cpu_of(server.proc.pid), proxy.requests()
            post_all(server, client, bodies, warm_spans + n_spans)
            w1, s1, b1 = cpu_of(worker), cpu_of(server.proc.pid), proxy.requests()
    finally:
        server.stop()
    posts, batches = len(bodies), max(1, b1 - b0)
    us = (w1.ns - w0.ns) / 1e3
    return Sample(
        worker_per_post=us / posts,
        worker_user_per_post=(w1.user_ticks - w0.user_ticks) / TICK * 1e6 / posts,
        worker_sys_per_post=(w1.sys_ticks - w0.sys_ticks) / TICK * 1e6 / posts,
        worker_per_batch=us / batches,
        sidecar_per_post=(s1.ns - s0.ns) / 1e3 / posts,
        batches=b1 - b0,
    )


def spread(xs: list[float], fmt: str = ".1f") -> str:
    return f"{statistics.median(xs):{fmt}} ({min(xs):{fmt}}-{max(xs):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", default="10,500", help="events a POST, comma separated")
    parser.add_argument(
        "--events", type=int, default=8000, help="events posted per measurement (at least 64 POSTs; multiple of 16)"
    )
    parser.add_argument("--before", type=pathlib.Path, help="a checkout of an earlier otel-bridge, interleaved")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = {n: max(args.events, 64 * n) // 16 for n in sizes}
    versions = {"after": REPO, **({"before": args.before.resolve()} if args.before else {})}
    results: dict[tuple[str, int], list[Sample]] = {(v, n): [] for v in versions for n in sizes}
    collector = Rotel()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = pathlib.Path(tmpdir)
        proxy = CountingProxy(collector.http, tmp)
        try:
            for i in range(args.rounds):
                for n in sizes:
                    bodies = bodies_of(make_workload(runs[n]), n)
                    spans = runs[n] * WORKLOAD_SPANS_PER_RUN
                    order = list(versions) if i % 2 == 0 else list(versions)[::-1]
                    for v in order:
                        server = start_bridge(f"http://127.0.0.1:{proxy.port}", tmp, False, 10_000_000, versions[v])
                        sample = measure(server, proxy, bodies, spans)
                        results[v, n].append(sample)
                        print(
                            f"round {i + 1} {n:>3} events a POST, {v:>6}: worker {sample.worker_per_post:6.1f} us/POST "
                            f"(user {sample.worker_user_per_post:.0f}, sys {sample.worker_sys_per_post:.0f}), "
                            f"{sample.worker_per_batch:6.0f} us/batch over {sample.batches} batches; "
                            f"sidecar {sample.sidecar_per_post:6.1f} us/POST",
                            flush=True,
                        )
        finally:
            proxy.stop()
            collector.stop()
    print(f"\n{args.rounds} interleaved rounds; median (min-max)\n")
    print(
        "| events a POST | version | worker us/POST | worker us/event | worker us/batch | batches | sidecar us/POST |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        for v in versions:
            xs = results[v, n]
            print(
                f"| {n} ({runs[n] * 16 // n}) | {v} | {spread([s.worker_per_post for s in xs])} "
                f"| {spread([s.worker_per_post / n for s in xs], '.2f')} "
                f"| {spread([s.worker_per_batch for s in xs], '.0f')} "
                f"| {statistics.median(s.batches for s in xs):.0f} "
                f"| {spread([s.sidecar_per_post for s in xs])} |"
            )
    if "before" in versions:
        print()
        for n in sizes:
            ratios = [
                b.worker_per_post / a.worker_per_post
                for a, b in zip(results["after", n], results["before", n], strict=True)
            ]
            print(f"{n} events a POST: worker CPU before / after {spread(ratios, '.2f')}x")


if __name__ == "__main__":
    main()
