"""What the memory budget costs: reading the memory, one check, one admit, one forced reclaim.

``admit`` runs on every ingest request and ``check`` once per
``limits.check_interval_s``; the reclaim (a full garbage collection, then
``malloc_trim``) only above the soft limit. Each figure is CPU time of this
process (``time.process_time``), the best of ``--repeat`` rounds; the reclaim is
timed with a small heap and again with ``--objects`` live objects (dicts holding
a list, about the shape of an open span's attributes), since a full collection
walks every tracked object.

Usage: python bench/bench_limits.py [--repeat 5] [--objects 1000000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from otel_bridge.config import LimitsSettings
from otel_bridge.limits import MemoryGuard, process_rss_mb, reclaim_memory
from otel_bridge.stats import Stats


def best_per_call(fn: Callable[[], object], calls: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _call in range(calls):
            fn()
        best = min(best, (time.process_time() - start) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--objects", type=int, default=1_000_000)
    args = parser.parse_args()
    guard = MemoryGuard(LimitsSettings(max_memory_mb=1_000_000), Stats(), shed=lambda _: 0, open_runs=lambda: 0)
    guard.check()
    print(f"read RSS      {best_per_call(process_rss_mb, 20_000, args.repeat) * 1e6:8.1f} us")
    print(f"check         {best_per_call(guard.check, 20_000, args.repeat) * 1e6:8.1f} us")
    print(f"admit         {best_per_call(lambda: guard.admit('http'), 200_000, args.repeat) * 1e9:8.0f} ns")
    small = best_per_call(reclaim_memory, 10, args.repeat)
    print(f"reclaim       {small * 1e3:8.1f} ms  (RSS {process_rss_mb():.0f} MB)")
    live = [{"a": i, "b": [i]} for i in range(args.objects)]
    print(
        f"reclaim       {best_per_call(reclaim_memory, 1, args.repeat) * 1e3:8.1f} ms"
        f"  with {len(live):,} more live objects (RSS {process_rss_mb():.0f} MB)"
    )


if __name__ == "__main__":
    main()
