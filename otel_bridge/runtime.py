"""How a long-running otel-bridge process tunes the interpreter and the C library for itself.

Both of the sidecar's processes call these once at start: the server (``otel-bridge serve`` and
``otel-bridge feed``, :mod:`otel_bridge.cli`) and its export worker
(:mod:`otel_bridge.sinks.export.worker`). Each is a choice for a process that handles a steady
stream of short-lived objects and batch-sized buffers, measured in BENCHMARKS.md.
"""

from __future__ import annotations

import ctypes
import gc

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 8 << 20
"""Freed memory glibc keeps for reuse rather than giving back to the system (``M_TRIM_THRESHOLD``)."""
MMAP_FROM_BYTES = 2 << 20
"""Buffers from this size on get their own mapping (``M_MMAP_THRESHOLD``); smaller ones come from the heap."""


def tune_gc() -> None:
    """Make the cyclic GC cheap for a process that allocates many short-lived, acyclic objects.

    With the default thresholds a collection ran every 700 allocations and took a
    third of ingest time (BENCHMARKS.md). The model's structs are not tracked at
    all (``gc=False``); what is left is collected every 50,000 allocations, and the
    objects that live as long as the process (modules, the app) are frozen out of
    every collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def keep_freed_memory() -> None:
    """Where the C library is glibc: keep freed memory for reuse, so batch-sized buffers do not fault pages in anew.

    A batch's buffers (a request body of hundreds of events, an encoded export batch, the request
    around it) are ~100-300 KiB. With glibc's defaults they were mapped and unmapped, or the heap grown
    and trimmed, for every batch, and each page touched again was a page fault: ~150 a batch, ~30 % of
    the export worker's CPU at 10 events a POST, ~64 a 500-event POST in the server (BENCHMARKS.md).
    The cost: up to ``KEEP_FREED_BYTES`` of freed memory stays with the process.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own policy stays
        return
    mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
    mallopt(_M_MMAP_THRESHOLD, MMAP_FROM_BYTES)
