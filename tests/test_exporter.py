"""The OTLP exporter's batching, retry and drop accounting, with a scripted transport.

The real transports are exercised end to end against a real rotel collector in
test_e2e_collector.py; here the next stage is an in-memory transport so that
each failure mode can be forced.
"""

from __future__ import annotations

import asyncio
import pathlib
import random

import pytest

from otel_bridge.config import OtlpSettings
from otel_bridge.model import SpanKind, SpanRecord
from otel_bridge.sinks.export.batching import BatchingExporter
from otel_bridge.sinks.export.durable_queue import DurableQueue
from otel_bridge.sinks.export.queue import BatchQueue, SpanQueue
from otel_bridge.sinks.export.result import Outcome, SendResult
from otel_bridge.sinks.export.retry import RetrySender
from otel_bridge.sinks.export.sender import OtlpBatchSender
from otel_bridge.sinks.otlp import OtlpExporter
from otel_bridge.stats import Stats
from tests.support.export import FakeClock, Outage


def span(i: int) -> SpanRecord:
    return SpanRecord(
        trace_id=bytes(16 * [1]), span_id=i.to_bytes(8, "big"), parent_span_id=None, name=f"s{i}",
        kind=SpanKind.INTERNAL, start_ns=1, end_ns=2, attributes={},
    )  # fmt: skip


class ScriptedTransport:
    def __init__(self, results: list[SendResult]) -> None:
        self.results = results
        self.bodies: list[bytes] = []
        self.sent = asyncio.Event()

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        self.bodies.append(body)
        self.sent.set()
        return self.results.pop(0) if self.results else SendResult(Outcome.SUCCESS)

    async def close(self) -> None:
        return None


def exporter(transport: ScriptedTransport, **kw: float) -> tuple[OtlpExporter, Stats]:
    stats = Stats()
    settings = OtlpSettings(endpoint="http://unused", **{"schedule_delay_s": 0.01, "max_retry_s": 2.0, **kw})  # type: ignore[arg-type]
    return OtlpExporter(settings, stats, {}, ("t", "0"), "", transport=transport), stats


async def test_retryable_failures_are_retried_then_succeed() -> None:
    t = ScriptedTransport([SendResult(Outcome.RETRYABLE, "HTTP 503"), SendResult(Outcome.RETRYABLE, "conn reset")])
    exp, stats = exporter(t)
    await exp.start()
    exp.consume([span(i) for i in range(3)])
    await exp.shutdown()
    assert len(t.bodies) == 3
    assert t.bodies[0] == t.bodies[2]
    assert stats.spans_exported == {"otlp": 3}
    assert stats.dropped == {}


async def test_permanent_failure_drops_the_batch_and_counts_it() -> None:
    t = ScriptedTransport([SendResult(Outcome.PERMANENT, "HTTP 400: bad")])
    exp, stats = exporter(t)
    await exp.start()
    exp.consume([span(1), span(2)])
    await exp.shutdown()
    assert len(t.bodies) == 1
    assert stats.dropped == {"export_permanent_error": 2}
    assert stats.spans_export_failed == {"otlp": 2}
    assert exp.last_error == "HTTP 400: bad"


async def test_retries_stop_at_the_deadline() -> None:
    t = ScriptedTransport([SendResult(Outcome.RETRYABLE, "down", retry_after_s=5.0)])
    exp, stats = exporter(t, timeout_s=1.0)
    await exp.start()
    exp.consume([span(1)])
    await exp.shutdown()
    assert stats.dropped == {"export_retries_exhausted": 1}


async def test_full_queue_drops_and_counts_without_blocking() -> None:
    t = ScriptedTransport([])
    exp, stats = exporter(t, max_queue_spans=5, max_batch_spans=100)
    exp.consume([span(i) for i in range(8)])
    assert exp.queue_depth == 5
    assert stats.dropped == {"export_queue_full": 3}
    await exp.start()
    await exp.shutdown()
    assert stats.spans_exported == {"otlp": 5}


async def test_batches_are_cut_at_max_batch_spans() -> None:
    t = ScriptedTransport([])
    exp, stats = exporter(t, max_batch_spans=2)
    await exp.start()
    exp.consume([span(i) for i in range(5)])
    await asyncio.sleep(0.1)
    await exp.shutdown()
    assert len(t.bodies) == 3
    assert stats.spans_exported == {"otlp": 5}


async def test_partial_success_is_counted() -> None:
    t = ScriptedTransport([SendResult(Outcome.SUCCESS, "too old", rejected=1)])
    exp, stats = exporter(t)
    await exp.start()
    exp.consume([span(1), span(2)])
    await exp.shutdown()
    assert stats.spans_exported == {"otlp": 1}
    assert stats.dropped == {"export_rejected_by_receiver": 1}


async def test_shutdown_is_safe_without_start() -> None:
    exp, stats = exporter(ScriptedTransport([]))
    exp.consume([span(1)])
    await exp.shutdown()
    assert stats.dropped == {"export_shutdown": 1}


async def test_issue13_each_queued_batch_gets_its_own_retry_budget() -> None:
    """Regression (issue 13, item 2): one deadline used to cover everything queued.

    When the first batch had spent ``max_retry_s`` on an outage, every batch
    queued behind it got one attempt and was dropped, although the queue had
    room and the receiver came back soon after. The outage below outlasts the
    first batch's budget but not the second's: only the first may be lost.
    """
    clock = FakeClock()
    outage = Outage(clock, until=10.0)  # any first batch's give-up is > 5 s in, so the second's is > 10 s
    stats = Stats()
    settings = OtlpSettings(endpoint="http://unused", max_batch_spans=1, max_retry_s=10.0, schedule_delay_s=0.01)
    sender = OtlpBatchSender(
        stats,
        lambda batch: batch[0].name.encode(),
        lambda: RetrySender(outage, 1.0, rng=random.Random(9), clock=clock, sleep=clock.sleep),
        "otlp",
    )
    exp = BatchingExporter(settings, stats, sender)
    exp.consume([span(1), span(2), span(3)])
    await exp.start()
    async with asyncio.timeout(5):
        await outage.succeeded(2)
    await exp.shutdown()
    assert stats.dropped == {"export_retries_exhausted": 1}
    assert stats.spans_exported == {"otlp": 2}
    assert outage.bodies[-2:] == [b"s2", b"s3"]


async def test_a_full_batch_is_sent_without_waiting_for_the_schedule() -> None:
    t = ScriptedTransport([])
    exp, stats = exporter(t, max_batch_spans=3, schedule_delay_s=60.0)
    await exp.start()
    exp.consume([span(i) for i in range(3)])
    async with asyncio.timeout(5):
        await t.sent.wait()
    assert stats.spans_exported == {"otlp": 3}
    await exp.shutdown()


async def test_a_partial_batch_waits_for_the_schedule() -> None:
    queue = BatchQueue(max_spans=10, batch_spans=3, stats=Stats())
    queue.offer([span(1)])
    waiting = asyncio.create_task(queue.wait_batch(60.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    queue.offer([span(2), span(3)])  # now a full batch: the drainer wakes at once
    async with asyncio.timeout(5):
        await waiting
    assert [s.name for s in queue.take()] == ["s1", "s2", "s3"]


@pytest.mark.parametrize("kind", ["memory", "durable"])
async def test_an_empty_queue_waits_for_its_first_span_with_no_timer(kind: str, tmp_path: pathlib.Path) -> None:
    """An idle exporter never wakes: the schedule runs from the first span queued, not from the last wake-up."""
    queue: SpanQueue = (
        BatchQueue(max_spans=10, batch_spans=3, stats=Stats())
        if kind == "memory"
        else DurableQueue(tmp_path, max_bytes=1 << 20, batch_spans=3, stats=Stats())
    )
    waiting = asyncio.create_task(queue.wait_batch(0.05))
    await asyncio.sleep(0.3)  # six schedules: still waiting, nothing is queued
    assert not waiting.done()
    queue.offer([span(1)])  # the first span: the schedule (0.05 s) starts now
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(5):
        await waiting
    assert asyncio.get_running_loop().time() - started >= 0.04
    assert len(queue) == 1
    idle = asyncio.create_task(queue.wait_batch(60.0))
    await asyncio.sleep(0.05)
    queue.wake()  # shutdown: an empty wait ends at once
    async with asyncio.timeout(5):
        await idle
    queue.close()


def test_a_full_queue_counts_what_it_refuses() -> None:
    stats = Stats()
    queue = BatchQueue(max_spans=4, batch_spans=2, stats=stats)
    queue.offer([span(i) for i in range(3)])
    queue.offer([span(i) for i in range(3, 6)])
    assert len(queue) == 4
    assert stats.dropped == {"export_queue_full": 2}
    assert [s.name for s in queue.take()] == ["s0", "s1"]  # oldest first, one batch


async def test_a_bug_in_a_sender_does_not_end_export() -> None:
    class Flaky:
        last_error: str | None = None
        held = 0

        def __init__(self) -> None:
            self.sent: list[str] = []

        async def start(self) -> None:
            return None

        async def send_batch(self, batch: list[SpanRecord], budget_s: float) -> None:
            if batch[0].name == "s1":
                raise ValueError("bug")
            self.sent += [s.name for s in batch]

        async def close(self) -> None:
            return None

    stats = Stats()
    flaky = Flaky()
    exp = BatchingExporter(OtlpSettings(endpoint="http://unused", max_batch_spans=1), stats, flaky)
    exp.consume([span(1), span(2)])
    await exp.start()
    await exp.shutdown()
    assert flaky.sent == ["s2"]
    assert stats.dropped == {"export_internal_error": 1}
