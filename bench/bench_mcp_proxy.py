"""What the MCP proxy adds to a tool call: latency per call through the sidecar vs direct, and its CPU.

The real MCP SDK on both sides (mcp 2.3.0 from scripts/install-tools.sh, in its own virtualenv):
its ``MCPServer`` on Streamable HTTP (tests/support/mcp_producer.py, loopback) and one SDK
``Client`` per path, both open for the whole run: one straight to the server, one through a
real ``otel-bridge serve --mcp-upstream`` process (embedded store on, no OTLP endpoint, so the
spans are mapped and stored but not sent). The client calls ``tools/call reorder_quote`` in
blocks that alternate between the two paths round by round (the order flips every round), and
times each call in the client. Per era (``legacy``: the 2025-11-25 handshake, SSE answers;
``auto``: the stateless 2026-07-28 era, JSON answers): p50 and p99 of each path, the added
latency (proxy minus direct), and the sidecar's CPU (its process tree, from /proc) per
proxied call, measured around the proxied blocks only. Every proxied call is traced
(``spans_finished`` from /v1/health is checked against the number of calls).

Usage: python bench/bench_mcp_proxy.py [--rounds 10] [--calls 100] [--eras legacy,auto] [--profile FILE]
(the same file, run by the SDK's python with ``--client``, is the timing client).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MCP_PYTHON = REPO / ".tools" / "mcp-2.3.0" / "bin" / "python"
PRODUCER = REPO / "tests" / "support" / "mcp_producer.py"
sys.path.insert(0, str(REPO))  # the timing client runs this file under the MCP SDK's python

from bench.proctree import tree_cpu_seconds  # noqa: E402  (standard library only: any python imports it)

# -- the timing client (run by the SDK's python) ------------------------------------------------


def client_main(
    direct: str, proxied: str, mode: str, rounds: int, calls: int, sidecar_pid: int, server_pid: int
) -> None:
    import asyncio
    import warnings

    warnings.simplefilter("ignore")
    from mcp import Client

    async def run() -> dict[str, object]:
        args = {"sku": "SKU-44120", "qty": 600}
        async with Client(direct, mode=mode, cache=None) as d, Client(proxied, mode=mode, cache=None) as p:
            for c in (d, p):  # warm both paths (connections, first-call costs)
                for _ in range(20):
                    await c.call_tool("reorder_quote", args)
            latency: dict[str, list[float]] = {"direct": [], "proxy": []}
            sidecar_cpu = {"direct": 0.0, "proxy": 0.0}
            server_cpu = {"direct": 0.0, "proxy": 0.0}
            for r in range(rounds):
                order = [("direct", d), ("proxy", p)]
                for name, c in order if r % 2 == 0 else order[::-1]:
                    cpu0, server0 = tree_cpu_seconds(sidecar_pid), tree_cpu_seconds(server_pid)
                    for _ in range(calls):
                        t0 = time.perf_counter()
                        await c.call_tool("reorder_quote", args)
                        latency[name].append(time.perf_counter() - t0)
                    sidecar_cpu[name] += tree_cpu_seconds(sidecar_pid) - cpu0
                    server_cpu[name] += tree_cpu_seconds(server_pid) - server0
            return {"latency": latency, "sidecar_cpu": sidecar_cpu, "server_cpu": server_cpu}

    print(json.dumps(asyncio.run(run())))


# -- the driver -------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    import socket

    for _ in range(600):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--eras", default="legacy,auto")
    parser.add_argument("--profile", metavar="FILE", help="run the sidecar under cProfile, its stats to FILE")
    parser.add_argument("--client", nargs=5, metavar=("DIRECT", "PROXIED", "MODE", "ROUNDS", "CALLS"))
    parser.add_argument("--sidecar-pid", type=int, default=0)
    parser.add_argument("--server-pid", type=int, default=0)
    args = parser.parse_args()
    if args.client:
        direct, proxied, mode, rounds, calls = args.client
        client_main(direct, proxied, mode, int(rounds), int(calls), args.sidecar_pid, args.server_pid)
        return
    if not MCP_PYTHON.exists():
        raise SystemExit("the MCP SDK is not installed: run scripts/install-tools.sh")
    server_port, sidecar_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{server_port}/mcp"
    server = subprocess.Popen([str(MCP_PYTHON), str(PRODUCER), "server", str(server_port)], stderr=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_METRICS_EXPORTER"] = "none"
    sidecar = subprocess.Popen(
        [sys.executable, *(["-m", "cProfile", "-o", args.profile] if args.profile else []),
         "-m", "otel_bridge", "serve", "--port", str(sidecar_port), "--mcp-upstream", upstream,
         "--log-level", "warning"],
        env=env, cwd=REPO,
    )  # fmt: skip
    try:
        wait_port(server_port)
        wait_port(sidecar_port)
        print(f"rounds {args.rounds} x {args.calls} calls per path, interleaved; machine: {os.cpu_count()} cores")
        for era in args.eras.split(","):
            done = subprocess.run(
                [str(MCP_PYTHON), __file__, "--client", upstream, f"http://127.0.0.1:{sidecar_port}/mcp", era,
                 str(args.rounds), str(args.calls), "--sidecar-pid", str(sidecar.pid), "--server-pid", str(server.pid)],
                capture_output=True, timeout=3600,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"the timing client failed:\n{done.stderr.decode()[-3000:]}")
            out = json.loads(done.stdout)
            lat, cpu, server_cpu = out["latency"], out["sidecar_cpu"], out["server_cpu"]
            d50, d99 = pct(lat["direct"], 0.5) * 1e3, pct(lat["direct"], 0.99) * 1e3
            p50, p99 = pct(lat["proxy"], 0.5) * 1e3, pct(lat["proxy"], 0.99) * 1e3
            n = len(lat["proxy"])
            print(
                f"{era:7} direct p50 {d50:.2f} ms p99 {d99:.2f} ms | proxy p50 {p50:.2f} ms p99 {p99:.2f} ms | "
                f"added p50 {p50 - d50:+.2f} ms p99 {p99 - d99:+.2f} ms | mean direct "
                f"{statistics.fmean(lat['direct']) * 1e3:.2f} proxy {statistics.fmean(lat['proxy']) * 1e3:.2f} ms | "
                f"sidecar CPU {cpu['proxy'] / n * 1e3:.2f} ms per proxied call "
                f"({cpu['direct']:.2f} s during the direct blocks) | the MCP server's CPU "
                f"{server_cpu['direct'] / len(lat['direct']) * 1e3:.2f} ms per call"
            )
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{sidecar_port}/v1/health") as answer:
            health = json.load(answer)
        print(
            f"traced: {health['spans_finished']} spans finished, {health['events_received']} events, "
            f"rejected {health['events_rejected']}, dropped {health['dropped']}"
        )
    finally:
        sidecar.terminate()
        server.terminate()
        sidecar.wait(30)
        server.wait(30)


if __name__ == "__main__":
    main()
