"""Body parsing time against size, up to the 10 MB ingest limit: is it linear?

For each size and each framing (SSE with LF and with CRLF line ends, NDJSON, a
JSON array) it times, in CPU seconds of this process:

* ``frame``: splitting the body into frames (``dialects/framing.py``);
* ``decode``: framing plus JSON decoding, dialect detection and validation
  (``sources.http_ingest.decode_body``: all ingest does before mapping);
* ``floor``: ``bytes.split`` on the line end, interleaved with the others as a
  baseline for the machine's speed at that moment (no framing can do less).

Each figure is the best of ``--repeat`` interleaved runs. ``us/KB`` flat down the
sizes means linear time. Mapping is measured by bench/bench_pipeline.py.

Usage: python bench/bench_parsing.py [--max-mb 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import msgspec

from otel_bridge.dialects.framing import frames_for
from otel_bridge.sources.http_ingest import decode_body

SIZES_MB = (0.25, 0.5, 1, 2, 4, 8, 10)
FORMATS = {
    "sse-lf": ("text/event-stream", b"data: ", b"\n\n"),
    "sse-crlf": ("text/event-stream", b"data: ", b"\r\n\r\n"),
    "ndjson": ("application/x-ndjson", b"", b"\n"),
    "json": ("application/json", b"", b","),
}


def body(fmt: str, size: int) -> bytes:
    _, prefix, end = FORMATS[fmt]
    parts: list[bytes] = []
    total = i = 0
    while total < size:
        event = {
            "kind": "llm.completed",
            "run_id": f"run{i // 50}",
            "call_id": f"c{i}",
            "model": "gpt-4o",
            "duration_ms": 12.5,
            "usage": {"input": 100, "output": 20},
        }
        part = prefix + msgspec.json.encode(event) + end
        parts.append(part)
        total += len(part)
        i += 1
    data = b"".join(parts)
    return b"[" + data[:-1] + b"]" if fmt == "json" else data


def cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-mb", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'format':9} {'MB':>5} {'frames':>7} {'frame s':>8} {'decode s':>9} {'floor s':>8} {'frame us/KB':>12}")
    for fmt, (media, _, end) in FORMATS.items():
        for mb in SIZES_MB:
            if mb > args.max_mb:
                continue
            data = body(fmt, int(mb * 1024 * 1024) - 64)
            sep = b"\n" if end != b"," else b","
            best = {"frame": float("inf"), "decode": float("inf"), "floor": float("inf")}
            n = 0
            for _ in range(args.repeat):
                best["floor"] = min(best["floor"], cpu(lambda: data.split(sep)))  # noqa: B023
                best["frame"] = min(best["frame"], cpu(lambda: frames_for(data, media)))  # noqa: B023
                best["decode"] = min(best["decode"], cpu(lambda: decode_body(data, media)))  # noqa: B023
            n = len(frames_for(data, media))
            per_kb = best["frame"] / (len(data) / 1024) * 1e6
            print(
                f"{fmt:9} {mb:>5} {n:>7} {best['frame']:>8.3f} {best['decode']:>9.3f} {best['floor']:>8.3f}"
                f" {per_kb:>12.2f}"
            )


if __name__ == "__main__":
    main()
