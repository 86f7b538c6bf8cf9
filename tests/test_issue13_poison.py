"""Issue 13, item 2: no value can stop export. Out-of-range values are rejected where events are built,
the encoders clamp whatever still gets through, and a batch that fails to encode loses only its bad span."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable

import httpx
import msgspec
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_bridge.config import IngestSettings
from otel_bridge.dialects.base import DURATION_MAX_MS, TIME_MAX_NS, ValueRangeError, check_event, parse_timestamp
from otel_bridge.model import AgentEvent, EventKind, SpanEventRecord, SpanKind, SpanRecord
from otel_bridge.sinks import otlp_json
from otel_bridge.sinks.export.sender import OtlpBatchSender
from otel_bridge.sinks.otlp_proto import ProtoEncoder
from otel_bridge.sources.http_ingest import IngestError, ingest_body
from otel_bridge.stats import Stats
from tests.support.rotel import Rotel
from tests.support.server import BridgeProcess

_OK = '{"kind": "llm.completed", "run_id": "r", "call_id": "c", "model": "m", "timestamp": 1767225600.0'

POISON: list[tuple[str, str]] = [
    # (the event's JSON, the reason it is rejected for)
    ('{"kind": "run.started", "run_id": "p", "timestamp": 1e20}', "timestamp_out_of_range"),
    ('{"kind": "run.started", "run_id": "p", "timestamp": "0001-01-01T00:00:00Z"}', "timestamp_out_of_range"),
    ('{"kind": "run.started", "run_id": "p", "timestamp": "2600-01-01T00:00:00Z"}', "timestamp_out_of_range"),
    ('{"kind": "run.started", "run_id": "p", "timestamp": "9999-12-31T23:59:59Z"}', "timestamp_out_of_range"),
    ('{"kind": "run.started", "run_id": "p", "timestamp": -5e18}', None),  # negative: "no time", arrival used
    (_OK + ', "duration_ms": 1e308}', "duration_out_of_range"),
    (_OK + ', "duration_ms": 1e13}', "duration_out_of_range"),
    (_OK + ', "duration_ms": -1}', "duration_out_of_range"),
    (_OK + ', "usage": {"input": 100000000000000000000}}', "number_out_of_range"),
    (_OK + ', "usage": {"output": -3}}', "number_out_of_range"),
    (_OK + ', "max_tokens": 18000000000000000000}', "number_out_of_range"),
    (_OK + ', "max_tokens": 1e30}', "undecodable"),  # not an integer msgspec can read
    ('{"type": "custom", "run_id": "p", "timestamp": 1e20}', "timestamp_out_of_range"),  # generic, not canonical
]


@pytest.mark.parametrize(("body", "reason"), POISON)
def test_each_poison_value_is_rejected_with_its_reason(body: str, reason: str | None) -> None:
    stats = Stats()

    class Consumer:
        def submit(self, events: object) -> list[object]:
            return []

        def reject(self, why: str, n: int = 1) -> None:
            stats.reject(why, n)

        def close_all(self, why: str) -> None:
            pass

    if reason is None:
        answer = ingest_body(Consumer(), IngestSettings(), body.encode(), "application/json")  # type: ignore[arg-type]
        assert answer["accepted"] == 1
        return
    with pytest.raises(IngestError) as caught:
        ingest_body(Consumer(), IngestSettings(), body.encode(), "application/json")  # type: ignore[arg-type]
    assert caught.value.code == "no_valid_events"
    assert [e["reason"] for e in caught.value.extra["errors"]] == [reason]  # type: ignore[attr-defined]
    assert stats.events_rejected == {reason: 1}


def test_time_range_is_1970_to_2262() -> None:
    event = AgentEvent(kind=EventKind.CUSTOM, run_id="r", timestamp_ns=TIME_MAX_NS, dialect="d", original_type="t")
    assert check_event(event) is event
    for bad in (0, -1, TIME_MAX_NS + 1):
        with pytest.raises(ValueRangeError, match="timestamp"):
            check_event(msgspec.structs.replace(event, timestamp_ns=bad))
    assert check_event(msgspec.structs.replace(event, duration_ms=DURATION_MAX_MS)).duration_ms == DURATION_MAX_MS
    with pytest.raises(ValueRangeError) as caught:
        check_event(msgspec.structs.replace(event, duration_ms=math.nan))
    assert caught.value.reason == "duration_out_of_range"
    with pytest.raises(ValueRangeError) as caught:
        check_event(msgspec.structs.replace(event, cost_usd=math.inf))
    assert caught.value.reason == "number_out_of_range"
    with pytest.raises(ValueRangeError):
        parse_timestamp(math.inf)


def _span(i: int, **changes: object) -> SpanRecord:
    span = SpanRecord(
        trace_id=bytes(16 - 1) + bytes([i + 1]),
        span_id=bytes(7) + bytes([i + 1]),
        parent_span_id=None,
        name=f"span {i}",
        kind=SpanKind.INTERNAL,
        start_ns=1_000,
        end_ns=2_000,
        attributes={"n": i},
    )
    return msgspec.structs.replace(span, **changes)


# What only a bug (or a sum over many events) could put in a record: the encoders must still not raise.
BAD_RECORDS = [
    {"start_ns": 2**70},
    {"end_ns": -1},
    {"attributes": {"tokens": 2**80, "neg": -(2**70)}},
    {"events": (SpanEventRecord("e", 2**65, {}),)},
    {"name": "lone \ud800 surrogate"},
    {"attributes": {"s": "x\udfff", "arr": ("a\ud800", 2**90)}},
]


@pytest.mark.parametrize("changes", BAD_RECORDS)
def test_the_encoders_clamp_instead_of_raising(changes: dict[str, object]) -> None:
    spans = [_span(0), _span(1, **changes), _span(2)]
    request = ExportTraceServiceRequest.FromString(ProtoEncoder({}, "s", "1", "").encode(spans))
    decoded = request.resource_spans[0].scope_spans[0].spans
    assert [s.name for s in decoded][::2] == ["span 0", "span 2"]
    assert len(decoded) == 3
    for s in decoded:
        assert 0 <= s.start_time_unix_nano < 2**64
    doc = msgspec.json.decode(otlp_json.encode_request(spans, {}, "s", "1"))
    assert len(doc["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 3


async def test_a_batch_that_fails_to_encode_loses_only_the_bad_span() -> None:
    stats = Stats()
    sent: list[bytes] = []

    def encode(batch: object) -> bytes:
        spans = list(batch)  # type: ignore[call-overload]
        if any(s.name == "bad" for s in spans):
            raise RuntimeError("an encoder bug")
        return msgspec.json.encode([s.name for s in spans])

    class Retry:
        last_error = None

        async def send(self, body: bytes, budget_s: float) -> object:
            from otel_bridge.sinks.export.result import Outcome, SendResult

            sent.append(body)
            return SendResult(Outcome.SUCCESS)

        async def close(self) -> None:
            pass

    sender = OtlpBatchSender(stats, encode, lambda: Retry(), "otlp")  # type: ignore[arg-type,return-value]
    await sender.start()
    await sender.send_batch([_span(0), _span(1, name="bad"), _span(2)], 1.0)
    assert [msgspec.json.decode(b) for b in sent] == [["span 0", "span 2"]]
    assert stats.dropped == {"export_encode_error": 1}
    assert stats.spans_exported["otlp"] == 2
    assert stats.spans_export_failed["otlp"] == 1


def test_after_poison_export_goes_on_and_every_good_span_arrives(
    rotel: Rotel, bridge_server: Callable[..., BridgeProcess], tmp_path: pathlib.Path
) -> None:
    """The drill's inputs, through the real server, into a real rotel: each refused with its reason,
    and the good runs posted before and after them all arrive."""
    config = tmp_path / "bridge.toml"
    config.write_text("[mapping]\nrun_end_grace_s = 0.1\nsweep_interval_s = 0.05\n")
    bridge = bridge_server(
        args=["--config", str(config)],
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": rotel.http_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"},
    )

    def good_run(name: str) -> str:
        lines = [
            {"kind": "run.started", "run_id": name, "timestamp": 1767225600.0},
            {"kind": "llm.completed", "run_id": name, "call_id": "c1", "model": "m", "duration_ms": 5,
             "timestamp": 1767225601.0},
            {"kind": "run.finished", "run_id": name, "timestamp": 1767225602.0},
        ]  # fmt: skip
        body = b"\n".join(msgspec.json.encode(line) for line in lines)
        r = httpx.post(f"{bridge.url}/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text
        assert r.json()["rejected"] == 0
        return str(r.json()["runs"][0]["trace_id"])

    traces = [good_run("before")]
    for body, reason in POISON:
        # Mixed into a good run's batch: the good events are mapped, the bad one listed by index.
        mixed = f'{{"kind": "run.started", "run_id": "mixed-{len(traces)}", "timestamp": 1767225600.0}}\n{body}\n'
        r = httpx.post(f"{bridge.url}/v1/events", content=mixed, headers={"Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text
        if reason is not None:
            assert r.json()["errors"][0]["index"] == 1
            assert r.json()["errors"][0]["reason"] == reason
        alone = httpx.post(f"{bridge.url}/v1/events", content=body, headers={"Content-Type": "application/json"})
        assert alone.status_code == (422 if reason is not None else 202), alone.text
        traces.append(good_run(f"between-{len(traces)}"))
    traces.append(good_run("after"))
    health = httpx.get(f"{bridge.url}/v1/health").json()
    received = rotel.wait_for_spans(
        lambda spans: {s.trace_id.hex() for s in spans if s.name.startswith("invoke_agent")} >= set(traces)
    )
    assert {s.trace_id.hex() for s in received if s.name.startswith("chat")} >= set(traces)
    assert bridge.returncode is None
    assert health["status"] == "ok", health
