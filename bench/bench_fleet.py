"""A fleet's live feed on Redis Streams: end-to-end latency, fleet throughput, Redis's cost per event.

Starts a real ``redis-server`` (no persistence, as a feed-only Redis runs; ``--aof`` for AOF
with ``appendfsync everysec``), three ``otel-bridge serve`` sidecars and one ``otel-bridge feed``
process, all on ``fleet/otel-bridge.toml``. One subscriber on the feed process (a raw socket
reader in this process) records when each event arrives. Three loader threads post
``--rate`` events/s to each sidecar (one POST of ``--batch`` events every ``batch / rate`` s); each
event names the time its POST was built, so latency is POST start (on one sidecar) -> receipt (on another process's
subscriber), both on this process's clock.

Redis's cost: its CPU seconds (``/proc/<pid>/stat``) during the load minus the same span idle
before it (the three sidecars' and the feed process's blocking reads loop every ``block_ms``),
per event appended; its memory is ``used_memory`` after minus before, per entry kept, and
extrapolated to a million entries (the stream grows linearly: entries of one size in nodes of
100). Everything runs on one shared, noisy 2-core machine: the loaders, the three sidecars,
the feed process and Redis compete for it, so the throughput is a floor.

Usage: python bench/bench_fleet.py [--seconds 20] [--rate 1000] [--aof]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import statistics
import sys
import tempfile
import threading
import time

import httpx

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.fleet import FleetProcess  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_pid(server: RedisServer) -> int:
    proc = server._proc
    assert proc is not None
    return proc.pid


class Receiver(threading.Thread):
    """``GET /v1/stream`` on a raw socket: the receipt time of every event, by the send time it names."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.latencies: list[float] = []
        self.first: float | None = None
        self.last: float | None = None
        self.received = 0
        self.stop = threading.Event()

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        sock.settimeout(1.0)
        buffer = b""
        while not self.stop.is_set():
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                return
            now = time.perf_counter()
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                at = frame.find(b'"name":"t')
                if at < 0:
                    continue
                sent = float(frame[at + 9 : frame.index(b'"', at + 9)])
                self.latencies.append(now - sent)
                self.received += 1
                self.first = self.first or now
                self.last = now
        sock.close()


def load(url: str, agent: str, rate: int, batch: int, seconds: float, sent: list[int]) -> None:
    """POST ``batch`` events every ``batch / rate`` seconds for ``seconds``; each names when it was built."""
    tick_s = batch / rate
    headers = {"Content-Type": "application/x-ndjson"}
    with httpx.Client(timeout=10) as client:
        start = time.perf_counter()
        tick = 0
        while time.perf_counter() - start < seconds:
            stamp = f"t{time.perf_counter():.6f}"
            body = "\n".join(
                json.dumps({"kind": "progress", "run_id": f"{agent}-{tick % 50}", "agent": agent, "name": stamp})
                for _ in range(batch)
            )
            response = client.post(url + "/v1/events", content=body, headers=headers)
            assert response.status_code == 202, response.text
            sent[0] += batch
            tick += 1
            delay = start + tick * tick_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=1000, help="events per second per sidecar")
    parser.add_argument("--batch", type=int, default=50, help="events per POST")
    parser.add_argument("--aof", action="store_true", help="Redis with appendonly yes (appendfsync everysec)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        redis = RedisServer(folder / "redis", appendonly=args.aof)
        procs: list[FleetProcess] = []
        try:
            procs = [FleetProcess("serve", redis.url, folder / f"s{i}.log", wait=False) for i in range(3)]
            procs.append(FleetProcess("feed", redis.url, folder / "feed.log", wait=False))
            for proc in procs:
                proc.wait_ready()
            client = redis.client()
            mem0 = int(client.info("memory")["used_memory"])
            pid = redis_pid(redis)
            idle0 = cpu_seconds(pid)
            time.sleep(args.seconds / 4)
            idle_rate = (cpu_seconds(pid) - idle0) / (args.seconds / 4)

            receiver = Receiver(procs[3].port)
            receiver.start()
            time.sleep(0.5)
            sent = [[0] for _ in range(3)]
            cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
            threads = [
                threading.Thread(
                    target=load, args=(procs[i].url, "ABC"[i], args.rate, args.batch, args.seconds, sent[i])
                )
                for i in range(3)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            total = sum(s[0] for s in sent)
            deadline = time.perf_counter() + 30
            while receiver.received < total and time.perf_counter() < deadline:
                time.sleep(0.1)
            wall = time.perf_counter() - wall0
            redis_cpu = cpu_seconds(pid) - cpu0 - idle_rate * wall
            receiver.stop.set()
            kept = int(client.xlen("otel-bridge:feed"))
            mem = int(client.info("memory")["used_memory"]) - mem0
            client.close()
            lat = sorted(receiver.latencies)
            span = (receiver.last or 0) - (receiver.first or 0)
            print(f"sidecars 3 x {args.rate} events/s offered for {args.seconds:.0f} s (POSTs of {args.batch})")
            print(f"posted {total} ({total / args.seconds:.0f}/s), received {receiver.received} on the feed process")
            print(f"fleet throughput at the subscriber: {receiver.received / span:.0f} events/s")
            print(
                f"latency POST -> receipt: p50 {1000 * lat[len(lat) // 2]:.1f} ms, "
                f"p99 {1000 * lat[int(len(lat) * 0.99)]:.1f} ms, max {1000 * lat[-1]:.1f} ms, "
                f"mean {1000 * statistics.fmean(lat):.1f} ms"
            )
            print(
                f"redis CPU: {redis_cpu:.2f} s for {kept} entries = {redis_cpu / kept * 1e6:.1f} CPU-s per million "
                f"(idle baseline {idle_rate * 1000:.1f} ms/s subtracted)"
            )
            print(
                f"redis memory: {mem / 1e6:.1f} MB for {kept} entries = {mem / kept:.0f} B/entry, "
                f"~{mem / kept * 1e6 / 1e9:.2f} GB per million kept (extrapolated)"
            )
        finally:
            for proc in procs:
                proc.stop()
            redis.stop()


if __name__ == "__main__":
    main()
