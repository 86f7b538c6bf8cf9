"""The retry link: one request's bytes, tried again on retryable failures within a budget.

Each call gets its own budget (``budget_s`` from its first attempt) and its own
:class:`~otel_bridge.backoff.Backoff`, so a long outage costs every queued batch
its full retry time rather than letting the first batch spend a deadline that
the ones behind it share. Each attempt is bounded by the export timeout and by
what is left of the budget; the wait between attempts is the shared jittered
backoff, never shorter than the receiver's ``Retry-After``/``RetryInfo``. A
permanent failure is returned at once; a retryable one is returned when the
next wait would pass the budget.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from otel_bridge.backoff import Backoff
from otel_bridge.sinks.export.result import Outcome, SendResult, Transport

BACKOFF_INITIAL_S = 0.25
BACKOFF_MAX_S = 5.0
_MIN_ATTEMPT_S = 0.1
"""An attempt with (almost) no budget left still gets this long: a last try, not none."""


class RetrySender:
    """Wraps a :class:`Transport`; ``last_error`` is the latest failed attempt's detail, ``None`` after a success."""

    def __init__(
        self,
        transport: Transport,
        timeout_s: float,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.transport = transport
        self._timeout_s = timeout_s
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self.last_error: str | None = None

    async def send(self, body: bytes, budget_s: float) -> SendResult:
        """The first success, the first permanent failure, or the last retryable one once the budget is spent."""
        deadline = self._clock() + budget_s
        backoff = Backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S, self._rng)
        while True:
            remaining = deadline - self._clock()
            result = await self.transport.send(body, max(_MIN_ATTEMPT_S, min(self._timeout_s, remaining)))
            if result.outcome is Outcome.SUCCESS:
                self.last_error = None
                return result
            self.last_error = result.detail
            if result.outcome is Outcome.PERMANENT:
                return result
            delay = backoff.next_delay(result.retry_after_s)
            if self._clock() + delay > deadline:
                return result
            await self._sleep(delay)

    async def close(self) -> None:
        await self.transport.close()
