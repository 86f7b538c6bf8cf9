"""A fake clock and a scripted outage for the export chain's retry tests."""

from __future__ import annotations

import asyncio

from otel_bridge.sinks.export.result import Outcome, SendResult


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Outage:
    """Retryable failures until ``until`` on the clock, then success; remembers when each attempt came."""

    def __init__(self, clock: FakeClock, until: float, retry_after_s: float | None = None) -> None:
        self.clock, self.until, self.retry_after_s = clock, until, retry_after_s
        self.attempts: list[tuple[float, float]] = []  # (time, attempt timeout)
        self.bodies: list[bytes] = []
        self.successes = 0
        self._success = asyncio.Event()
        self.closed = False

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        self.attempts.append((self.clock(), timeout_s))
        self.bodies.append(body)
        if self.clock() < self.until:
            return SendResult(Outcome.RETRYABLE, "HTTP 503: down", self.retry_after_s)
        self.successes += 1
        self._success.set()
        return SendResult(Outcome.SUCCESS)

    async def succeeded(self, times: int) -> None:
        """Until ``times`` attempts have succeeded."""
        while self.successes < times:
            self._success.clear()
            await self._success.wait()

    async def close(self) -> None:
        self.closed = True
