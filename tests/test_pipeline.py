"""The interface between stages: ListSink, the guarded FanoutSink, and a raising sink end to end."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
import pytest

from otel_bridge.app import create_app
from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, Settings, StoreSettings
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind, SpanKind, SpanRecord
from otel_bridge.pipeline import SINK_FAILED, FanoutSink, ListSink, SpanSink
from otel_bridge.stats import Stats


def span(i: int) -> SpanRecord:
    return SpanRecord(
        trace_id=bytes(16 * [1]), span_id=i.to_bytes(8, "big"), parent_span_id=None, name=f"s{i}",
        kind=SpanKind.INTERNAL, start_ns=1, end_ns=2, attributes={},
    )  # fmt: skip


class Exploding:
    """A sink that breaks its contract: it raises on every batch."""

    def __init__(self) -> None:
        self.calls = 0

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self.calls += 1
        raise RuntimeError("disk full")


def test_list_sink_keeps_every_span_in_order() -> None:
    sink = ListSink()
    sink.consume([span(1), span(2)])
    sink.consume([])
    sink.consume([span(3)])
    assert [s.name for s in sink.spans] == ["s1", "s2", "s3"]


def test_fanout_gives_each_sink_the_same_spans_in_order() -> None:
    first, second = ListSink(), ListSink()
    stats = Stats()
    fanout = FanoutSink({"first": first, "second": second}, stats)
    batch = [span(1), span(2)]
    fanout.consume(batch)
    assert first.spans == second.spans == batch
    assert fanout.names == ("first", "second")
    assert stats.dropped == {}


def test_a_raising_sink_is_counted_by_name_and_starves_no_other(caplog: pytest.LogCaptureFixture) -> None:
    before, after, bad = ListSink(), ListSink(), Exploding()
    stats = Stats()
    fanout = FanoutSink({"before": before, "bad": bad, "after": after}, stats)
    with caplog.at_level(logging.ERROR, logger="otel_bridge.pipeline"):
        fanout.consume([span(1), span(2)])
        fanout.consume([span(3)])
    assert [s.name for s in before.spans] == [s.name for s in after.spans] == ["s1", "s2", "s3"]
    assert bad.calls == 2
    assert stats.dropped == {SINK_FAILED + "bad": 3}
    # Logged once with its traceback, not once per batch.
    records = [r for r in caplog.records if r.name == "otel_bridge.pipeline"]
    assert len(records) == 1
    assert "bad" in records[0].getMessage()
    assert records[0].exc_info is not None


def test_the_mapper_counts_the_spans_of_a_raising_sink_and_goes_on() -> None:
    stats = Stats()
    sink: SpanSink = Exploding()
    mapper = SpanMapper(MappingSettings(), sink, stats, clock=lambda: 0.0)
    done = AgentEvent(
        kind=EventKind.LLM_COMPLETED, run_id="r", timestamp_ns=1_000_000, dialect="test", original_type="x",
        call_id="c", model="m",
    )  # fmt: skip
    placements = mapper.process([done])  # does not raise
    assert len(placements) == 1
    assert stats.spans_finished == 1
    assert stats.dropped == {"sink_failed": 1}


async def test_ingest_answers_202_when_a_sink_raises_and_the_other_sinks_get_every_span() -> None:
    settings = Settings(store=StoreSettings(enabled=False), mapping=MappingSettings(run_end_grace_s=0.0))
    kept, bad = ListSink(), Exploding()
    pipeline = assemble(settings, extra_sinks=[bad, kept], pricer=None)
    app = create_app(settings, pipeline)
    body = b"\n".join(
        [
            b'{"kind":"llm.completed","run_id":"r1","call_id":"a","model":"gpt-4o","usage":{"input":12,"output":5}}',
            b'{"kind":"llm.completed","run_id":"r1","call_id":"b","model":"gpt-4o","usage":{"input":3,"output":1}}',
        ]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge") as client:
        response = await client.post("/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 2
        finished = len(kept.spans)
        assert finished == 2  # both chat spans, finished within the request
        health = (await client.get("/v1/health")).json()
    assert health["dropped"] == {SINK_FAILED + "Exploding": finished}
    assert health["spans_finished"] == finished
    assert bad.calls == 1
