"""The memory budget: one guard that samples the process's memory and says whether to take new work.

Per-object bounds (runs, spans per run, traces, feed events) do not bound
memory: many objects each inside their bound still add up. :class:`MemoryGuard`
is the one budget over all of them, enforced the way the collector's
``memory_limiter`` does it (``limits`` in the settings):

* below the soft limit (``memory_soft_pct`` of ``max_memory_mb``) everything
  is admitted;
* above it, new work is refused: ``admit`` says no (ingest answers 503 with
  ``Retry-After``) and ``wait_admitted`` holds subscribed sources before their
  next read, so the upstream is back-pressured rather than dropped;
* above the hard limit (``max_memory_mb``) the least recently active open
  runs are also closed early (a tenth of them per check, at least one),
  counted as ``dropped.memory_limit``;
* back below the soft limit, work resumes.

Why resident memory, sampled: it is what the kernel's OOM killer and a
container limit see, and reading ``/proc/self/statm`` once per
``check_interval_s`` costs microseconds, where counting bytes per event (or
tracemalloc) would tax every event. ``admit`` only reads the last verdict.

CPython seldom hands freed memory back to the system by itself, so the
resident size would stay at its peak after the work that caused it is gone,
and the guard would refuse forever. Above the soft limit the guard therefore
forces a garbage collection and returns freed heap to the system (glibc's
``malloc_trim``) before deciding, on the first check over the limit and every
:data:`RECLAIM_EVERY_CHECKS` checks after that (every check above the hard
limit, after shedding): a full collection of a large heap is not free.

Concurrency: :meth:`MemoryGuard.start` runs the sampler as one task on the
event loop; the mapper's ``shed`` is called from that task, like every other
call into the mapper, so nothing needs a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import enum
import gc
import logging
import math
import os
import resource
import sys
from collections.abc import Callable

from otel_bridge.aio import cancel_and_wait
from otel_bridge.config import LimitsSettings
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

SHED_FRACTION = 0.1
"""Open runs closed per check above the hard limit: enough to matter within a few checks, not all at once."""
RECLAIM_EVERY_CHECKS = 5
"""Above the soft limit, a forced collection on the first check and then every this many checks."""
REFUSED_BY = "memory_limit"
"""The error code of a refused request and the reason runs shed by the budget are counted under."""


class MemoryState(enum.Enum):
    OK = "ok"
    SOFT = "soft"  # refusing new work
    HARD = "hard"  # refusing new work and closing the oldest open runs


def _statm_rss_mb() -> float:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    # Without /proc only the peak is known (KiB on Linux, bytes on macOS): the budget then never relaxes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def process_rss_mb() -> float:
    """This process's resident memory now, in MiB (the peak where ``/proc`` is missing)."""
    try:
        return _statm_rss_mb()
    except OSError:
        return _peak_rss_mb()


def _malloc_trim() -> Callable[[], object] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError, AttributeError):
        trim = ctypes.CDLL(name).malloc_trim
        return lambda: trim(0)
    return None  # not glibc


_TRIM = _malloc_trim()


def reclaim_memory() -> None:
    """A full garbage collection, then freed heap handed back to the system where the C library can."""
    gc.collect()
    if _TRIM is not None:
        _TRIM()


class MemoryGuard:
    """Samples resident memory every ``check_interval_s`` and decides: admit, refuse, or also shed.

    ``shed(n)`` closes the ``n`` least recently active open runs and returns
    how many it closed; ``open_runs()`` is how many are open.
    ``read_rss_mb`` and ``reclaim`` are injected by tests (a fake memory).
    """

    def __init__(
        self,
        settings: LimitsSettings,
        stats: Stats,
        *,
        shed: Callable[[int], int],
        open_runs: Callable[[], int],
        read_rss_mb: Callable[[], float] = process_rss_mb,
        reclaim: Callable[[], None] = reclaim_memory,
    ) -> None:
        self.hard_mb = settings.max_memory_mb
        self.soft_mb = settings.soft_limit_mb
        self._interval_s = settings.check_interval_s
        self._stats = stats
        self._shed = shed
        self._open_runs = open_runs
        self._read_rss_mb = read_rss_mb
        self._reclaim = reclaim
        self.state = MemoryState.OK
        self.rss_mb = 0.0
        self.runs_shed = 0
        self._checks_over = 0  # consecutive checks above the soft limit
        self._admitted = asyncio.Event()
        self._admitted.set()
        self._task: asyncio.Task[None] | None = None

    # -- the verdict ---------------------------------------------------------------------------------------
    @property
    def refusing(self) -> bool:
        return self.state is not MemoryState.OK

    @property
    def retry_after_s(self) -> int:
        """What a refused client is told to wait: the next check can change the verdict."""
        return max(1, math.ceil(self._interval_s))

    @property
    def reason(self) -> str | None:
        """Why work is refused now (for health), ``None`` while admitting."""
        if self.state is MemoryState.OK:
            return None
        what = (
            "refusing new work and closing the oldest open runs"
            if self.state is MemoryState.HARD
            else "refusing new work"
        )
        limit = self.hard_mb if self.state is MemoryState.HARD else self.soft_mb
        which = "hard" if self.state is MemoryState.HARD else "soft"
        return f"memory {self.rss_mb:.0f} MiB is over the {which} limit of {limit:.0f} MiB: {what}"

    def admit(self, where: str) -> bool:
        """Whether to take new work now; a refusal is counted under ``where``. No system call."""
        if self.state is MemoryState.OK:
            return True
        self._stats.memory_refusals[where] += 1
        return False

    async def wait_admitted(self, where: str) -> None:
        """Return at once while admitting; else count one refusal under ``where`` and wait until admitted."""
        if self.state is MemoryState.OK:
            return
        self._stats.memory_refusals[where] += 1
        await self._admitted.wait()

    # -- sampling ------------------------------------------------------------------------------------------
    def check(self) -> MemoryState:
        """Read the memory once and act on it (the sampler calls this; tests call it directly)."""
        rss = self._read_rss_mb()
        if rss >= self.soft_mb:
            if rss >= self.hard_mb:
                self._shed_some()
            if rss >= self.hard_mb or self._checks_over % RECLAIM_EVERY_CHECKS == 0:
                self._reclaim()
                rss = self._read_rss_mb()
            self._checks_over += 1
        else:
            self._checks_over = 0
        self.rss_mb = rss
        state = MemoryState.HARD if rss >= self.hard_mb else MemoryState.SOFT if rss >= self.soft_mb else MemoryState.OK
        if state is not self.state:
            log.warning("memory %.0f MiB: %s -> %s", rss, self.state.value, state.value)
            self.state = state
            if state is MemoryState.OK:
                self._admitted.set()
            else:
                self._admitted.clear()
        return state

    def _shed_some(self) -> None:
        n = max(1, math.ceil(self._open_runs() * SHED_FRACTION))
        shed = self._shed(n)
        if shed:
            self.runs_shed += shed
            self._stats.drop(REFUSED_BY, shed)
            log.warning("memory over the hard limit of %.0f MiB: closed the %d oldest open runs", self.hard_mb, shed)

    async def _sample_forever(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # the guard must not die: a failed read keeps the last verdict
                log.exception("memory check failed")
            await asyncio.sleep(self._interval_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sample_forever(), name="memory-guard")

    async def shutdown(self) -> None:
        """Stop sampling and release whoever waits. Safe without ``start``."""
        await cancel_and_wait(self._task)
        self._task = None
        self._admitted.set()

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "rss_mb": round(self.rss_mb, 1),
            "soft_limit_mb": round(self.soft_mb, 1),
            "hard_limit_mb": round(self.hard_mb, 1),
            "runs_shed": self.runs_shed,
        }
