"""Live-feed fan-out: framed once for all subscribers vs a naive per-subscriber serializer.

For 1, 10, 100 and 1000 subscribers, a server process (uvicorn + uvloop +
httptools, one worker, the GC tuned and the inline lane as ``otel-bridge serve``
runs it) serves either the real feed (``GET /v1/stream``: each event encoded and
framed once, the same bytes queued to every subscriber, everything accumulated
written in one chunk per round) or a naive baseline in the same app (``/naive``:
each subscriber ``json.dumps`` every event itself and writes it through
sse-starlette's framing, one write per event).

The client is several processes, so that it is not the limit: ``--readers N``
reader processes (default 4) share the subscribers' raw sockets on plain epoll
loops, and one publisher process posts events at a fixed rate with
``POST /v1/events`` (10 ms batches, from 4 kept-alive connections), each event
named by its publish time. Latency is per delivered event, publish (before the
POST) to receipt: the kernel's arrival stamp on the subscriber's socket
(``SO_TIMESTAMPNS``, the last bytes of a read: never earlier than the truth), so
the readers' own scheduling is not in it; the time the reader got to the bytes is
printed beside it ("read"). Server CPU is its whole process tree's, from the first
POST to the last receipt, read from /proc.

Prints, per row and round: server CPU per delivery, p50/p99, deliveries/expected,
the publish rate reached, the slowest subscriber's events per second, the server's
cores, the client's CPU, the feed's events per write (``/v1/health``) and the load
average; then medians (min-max) and the feed/naive ratio. The machine is shared
and noisy: read the ratios, and the load.

``--per-post 1`` publishes one event per POST instead of 10 ms batches;
``--rows 100x1000,1000x1000`` picks the (subscribers x events/s) rows; ``--rounds N``
repeats each row, alternating which mode goes first; ``--before PATH`` also runs
another checkout's feed (the same bench, that tree's ``otel_bridge``), interleaved;
``--only feed`` skips the naive baseline. ``FANOUT_PROFILE=file`` writes the
server's cProfile stats.

Usage: python bench/bench_fanout.py [--seconds 3] [--rows ...] [--per-post N] [--rounds N] [--before PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import re
import selectors
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.proctree import tree_cpu_seconds  # noqa: E402

ROWS = [(1, 1000), (10, 1000), (100, 1000), (1000, 100)]  # (subscribers, events per second)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server process --------------------------------------------------------------


def serve(port: int, tree: pathlib.Path) -> None:
    """The server: ``tree``'s otel_bridge (this checkout, or the one ``--before`` names) and the naive route."""
    sys.path.insert(0, str(tree))
    import msgspec
    import uvicorn
    from fastapi import APIRouter
    from sse_starlette import EventSourceResponse, ServerSentEvent

    from otel_bridge.app import create_app
    from otel_bridge.config import load_settings
    from otel_bridge.model import AgentEvent, Placement
    from otel_bridge.sinks.feed.record import enrich

    settings = load_settings(environ={}, overrides={"feed": {"max_subscribers": 2000, "queue_size": 1000}})
    app = create_app(settings)
    bridge = app.state.bridge
    queues: set[asyncio.Queue[tuple[int, AgentEvent, Placement]]] = set()
    seq = iter(range(1, 1 << 62))

    def observe(events: Any, placements: Any) -> None:
        for event, placement in zip(events, placements, strict=True):
            item = (next(seq), event, placement)
            for q in queues:
                if q.qsize() < 1000:
                    q.put_nowait(item)

    bridge.add_observer(observe)
    router = APIRouter()

    @router.get("/naive")
    async def naive() -> EventSourceResponse:
        q: asyncio.Queue[tuple[int, AgentEvent, Placement]] = asyncio.Queue()
        queues.add(q)

        async def gen() -> Any:
            try:
                while True:
                    n, event, placement = await q.get()
                    record = enrich(event, placement, n, agent=event.agent, trace_url_template=None, content=False)
                    data = json.dumps(msgspec.to_builtins(record))  # per subscriber, per event
                    yield ServerSentEvent(data=data, event=event.kind.value, id=str(n))
            finally:
                queues.discard(q)

        return EventSourceResponse(gen(), ping=15, send_timeout=10)

    app.include_router(router)
    # As `otel-bridge serve` runs it: the GC and allocator tuned, small POSTs answered by the HTTP protocol's own lane.
    from otel_bridge.runtime import keep_freed_memory, tune_gc
    from otel_bridge.web.http_lane import lane_protocol

    tune_gc()
    keep_freed_memory()
    http: Any = lane_protocol(app) or "httptools"
    profile = os.environ.get("FANOUT_PROFILE")  # a file for the server's cProfile stats (pstats), to see its cost
    if profile:
        import cProfile

        prof = cProfile.Profile()

        def dump(*_: object) -> None:  # the driver's SIGUSR1, before it stops the server
            prof.disable()
            prof.dump_stats(profile)

        signal.signal(signal.SIGUSR1, dump)
        prof.enable()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop="uvloop", http=http)


# --- the client: reader processes and a publisher process ----------------------------------


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's; Python names it from 3.12 on


def _bucket(latency_us: int) -> int:
    """A latency histogram's bucket: 10 us wide below 10 ms, 100 us below 1 s, 1 ms beyond."""
    if latency_us < 10_000:
        return latency_us - latency_us % 10
    if latency_us < 1_000_000:
        return latency_us - latency_us % 100
    return latency_us - latency_us % 1000


def _count_runs(parts: list[bytes], arrived_us: int, read_us: int, hists: tuple[dict[int, int], dict[int, int]]) -> int:
    """Add the latency of every event in ``parts`` (what follows each name key) to ``hists`` (to its arrival,
    to its read); the count. Equal names are contiguous (one POST's events): each run's end is bisected."""
    arrived, read = hists
    n = len(parts)
    i = 1
    while i < n:
        stamp = parts[i][:19]
        lo, hi = i, n - 1
        if lo == hi or parts[lo + 1][:19] != stamp:  # a run of one (one event per POST): no bisection
            pass
        elif parts[hi][:19] == stamp:
            lo = hi
        else:  # parts[lo] has it, parts[hi] does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if parts[mid][:19] == stamp:
                    lo = mid
                else:
                    hi = mid
        published_us = int(stamp) // 1000
        bucket = _bucket(arrived_us - published_us)
        arrived[bucket] = arrived.get(bucket, 0) + lo - i + 1
        bucket = _bucket(read_us - published_us)
        read[bucket] = read.get(bucket, 0) + lo - i + 1
        i = lo + 1
    return n - 1


def reader(port: int, path: str, subscribers: int, total: int, nice: int = 0, every: int = 1) -> None:
    """Open ``subscribers`` streams and read them on one epoll loop until each has ``total`` events (or the
    driver says ``stop``); print each one's count and a histogram of publish-to-receipt latency, in us.

    No asyncio: a ready socket costs one ``recv`` and two C scans (the frames' ends, the publish times),
    so a few of these processes keep up with the server instead of being the figure's limit."""
    # Receipt is the kernel's stamp, which the readers' own delays do not move while their buffers have room.
    os.nice(nice)
    sep = b"\r\n\r\n" if path == "/naive" else b"\n\n"  # sse-starlette's default line ending is CRLF
    key = b'"name": "' if path == "/naive" else b'"name":"'  # json.dumps or msgspec
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    for _ in range(subscribers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append(sock)
    received = [0] * subscribers
    bufs = [b""] * subscribers
    for i, sock in enumerate(socks):
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"GET {path}: {head[:200]!r}")
        bufs[i] = head.split(b"\r\n\r\n", 1)[1]
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sel.register(sock, selectors.EVENT_READ, i)
    sel.register(sys.stdin, selectors.EVENT_READ, -1)
    print("READY", flush=True)
    hists: tuple[dict[int, int], dict[int, int]] = ({}, {})
    open_ = subscribers
    stop = False
    while open_ and not stop:
        for ready, _ in sel.select():
            i = ready.data
            if i < 0:
                stop = sys.stdin.readline().strip() == "stop"
                continue
            sock = socks[i]
            try:
                data, notes, _, _ = sock.recvmsg(1 << 16, 64)  # a larger buffer costs its allocation each time
            except BlockingIOError:
                continue
            read_us = arrived_us = time.time_ns() // 1000
            for level, kind, note in notes:  # when the kernel got the (last) bytes: the receipt
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", note)
                    arrived_us = (sec * 1_000_000_000 + nsec) // 1000
            if not data:
                sel.unregister(sock)
                open_ -= 1
                continue
            buf = bufs[i] + data if bufs[i] else data
            cut = buf.rfind(sep)
            if cut < 0:
                bufs[i] = buf
                continue
            cut += len(sep)
            bufs[i] = buf[cut:]
            # The whole frames, each named by its POST's publish time (ns, 19 digits); a POST's events are
            # contiguous and its time unique, so each time's run is counted by bisection, not event by event.
            if i % every:  # not one of the timed subscribers: counted only
                received[i] += buf.count(key, 0, cut)
            else:
                parts = (buf if buf.find(key, cut) < 0 else buf[:cut]).split(key)
                received[i] += _count_runs(parts, arrived_us, read_us, hists)
            if received[i] >= total:
                sel.unregister(sock)
                open_ -= 1
    for sock in socks:
        sock.close()
    cpu = resource_cpu()
    print(json.dumps({"received": received, "hist": hists[0], "hist_read": hists[1], "cpu_s": cpu}), flush=True)


def resource_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def publisher(port: int, rate: int, seconds: float, per_post: int = 0) -> dict[str, Any]:
    """Post ``rate`` events a second for ``seconds`` (10 ms batches, or ``per_post`` a POST), each event named
    by its publish time in ns; start when the driver says ``go``."""
    total = int(rate * seconds)
    per_tick = per_post or max(1, rate // 100)
    # Several posters share the schedule (one POST in flight each), so the rate is not held back by one
    # connection's round trips on a busy machine (as with many producers, a POST may wait behind a round).
    posters = 16 if per_post else 4
    ticks = [(i / rate, min(per_tick, total - i)) for i in range(0, total, per_tick)]
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(posters)]
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the driver's go
    start = time.monotonic()

    async def poster(mine: list[tuple[float, int]], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Plain HTTP/1.1 on one kept-alive connection: a client library's own cost per request would
        # limit the rate of small POSTs on a busy machine, and it is not what is measured.
        try:
            for due, batch in mine:
                delay = start + due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.time_ns()
                body = b"\n".join(
                    json.dumps({"kind": "progress", "run_id": "bench", "name": str(now)}).encode() for _ in range(batch)
                )
                writer.write(
                    b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 202"):
                    raise SystemExit(f"POST /v1/events: {head!r}")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(poster(ticks[i::posters], *conns[i]) for i in range(posters)))
    return {"published": total, "published_s": time.monotonic() - start, "cpu_s": resource_cpu()}


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile of a histogram of latencies in us, in ms."""
    n = sum(hist.values())
    if not n:
        return None
    rank, seen = min(n - 1, int(n * q)), 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen > rank:
            return bucket / 1000
    return None  # pragma: no cover


# --- the driver --------------------------------------------------------------------------


def _lines(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"a bench process exited early: {proc.args!r}")
    return line.strip()


def run_row(
    mode: str,
    subscribers: int,
    rate: int,
    seconds: float,
    per_post: int = 0,
    readers: int = 4,
    tree: pathlib.Path = REPO,
    nice: int = 0,
    every: int = 1,
) -> dict[str, Any]:
    """One measurement: a server (``tree``'s otel_bridge), ``readers`` reader processes sharing the
    subscribers, one publisher process; server CPU is its whole process tree's, from go to the last receipt."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    me = str(pathlib.Path(__file__).resolve())
    server = subprocess.Popen([sys.executable, me, "--serve", str(port), "--tree", str(tree)], env=env, cwd=REPO)
    procs: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        path = "/v1/stream" if mode == "feed" else "/naive"
        total = int(rate * seconds)
        readers = max(1, min(readers, subscribers))
        shares = [subscribers // readers + (1 if i < subscribers % readers else 0) for i in range(readers)]
        pipes = {"env": env, "cwd": REPO, "stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
        reading = [
            subprocess.Popen(
                [sys.executable, me, "--reader", str(port), path, str(n), str(total), str(nice), str(every)], **pipes
            )  # type: ignore[call-overload]
            for n in shares
        ]
        procs.extend(reading)
        for proc in reading:
            assert _lines(proc) == "READY"
        posting: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            [sys.executable, me, "--publish", str(port), str(rate), str(seconds), str(per_post)], **pipes
        )
        procs.append(posting)
        assert _lines(posting) == "READY"
        time.sleep(0.2)
        cpu0 = tree_cpu_seconds(server.pid)
        assert posting.stdin is not None
        posting.stdin.write("go\n")
        posting.stdin.flush()
        published: dict[str, Any] = json.loads(_lines(posting))
        stop_at = time.monotonic() + 30  # the readers' grace after the last POST
        results: list[dict[str, Any]] = []
        for proc in reading:
            assert proc.stdin is not None
            assert proc.stdout is not None
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                if not sel.select(max(0.0, stop_at - time.monotonic())):
                    proc.stdin.write("stop\n")
                    proc.stdin.flush()
            results.append(json.loads(_lines(proc)))
        cpu = tree_cpu_seconds(server.pid) - cpu0
        result: dict[str, Any] = {}
        if mode == "feed":
            feed = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).json()["feed"]
            result["per_write"] = feed["delivered"] / feed["writes"] if feed.get("writes") else None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        if os.environ.get("FANOUT_PROFILE"):
            server.send_signal(signal.SIGUSR1)
            time.sleep(3)
        server.terminate()
        server.wait(10)
    hist: dict[int, int] = {}
    hist_read: dict[int, int] = {}
    counts: list[int] = []
    for r in results:
        counts.extend(r["received"])
        for into, part in ((hist, r["hist"]), (hist_read, r["hist_read"])):
            for bucket, n in part.items():
                into[int(bucket)] = into.get(int(bucket), 0) + n
    delivered = sum(counts)
    result.update(
        delivered=delivered,
        expected=total * subscribers,
        published_per_s=published["published"] / published["published_s"],
        # what the slowest subscriber got, per second of publishing
        per_subscriber_s=min(counts) / published["published_s"] if counts else 0.0,
        p50_ms=percentile(hist, 0.50),
        p99_ms=percentile(hist, 0.99),
        read_p50_ms=percentile(hist_read, 0.50),
        read_p99_ms=percentile(hist_read, 0.99),
        server_cpu_s=cpu,
        server_cores=cpu / published["published_s"],
        per_cpu_s=delivered / cpu if cpu else 0.0,
        client_cpu_s=sum(r["cpu_s"] for r in results) + published["cpu_s"],
        publisher_cpu_s=published["cpu_s"],
        load=os.getloadavg()[0],
    )
    return result


def _us(per_cpu_s: float) -> str:
    return f"{1e6 / per_cpu_s:.1f} us" if per_cpu_s else "n/a"


def _num(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "n/a"


def _ms(value: float | None) -> str:
    return f"{value:>6.1f}ms" if value is not None else "     n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="publishing time per row")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=pathlib.Path, default=REPO, help=argparse.SUPPRESS)
    parser.add_argument("--reader", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--publish", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rows", help="subscribers x events/s, comma-separated (default: 1x1000,10x1000,100x1000,1000x100)"
    )
    parser.add_argument("--per-post", type=int, default=0, help="events per POST (default: 10 ms batches)")
    parser.add_argument("--only", choices=("feed", "naive"), help="run one of the two (no ratio)")
    parser.add_argument("--before", type=pathlib.Path, help="another checkout's feed, measured too (interleaved)")
    parser.add_argument("--readers", type=int, default=4, help="reader processes sharing the subscribers")
    parser.add_argument(
        "--time-every",
        type=int,
        default=1,
        help="time every event of every Nth subscriber (default 1: all); the others' events are counted only",
    )
    parser.add_argument(
        "--reader-nice", type=int, default=0, help="the readers' niceness (above 0: the server goes first)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds per row, alternating which mode goes first")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.tree.resolve())
        return
    if args.reader or args.publish:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if args.reader:
            port, path, subs, total, nice, every = args.reader
            reader(int(port), path, int(subs), int(total), int(nice), int(every))
        else:
            port, rate, seconds, per_post = args.publish
            out = asyncio.run(publisher(int(port), int(rate), float(seconds), int(per_post)))
            print(json.dumps(out), flush=True)
        return
    rows = ROWS
    if args.rows:
        rows = [(int(a), int(b)) for a, b in (row.split("x") for row in args.rows.split(","))]
    modes = [m for m in ("feed", "naive") if args.only in (None, m)]
    trees = {"feed": REPO, "naive": REPO}
    if args.before:
        modes.insert(1, "before")
        trees["before"] = args.before.resolve()
    print(f"modes: {', '.join(modes)}; {args.readers} reader processes; load average {os.getloadavg()[0]:.2f}")
    for subscribers, rate in rows:
        got: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for r in range(args.rounds):
            order = modes if r % 2 == 0 else modes[::-1]
            for mode in order:
                result = run_row(
                    "naive" if mode == "naive" else "feed",
                    subscribers,
                    rate,
                    args.seconds,
                    args.per_post,
                    args.readers,
                    trees[mode],
                    args.reader_nice,
                    args.time_every,
                )
                got[mode].append(result)
                print(
                    f"{subscribers:>5} x {rate:>5}/s round {r + 1} {mode:>6}: "
                    f"{_us(result['per_cpu_s'])} server CPU/delivery, p50 {_ms(result['p50_ms'])}, "
                    f"p99 {_ms(result['p99_ms'])} (read: {_ms(result['read_p50_ms'])}, "
                    f"{_ms(result['read_p99_ms'])}), {result['delivered']}/{result['expected']} delivered, "
                    f"{_num(result['published_per_s'])} ev/s published, slowest subscriber "
                    f"{_num(result['per_subscriber_s'])} ev/s, server {result['server_cores']:.2f} cores, "
                    f"client {result['client_cpu_s']:.1f} CPU-s (publisher {result['publisher_cpu_s']:.1f}), "
                    f"{_num(result.get('per_write'))} events/write, "
                    f"load {result['load']:.2f}",
                    flush=True,
                )
        if args.rounds > 1 or len(modes) > 1:
            for mode in modes:
                rs = got[mode]
                cpu_us = [1e6 / x["per_cpu_s"] if x["per_cpu_s"] else None for x in rs]
                print(
                    f"  {mode:>6} median (min-max) of {len(rs)}: "
                    f"CPU/delivery {_spread(cpu_us, '.2f')} us, "
                    f"p50 {_spread([x['p50_ms'] for x in rs], '.2f')} ms, "
                    f"p99 {_spread([x['p99_ms'] for x in rs], '.2f')} ms (read: p50 "
                    f"{_spread([x['read_p50_ms'] for x in rs], '.2f')}, p99 "
                    f"{_spread([x['read_p99_ms'] for x in rs], '.2f')}), "
                    f"slowest subscriber {_spread([x['per_subscriber_s'] for x in rs], '.0f')} ev/s, "
                    f"server {_spread([x['server_cores'] for x in rs], '.2f')} cores, "
                    f"events/write {_spread([x.get('per_write') for x in rs], '.0f')}, "
                    f"load {_spread([x['load'] for x in rs], '.2f')}",
                    flush=True,
                )
            if "naive" in got and "feed" in got:
                ratios = [f["per_cpu_s"] / n["per_cpu_s"] for f, n in zip(got["feed"], got["naive"], strict=True)]
                print(f"  feed / naive, deliveries per CPU-second: {_spread(ratios, '.2f')}x", flush=True)


def _spread(values: list[Any], fmt: str) -> str:
    known = sorted(v for v in values if v is not None)
    if not known:
        return "n/a"
    return f"{statistics.median(known):{fmt}} ({known[0]:{fmt}}-{known[-1]:{fmt}})"


if __name__ == "__main__":
    main()
