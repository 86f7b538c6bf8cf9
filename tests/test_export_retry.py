"""The retry link: each call has its own budget, the receiver's wait is honoured, permanent failures are final.

A fake clock whose ``sleep`` only moves time makes every schedule exact and instant.
"""

from __future__ import annotations

import random

from otel_bridge.sinks.export.result import Outcome, SendResult
from otel_bridge.sinks.export.retry import BACKOFF_MAX_S, RetrySender
from tests.support.export import FakeClock, Outage


def retrying(transport: Outage, clock: FakeClock, timeout_s: float = 2.0) -> RetrySender:
    return RetrySender(transport, timeout_s, rng=random.Random(5), clock=clock, sleep=clock.sleep)


async def test_retries_until_the_receiver_is_back() -> None:
    clock = FakeClock()
    outage = Outage(clock, until=3.0)
    sender = retrying(outage, clock)
    result = await sender.send(b"x", budget_s=30.0)
    assert result.outcome is Outcome.SUCCESS
    assert outage.attempts[-1][0] >= 3.0
    assert all(0.125 <= d <= BACKOFF_MAX_S for d in clock.sleeps)
    assert sender.last_error is None


async def test_gives_up_when_the_next_wait_would_pass_the_budget() -> None:
    clock = FakeClock()
    outage = Outage(clock, until=1e9)
    sender = retrying(outage, clock)
    result = await sender.send(b"x", budget_s=10.0)
    assert result == SendResult(Outcome.RETRYABLE, "HTTP 503: down")
    assert clock.now <= 10.0
    assert len(outage.attempts) > 3
    assert sender.last_error == "HTTP 503: down"


async def test_each_attempt_is_bounded_by_the_timeout_and_the_budget_left() -> None:
    clock = FakeClock()
    outage = Outage(clock, until=1e9)
    await retrying(outage, clock, timeout_s=2.0).send(b"x", budget_s=3.0)
    timeouts = [t for _, t in outage.attempts]
    assert timeouts[0] == 2.0
    assert all(0.1 <= t <= 2.0 for t in timeouts)
    assert any(t < 2.0 for t in timeouts)  # the last attempts get only what is left


async def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    outage = Outage(clock, until=1.0, retry_after_s=4.0)
    result = await retrying(outage, clock).send(b"x", budget_s=30.0)
    assert result.outcome is Outcome.SUCCESS
    assert clock.sleeps == [4.0]  # longer than any first backoff: the receiver's wait wins


async def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    clock = FakeClock()
    outage = Outage(clock, until=1.0, retry_after_s=60.0)
    result = await retrying(outage, clock).send(b"x", budget_s=30.0)
    assert result.outcome is Outcome.RETRYABLE
    assert (len(outage.attempts), clock.sleeps) == (1, [])


async def test_a_permanent_failure_is_not_retried() -> None:
    clock = FakeClock()

    class Rejecting(Outage):
        async def send(self, body: bytes, timeout_s: float) -> SendResult:
            self.attempts.append((self.clock(), timeout_s))
            return SendResult(Outcome.PERMANENT, "HTTP 400: bad")

    transport = Rejecting(clock, until=0)
    sender = retrying(transport, clock)
    assert await sender.send(b"x", budget_s=30.0) == SendResult(Outcome.PERMANENT, "HTTP 400: bad")
    assert (len(transport.attempts), clock.sleeps) == (1, [])
    assert sender.last_error == "HTTP 400: bad"


async def test_each_call_gets_its_own_budget() -> None:
    clock = FakeClock()
    outage = Outage(clock, until=1e9)
    sender = retrying(outage, clock)
    await sender.send(b"first", budget_s=10.0)
    first_done, first_attempts = clock.now, len(outage.attempts)
    await sender.send(b"second", budget_s=10.0)
    assert clock.now > first_done + 5.0  # the second call spent a budget of its own
    assert len(outage.attempts) - first_attempts > 3


async def test_close_closes_the_transport() -> None:
    clock = FakeClock()
    outage = Outage(clock, until=0)
    await retrying(outage, clock).close()
    assert outage.closed
