"""The typed event builder and the decoder protocols every dialect shares."""

from __future__ import annotations

import pathlib
import typing

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_bridge.dialects import generic, registry
from otel_bridge.dialects.base import (
    BUILDER_FIELDS,
    INT_MAX,
    EventFields,
    FastDecoder,
    StreamContext,
    ValueRangeError,
    check_event,
    fast_paths,
    make_event,
)
from otel_bridge.dialects.framing import Frame, parse_sse
from otel_bridge.model import AgentEvent, EventKind, TokenUsage

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def test_event_fields_are_every_agent_event_field_the_builder_does_not_fill_with_the_same_types() -> None:
    event_hints = typing.get_type_hints(AgentEvent)
    field_hints = typing.get_type_hints(EventFields)
    assert set(event_hints) >= BUILDER_FIELDS
    assert set(field_hints) == set(event_hints) - BUILDER_FIELDS
    assert {name: event_hints[name] for name in field_hints} == field_hints


def test_make_event_stamps_what_the_builder_owns_and_keeps_the_frame_as_payload() -> None:
    ctx = StreamContext(source="replay", stream_key="s")
    frame = Frame("token", b'{"text":"hi"}', "7")
    event = make_event(ctx, "d", "run-1", EventKind.LLM_CHUNK, "token", 42, frame, True, call_id="c", text="hi")
    assert msgspec.json.decode(msgspec.json.encode(event)) == {
        "kind": "llm.chunk",
        "run_id": "run-1",
        "timestamp_ns": 42,
        "dialect": "d",
        "original_type": "token",
        "source": "replay",
        "call_id": "c",
        "text": "hi",
        "payload": {"text": "hi"},
    }
    inferred = make_event(ctx, "d", "run-1", EventKind.RUN_FINISHED, "done", 43, None, inferred=True)
    assert inferred.payload is None
    assert inferred.timestamp_from_source is False
    assert inferred.inferred is True


def test_the_fast_path_is_found_through_the_protocol_only_where_a_decoder_declares_it() -> None:
    ctx = StreamContext(source="http", stream_key="s")
    with_fast = {name for name, d in registry.DIALECTS.items() if fast_paths(d.decoder(ctx))[0] is not None}
    assert with_fast == {generic.NAME}
    decoder = generic.DIALECT.decoder(ctx)
    assert isinstance(decoder, FastDecoder)
    events = decoder.feed_bytes(Frame(None, b'{"kind":"run.started","run_id":"r","timestamp":1}', None))
    assert events is not None
    assert [e.kind for e in events] == [EventKind.RUN_STARTED]
    assert decoder.feed_bytes(Frame(None, b'{"type":"not canonical"}', None)) is None


def test_the_producer_clock_shifts_unstamped_events_by_the_last_known_offset() -> None:
    from otel_bridge.dialects.base import ProducerClock, StreamContext

    t0 = 1_767_225_600_000_000_000  # 2026-01-01 in epoch ns
    now = [t0]
    clock = ProducerClock(StreamContext(source="t", stream_key="k", clock_ns=lambda: now[0]))
    assert clock.at(None) == (t0, False)  # nothing known yet: arrival time, marked as an estimate
    assert clock.at(t0 + 4_000) == (t0 + 4_000, True)  # the producer's own stamp; its clock runs 4 us ahead
    now[0] = t0 + 1_000
    assert clock.at(None) == (t0 + 5_000, False)
    assert clock.now_ns() == t0 + 5_000


def test_a_value_out_of_range_met_at_end_of_stream_is_rejected_for_what_it_is() -> None:
    from otel_bridge.dialects.base import ValueRangeError
    from otel_bridge.dialects.stream import StreamDecoder

    class Closing:
        def feed(self, frame: Frame, obj: object) -> list[AgentEvent]:
            return []

        def close(self) -> list[AgentEvent]:
            raise ValueRangeError("timestamp_out_of_range", "the held end's time is out of range")

    class Dialect:
        name = "closing"

        def sniff(self, frame: Frame, obj: object) -> bool:
            return True

        def decoder(self, ctx: StreamContext) -> Closing:
            return Closing()

    decoder = StreamDecoder(StreamContext(source="t", stream_key="k"), Dialect())  # type: ignore[arg-type]
    decoder.feed([Frame(None, b"{}")])
    assert decoder.close() == []
    assert [r.reason for r in decoder.rejections] == ["timestamp_out_of_range"]  # not a dialect_error


def test_a_body_through_the_batch_fast_path_gives_what_frame_by_frame_decoding_gives() -> None:
    """Every kind of frame the batch path stops at (short, [DONE], not canonical, not JSON, a value out of
    range, a time it must read from the stream's clock), between canonical ones: the same events, the same
    clock readings and the same rejections, at the same indexes, as feeding the frames one at a time."""
    from otel_bridge.dialects.stream import StreamDecoder

    lines = [
        b'{"kind":"run.started","run_id":"r","timestamp":1800000000000000000}',
        b'{"kind":"llm.started","run_id":"r","call_id":"c1","temperature":0.2,"timestamp":1800000000000000001}',
        b"[DONE]",
        b'{"kind":"llm.completed","run_id":"r","call_id":"c1","duration_ms":-1,"timestamp":1800000000000000002}',
        b'{"kind":"progress","run_id":"r","status":"no time of its own"}',
        b'{"kind":"progress","run_id":"r","timestamp":"2027-01-15T08:00:00Z","type":"named"}',
        b'{"type":"custom thing","run_id":"r","value":1}',
        b"{not json at all}",
        b'{"kind":"llm.completed","call_id":"c1","usage":{"input":-5},"timestamp":1800000000000000003}',
        b'{"kind":"message","run_id":"r","text":"hi","timestamp":1700000000000}',
        b'{"kind":"run.finished","run_id":"r","timestamp":1800000000000000009}',
    ]
    frames = [Frame(None, line) for line in lines]

    def decode(batch: bool) -> tuple[list[AgentEvent], list[tuple[int, str, str]], int, int]:
        ticks = iter(range(1_900_000_000_000_000_000, 2**62, 1_000))
        ctx = StreamContext(source="http", stream_key="s", clock_ns=ticks.__next__)
        decoder = StreamDecoder(ctx, generic.DIALECT)
        events = decoder.feed(frames) if batch else [e for f in frames for e in decoder.feed(iter([f]))]
        rejections = [(r.index, r.reason, r.message) for r in decoder.rejections]
        return events, rejections, decoder.frames_seen, decoder.done_markers

    batched, one_by_one = decode(batch=True), decode(batch=False)
    assert batched == one_by_one
    events, rejections, seen, done = batched
    assert [r[:2] for r in rejections] == [
        (3, "duration_out_of_range"),
        (7, "invalid_json"),
        (8, "number_out_of_range"),
    ]
    assert (seen, done, len(events)) == (11, 1, 7)
    assert [e.timestamp_from_source for e in events] == [True, True, False, True, False, True, True]


def test_a_first_frame_of_canonical_json_settles_detection_as_detecting_it_would() -> None:
    """The stream decoder takes canonical JSON in a first frame as the generic dialect's without asking every
    sniff: detection asks the generic dialect first, so it would have chosen it too."""
    from otel_bridge.dialects.stream import StreamDecoder

    assert next(iter(registry.DIALECTS)) == generic.NAME
    frame = Frame(None, b'{"kind":"run.started","run_id":"r","timestamp":1800000000000000000}')
    assert registry.detect([(frame, msgspec.json.decode(frame.data))]) is generic.DIALECT
    decoder = StreamDecoder(StreamContext(source="http", stream_key="s"))
    (event,) = decoder.feed([frame])
    assert decoder.dialect == generic.NAME
    assert (event.kind, event.run_id, event.dialect) == (EventKind.RUN_STARTED, "r", generic.NAME)


@pytest.mark.parametrize("first", [b"[DONE]", b"{not json at all}", b'{"note":"no kind, so not canonical"}', None])
def test_a_first_frame_the_generic_fast_path_does_not_take_leaves_detection_to_dialects(
    first: bytes | None,
) -> None:
    """The generic batch path is tried on a stream's first frame; one it does not take (short, not JSON, not
    canonical) leaves nothing behind: the dialects detect the stream from its frames as if no probe had been
    made, and the events are those of a decoder given that dialect from the start."""
    from otel_bridge.dialects.stream import StreamDecoder

    capture = (FIXTURES / "openai-chat" / "error.sse").read_text()
    frames = ([Frame(None, first)] if first is not None else []) + list(parse_sse(capture))
    ctx = StreamContext(source="http", stream_key="s", clock_ns=lambda: 1_900_000_000_000_000_000)
    detected = StreamDecoder(ctx)
    events = detected.feed(frames) + detected.close()
    forced = StreamDecoder(ctx, registry.get(detected.dialect or ""))
    expected = forced.feed(frames) + forced.close()
    assert detected.dialect == "openai-chat"
    assert events
    assert events == expected
    assert [(r.index, r.reason) for r in detected.rejections] == [(r.index, r.reason) for r in forced.rejections]
    assert (detected.frames_seen, detected.done_markers) == (forced.frames_seen, forced.done_markers)


def test_the_generic_batch_path_finishes_each_event_as_the_frame_by_frame_fast_path_does() -> None:
    """``feed_frames`` sets the fields the bridge owns in the decoded struct itself; ``feed_bytes`` copies it
    with ``replace``. Frames whose wire values the bridge must overwrite (its own fields sent by the producer,
    an empty run id, a named type, times in every form) give equal events, field for field, and encode alike."""
    from otel_bridge.dialects.generic import GenericDecoder

    lines = [
        b'{"kind":"run.started","run_id":"r","timestamp":1800000000000000000}',
        b'{"kind":"progress","run_id":"","dialect":"x","source":"elsewhere","original_type":"o","timestamp":5}',
        b'{"kind":"message","timestamp_from_source":false,"timestamp_ns":7,"text":"hi"}',
        b'{"kind":"progress","run_id":"r","timestamp":"2027-01-15T08:00:00Z","type":"named"}',
        b'{"kind":"progress","run_id":"r","status":"no time of its own","source":"http"}',
        b'{"kind":"llm.completed","call_id":"c","usage":{"input":3},"timestamp":1700000000000,"inferred":true}',
    ]
    frames = [Frame(None, line) for line in lines]
    for run_id, source in ((None, "http"), ("given", "replay")):
        ticks = iter(range(1_900_000_000_000_000_000, 2**62, 1_000))
        ctx = StreamContext(source=source, stream_key="s", run_id=run_id, clock_ns=ticks.__next__)
        batched: list[AgentEvent] = []
        assert GenericDecoder(ctx).feed_frames(frames, 0, batched) == len(frames)
        ticks = iter(range(1_900_000_000_000_000_000, 2**62, 1_000))
        ctx.clock_ns = ticks.__next__
        single = GenericDecoder(ctx)
        one_by_one = [e for f in frames for e in single.feed_bytes(f) or ()]
        assert batched == one_by_one
        assert [msgspec.structs.asdict(e) for e in batched] == [msgspec.structs.asdict(e) for e in one_by_one]
        assert [msgspec.json.encode(e) for e in batched] == [msgspec.json.encode(e) for e in one_by_one]
        assert {e.dialect for e in batched} == {generic.NAME}
        assert {e.source for e in batched} == {source}


_COUNT = st.one_of(st.none(), st.integers(-3, 3), st.integers(2**63 - 3, 2**63 + 3), st.integers(-(2**70), 2**70))


@given(st.tuples(_COUNT, _COUNT, _COUNT, _COUNT, _COUNT))
def test_token_counts_are_rejected_exactly_when_one_is_beyond_int64_or_negative(counts: tuple[int | None, ...]) -> None:
    fields = ("input", "output", "cache_read", "cache_creation", "reasoning")
    usage = TokenUsage(**dict(zip(fields, counts, strict=True)))
    event = AgentEvent(
        kind=EventKind.LLM_COMPLETED, run_id="r", timestamp_ns=1, dialect="d", original_type="o", usage=usage
    )
    bad = [n for n in counts if n is not None and not 0 <= n <= INT_MAX]
    if not bad:
        assert check_event(event) is event
        return
    with pytest.raises(ValueRangeError, match=f"got {bad[0]}$") as raised:
        check_event(event)
    assert raised.value.reason == "number_out_of_range"
