"""OTLP/HTTP send: CPU per request of each HTTP leaf, posting real export requests to a real rotel collector.

The bodies are what the export worker sends: bench_pipeline's workload mapped in process and
encoded to one ``ExportTraceServiceRequest`` per batch of 512 spans. Each leaf
(``lean``: ``sinks/export/lean_http.py``; ``httpx``: ``sinks/export/http_transport.py``, the leaf
before it) posts every body once per round on one kept-alive connection, on its own event loop;
rounds alternate the order. The figure is this process's CPU time (``process_time``) per request,
median and spread over the rounds; rotel runs in its own process and is not counted.

Usage: python bench/bench_otlp_http.py [--rounds 9] [--runs 2000] [--gzip]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from otel_bridge.config import OtlpEndpoint
from otel_bridge.sinks import otlp_proto
from otel_bridge.sinks.export.http_transport import HttpTransport
from otel_bridge.sinks.export.lean_http import LeanHttpTransport
from otel_bridge.sinks.export.result import Outcome, Transport

REPO = Path(__file__).resolve().parents[1]
BATCH = 512


async def post_all(transport: Transport, bodies: list[bytes]) -> float:
    """CPU seconds for posting every body (after one warm-up request that opens the connection)."""
    result = await transport.send(bodies[0], 10.0)
    assert result.outcome is Outcome.SUCCESS, result
    cpu0 = time.process_time()
    for body in bodies:
        result = await transport.send(body, 10.0)
        assert result.outcome is Outcome.SUCCESS, result
    cpu = time.process_time() - cpu0
    await transport.close()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    import bench_encoder
    import bench_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        spans = bench_encoder.workload_spans(args.runs, Path(tmp))
    encoder = otlp_proto.ProtoEncoder(bench_encoder.RESOURCE, "bench", "1", "")
    bodies = [encoder.encode(spans[i : i + BATCH]) for i in range(0, len(spans), BATCH)]
    collector = bench_pipeline.Rotel()
    settings = OtlpEndpoint(
        endpoint=f"http://127.0.0.1:{collector.http}/v1/traces", compression="gzip" if args.gzip else "none"
    )
    leaves: dict[str, type[LeanHttpTransport | HttpTransport]] = {"lean": LeanHttpTransport, "httpx": HttpTransport}
    per_request: dict[str, list[float]] = {name: [] for name in leaves}
    try:
        for i in range(args.rounds):
            order = list(leaves) if i % 2 == 0 else list(leaves)[::-1]
            for name in order:
                cpu = asyncio.run(post_all(leaves[name](settings), bodies))
                per_request[name].append(cpu / len(bodies) * 1e6)
    finally:
        collector.stop()
    size = sum(map(len, bodies)) / len(bodies)
    print(
        f"{len(bodies)} requests of {BATCH} spans ({size / 1024:.0f} KiB each{', gzip' if args.gzip else ''}), "
        f"{args.rounds} interleaved rounds; CPU us per request, median (min-max)"
    )
    for name, xs in per_request.items():
        print(f"  {name:6} {statistics.median(xs):8.0f} ({min(xs):.0f}-{max(xs):.0f})")
    ratio = [h / lean for h, lean in zip(per_request["httpx"], per_request["lean"], strict=True)]
    print(f"  httpx / lean: {statistics.median(ratio):.2f}x ({min(ratio):.2f}-{max(ratio):.2f})")


if __name__ == "__main__":
    main()
