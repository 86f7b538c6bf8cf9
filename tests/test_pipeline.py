"""The interface between stages: ListSink, the guarded FanoutSink, and a raising sink end to end."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Sequence

import httpx
import pytest

from otel_bridge import semconv as sc
from otel_bridge.app import create_app
from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, Settings, StoreSettings
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind, Placement, SpanKind, SpanRecord
from otel_bridge.pipeline import SINK_FAILED, EventConsumer, FanoutSink, ListSink, SpanSink
from otel_bridge.sources.replay import replay_files
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


class RecordingConsumer:
    """An in-memory EventConsumer: what a source submitted, rejected and closed."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self.rejected: list[tuple[str, int]] = []
        self.closed: list[str] = []

    def submit(self, events: Sequence[AgentEvent]) -> list[tuple[AgentEvent, Placement]]:
        self.events.extend(events)
        return [(e, Placement(bytes(16), bytes(8), None)) for e in events]

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected.append((reason, n))

    def close_all(self, reason: str) -> None:
        self.closed.append(reason)


def test_the_stream_decoder_counts_each_rejection_once_through_its_callback() -> None:
    counted: list[str] = []
    decoder = StreamDecoder(StreamContext(source="t", stream_key="k", clock_ns=lambda: 1), on_reject=counted.append)
    events = decoder.feed([Frame(None, b"{nope"), Frame(None, b'{"kind":"run.started","run_id":"r"}')])
    events += decoder.close()
    assert counted == ["invalid_json"]
    assert [(r.index, r.reason) for r in decoder.rejections] == [(0, "invalid_json")]  # kept for the report
    assert [e.kind for e in events] == [EventKind.RUN_STARTED]


def test_replay_talks_to_its_consumer_only(tmp_path: pathlib.Path) -> None:
    capture = tmp_path / "capture.ndjson"
    capture.write_text('{nope\n{"kind":"run.started","run_id":"r"}\n')
    recorder = RecordingConsumer()
    consumer: EventConsumer = recorder  # mypy checks the protocol
    (report,) = replay_files(consumer, [capture], clock_ns=lambda: 1)
    assert [e.kind for e in recorder.events] == [EventKind.RUN_STARTED]
    assert recorder.rejected == [("invalid_json", 1)]
    assert recorder.closed == [sc.CLOSE_END_OF_INPUT]  # runs end through the interface
    assert [r.reason for r in report.rejections] == ["invalid_json"]
