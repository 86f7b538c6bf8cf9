"""The OTLP exporter's batching, retry and drop accounting, with a scripted transport.

The real transports are exercised end to end against a real rotel collector in
test_e2e_collector.py; here the next stage is an in-memory transport so that
each failure mode can be forced.
"""

from __future__ import annotations

import asyncio

from otel_bridge.config import OtlpSettings
from otel_bridge.model import SpanKind, SpanRecord
from otel_bridge.sinks.export.result import Outcome, SendResult
from otel_bridge.sinks.otlp import OtlpExporter
from otel_bridge.stats import Stats


def span(i: int) -> SpanRecord:
    return SpanRecord(
        trace_id=bytes(16 * [1]), span_id=i.to_bytes(8, "big"), parent_span_id=None, name=f"s{i}",
        kind=SpanKind.INTERNAL, start_ns=1, end_ns=2, attributes={},
    )  # fmt: skip


class ScriptedTransport:
    def __init__(self, results: list[SendResult]) -> None:
        self.results = results
        self.bodies: list[bytes] = []

    async def send(self, body: bytes, timeout_s: float) -> SendResult:
        self.bodies.append(body)
        return self.results.pop(0) if self.results else SendResult(Outcome.SUCCESS)

    async def close(self) -> None:
        return None


def exporter(transport: ScriptedTransport, **kw: float) -> tuple[OtlpExporter, Stats]:
    stats = Stats()
    settings = OtlpSettings(endpoint="http://unused", schedule_delay_s=0.01, max_retry_s=2.0, **kw)  # type: ignore[arg-type]
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
