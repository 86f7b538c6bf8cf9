"""CPU seconds of a whole process tree, read from /proc: the one measure every benchmark reports.

A sidecar is more than one process (the export worker is a child), so a benchmark
that reads only the parent, or compares wall time of two processes against one,
flatters it. ``tree_cpu_seconds(pid)`` is user + system time of ``pid`` and every
live descendant; take it before and after a round and subtract.
"""

from __future__ import annotations

import os

TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and every live descendant."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / TICKS
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total
