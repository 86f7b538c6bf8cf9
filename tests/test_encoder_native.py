"""The native OTLP span encoder writes exactly the pure encoder's bytes (the reference), span for span.

Compared on every golden capture's spans and on generated span records with edge values (unicode
and lone surrogates, integers at and past 64 bits, nested arrays, empty values, times outside
``fixed64``). The native tests skip, saying so, where the extension is not built (no cargo:
``make tools`` builds it when cargo is present); the pure path and the choice of encoder are
tested everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_bridge.model import SpanEventRecord, SpanKind, SpanLinkRecord, SpanRecord, StatusCode
from otel_bridge.sinks import otlp_proto
from otel_bridge.sinks.otlp_proto import ENCODER_ENV, EncoderChoiceError, ProtoEncoder, choose_native, encode_span
from tests.support import golden

native = pytest.mark.skipif(
    not otlp_proto.native_available(),
    reason=f"native encoder not built: {otlp_proto.native_unavailable_reason()} (cargo absent? `make tools` builds it)",
)


def _fixture_spans() -> list[SpanRecord]:
    from otel_bridge.assembly import assemble
    from otel_bridge.config import MappingSettings, SemconvSettings, Settings, StoreSettings
    from otel_bridge.pipeline import ListSink
    from otel_bridge.sources.replay import replay_files

    spans: list[SpanRecord] = []
    for capture in golden.cases():
        options = golden.options_for(capture)
        sink = ListSink()
        settings = Settings(
            store=StoreSettings(enabled=False),
            mapping=MappingSettings(capture_content=True, content_events=True),
            semconv=SemconvSettings(openinference=bool(options.get("openinference", False))),
        )
        bridge = assemble(settings, clock=lambda: 0.0, extra_sinks=[sink], pricer=None).bridge
        replay_files(bridge, [capture], dialect=options.get("dialect"), clock_ns=golden.fixed_clock_ns())
        spans += sink.spans
    return spans


FIXTURE_SPANS = _fixture_spans()


def test_the_fixtures_give_spans_of_every_shape() -> None:
    """The corpus the identity tests use is not trivially small: events, links, status, arrays."""
    assert len(FIXTURE_SPANS) > 100
    assert any(s.events for s in FIXTURE_SPANS)
    assert any(s.links for s in FIXTURE_SPANS)
    assert any(s.status_code is StatusCode.ERROR and s.status_message for s in FIXTURE_SPANS)
    assert any(isinstance(v, tuple) for s in FIXTURE_SPANS for v in s.attributes.values())
    assert any(len(s.name.encode()) != len(s.name) or any(
        isinstance(v, str) and not v.isascii() for v in s.attributes.values()) for s in FIXTURE_SPANS)  # fmt: skip


@native
def test_native_writes_every_fixture_span_itself_with_the_reference_bytes() -> None:
    import otel_bridge_native

    for span in FIXTURE_SPANS:
        body = otel_bridge_native.encode_span(span, StatusCode.UNSET)
        assert body is not None, f"the native encoder bailed on an ordinary span: {span}"
        assert body == encode_span(span), span


@native
def test_native_and_pure_requests_are_identical_for_the_fixtures() -> None:
    resource = {"service.name": "svc", "n": 3, "ok": True}
    pure = ProtoEncoder(resource, "otel-bridge", "1", "https://schema", native=False)
    fast = ProtoEncoder(resource, "otel-bridge", "1", "https://schema", native=True)
    for i in range(0, len(FIXTURE_SPANS), 37):
        batch = FIXTURE_SPANS[i : i + 37]
        body = fast.encode(batch)
        assert body == pure.encode(batch)
        assert len(ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans) == len(batch)


# --- generated records, edge values included ---------------------------------------------------

_text = st.text(st.characters(codec=None), max_size=40) | st.sampled_from(["", "é", "日本語", "\U0001f600", "x" * 300])
_surrogate = st.sampled_from(["\ud800", "a\udfffb", "\udc80" * 3])
_int = st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.sampled_from(
    [0, 127, 128, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 2**90, -(2**90)]
)
_float = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, math.inf, math.nan])
_scalar = _text | _surrogate | st.booleans() | _int | _float
_value = st.recursive(
    _scalar, lambda inner: st.tuples(inner, inner) | st.lists(inner, max_size=3).map(tuple), max_leaves=8
)
_attrs = st.dictionaries(_text | _surrogate, _value | st.lists(_scalar, max_size=3), max_size=6)
_time = st.integers(min_value=-(2**64), max_value=2**66) | st.sampled_from([0, 1, 2**64 - 1, 2**64, -1])
_id16 = st.binary(min_size=16, max_size=16) | st.sampled_from([b"", bytes(200)])
_id8 = st.binary(min_size=8, max_size=8)


@st.composite
def span_records(draw: st.DrawFn) -> SpanRecord:
    return SpanRecord(
        trace_id=draw(_id16),
        span_id=draw(_id8),
        parent_span_id=draw(st.none() | st.just(b"") | _id8),
        name=draw(_text | _surrogate),
        kind=draw(st.sampled_from(list(SpanKind))),
        start_ns=draw(_time),
        end_ns=draw(_time),
        attributes=draw(_attrs),
        events=tuple(
            SpanEventRecord(draw(_text | _surrogate), draw(_time), draw(_attrs)) for _ in range(draw(st.integers(0, 3)))
        ),
        links=tuple(SpanLinkRecord(draw(_id16), draw(_id8), draw(_attrs)) for _ in range(draw(st.integers(0, 2)))),
        status_code=draw(st.sampled_from(list(StatusCode))),
        status_message=draw(_text | _surrogate),
        dropped_events=draw(st.integers(0, 2**31) | st.sampled_from([0, -1, 2**40])),
    )


@native
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(span_records(), min_size=1, max_size=4))
def test_native_equals_pure_on_generated_records(spans: list[SpanRecord]) -> None:
    pure = ProtoEncoder({}, "s", "1", "", native=False).encode(spans)
    assert ProtoEncoder({}, "s", "1", "", native=True).encode(spans) == pure
    ExportTraceServiceRequest.FromString(pure)  # and it is a valid request


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = (value,)
    return value


@native
def test_native_bails_on_what_only_the_reference_decides() -> None:
    """Edge values go to the pure encoder whole (it clamps): the native path never guesses."""
    import otel_bridge_native

    base = FIXTURE_SPANS[0]
    odd = [
        {"start_ns": 2**64},
        {"end_ns": -1},
        {"name": "\ud800"},
        {"attributes": {"n": 2**64}},
        {"attributes": {"s": "a\udfff"}},
        {"attributes": {"deep": _nested(40)}},  # past the native depth limit
        {"attributes": {"obj": object()}},
    ]
    for changes in odd:
        span = msgspec.structs.replace(base, **changes)
        assert otel_bridge_native.encode_span(span, StatusCode.UNSET) is None, changes
        fields = otel_bridge_native.encode_span_fields([base, span, base], StatusCode.UNSET, encode_span)
        assert fields == otlp_proto.encode_span_fields([base, span, base])


@native
def test_what_the_fallback_raises_is_raised() -> None:
    import otel_bridge_native

    def broken(span: object) -> bytes:
        raise RecursionError("deep")

    odd = msgspec.structs.replace(FIXTURE_SPANS[0], end_ns=-1)
    with pytest.raises(RecursionError):
        otel_bridge_native.encode_span_fields([odd], StatusCode.UNSET, broken)


# --- records the fast path reads another way, or hands over -----------------------------------


def _spans_with(pred: Callable[[SpanRecord], object]) -> list[SpanRecord]:
    return [s for s in FIXTURE_SPANS if pred(s)]


def _fields_of(span: SpanRecord) -> dict[str, Any]:
    return {name: getattr(span, name) for name in SpanRecord.__struct_fields__}


class _PlainSpan:
    """A span record that is no msgspec Struct: its fields are plain instance attributes."""

    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


@native
def test_a_span_of_another_type_is_read_with_getattr() -> None:
    """What getattr gives is what is written: a plain object, a property, a __getattribute__ of its own."""
    import otel_bridge_native

    span = _spans_with(lambda s: s.links and not s.events)[0]

    class Renamed(SpanRecord, frozen=True, gc=False):
        @property  # type: ignore[misc]  # a field replaced by a property, on purpose
        def name(self) -> str:
            return "renamed"

    class Upper(SpanRecord, frozen=True, gc=False):
        def __getattribute__(self, attr: str) -> object:
            value = super().__getattribute__(attr)
            return value.upper() if attr == "status_message" or attr == "name" else value

    for odd in (_PlainSpan(**_fields_of(span)), Renamed(**_fields_of(span)), Upper(**_fields_of(span))):
        body = otel_bridge_native.encode_span(odd, StatusCode.UNSET)
        assert body is not None, type(odd)
        assert body == encode_span(odd), type(odd)  # type: ignore[arg-type]  # duck-typed on purpose
    assert b"renamed" in encode_span(Renamed(**_fields_of(span)))


@native
def test_events_and_links_of_another_type_hand_the_span_over() -> None:
    """An event or link is read from slots only (Python code must not run mid-span): else the pure encoder."""
    import otel_bridge_native

    with_event = _spans_with(lambda s: s.events)[0]
    with_link = _spans_with(lambda s: s.links)[0]
    odd = [
        msgspec.structs.replace(with_event, events=(_PlainSpan(name="e", time_ns=5, attributes={"k": 1}),)),
        msgspec.structs.replace(with_link, links=(_PlainSpan(trace_id=b"t" * 16, span_id=b"s" * 8, attributes={}),)),
    ]
    for span in odd:
        assert otel_bridge_native.encode_span(span, StatusCode.UNSET) is None
        fields = otel_bridge_native.encode_span_fields([with_event, span], StatusCode.UNSET, encode_span)
        assert fields == otlp_proto.encode_span_fields([with_event, span])


@native
def test_a_record_type_changed_after_use_is_read_as_changed() -> None:
    """The fast path remembers where a type keeps its fields; changing the type makes it look again."""
    import otel_bridge_native

    class Changing(SpanRecord, frozen=True, gc=False):
        pass

    span = Changing(**_fields_of(FIXTURE_SPANS[0]))
    assert otel_bridge_native.encode_span(span, StatusCode.UNSET) == encode_span(span)
    Changing.name = property(lambda self: "changed")  # type: ignore[assignment]
    body = otel_bridge_native.encode_span(span, StatusCode.UNSET)
    assert body == encode_span(span)
    assert body is not None
    assert b"changed" in body
    del Changing.name  # back to SpanRecord's slot
    assert otel_bridge_native.encode_span(span, StatusCode.UNSET) == encode_span(FIXTURE_SPANS[0])


@native
def test_any_sequence_of_spans_gives_the_same_bytes() -> None:
    import otel_bridge_native

    spans = FIXTURE_SPANS[:9]
    expected = otlp_proto.encode_span_fields(spans)
    for seq in (spans, tuple(spans), iter(spans), (s for s in spans)):
        assert otel_bridge_native.encode_span_fields(seq, StatusCode.UNSET, encode_span) == expected


@native
def test_lengths_of_one_two_and_three_bytes() -> None:
    """Bodies under 128 bytes and over 16 KiB, an event and an array over 127: lengths as the reference writes them."""
    import otel_bridge_native

    base = FIXTURE_SPANS[0]
    small = msgspec.structs.replace(base, name="s", attributes={}, parent_span_id=None)
    big = msgspec.structs.replace(base, attributes={"big": "x" * 20_000, "arr": ("y" * 200, ("z" * 130,))})
    long_event = msgspec.structs.replace(base, events=(SpanEventRecord("e" * 200, 7, {"k": "v" * 150}),))
    spans = [small, big, long_event]
    assert len(encode_span(small)) < 128
    assert len(encode_span(big)) > 16_384
    for span in spans:
        assert otel_bridge_native.encode_span(span, StatusCode.UNSET) == encode_span(span)
    assert otel_bridge_native.encode_span_fields(spans, StatusCode.UNSET, encode_span) == otlp_proto.encode_span_fields(
        spans
    )


@native
def test_a_fallback_that_changes_the_list_or_calls_back_is_safe() -> None:
    """The fallback runs Python code mid-batch: the list may shrink under it, the encoder may be re-entered."""
    import otel_bridge_native

    base = FIXTURE_SPANS[0]
    odd = msgspec.structs.replace(base, end_ns=-1)
    spans = [odd, base, base]

    def shrinking(span: SpanRecord) -> bytes:
        spans.clear()
        return encode_span(span)

    assert otel_bridge_native.encode_span_fields(spans, StatusCode.UNSET, shrinking) == otlp_proto.encode_span_fields(
        [odd]
    )

    def reentrant(span: SpanRecord) -> bytes:
        inner = otel_bridge_native.encode_span_fields(FIXTURE_SPANS[:5], StatusCode.UNSET, encode_span)
        assert inner == otlp_proto.encode_span_fields(FIXTURE_SPANS[:5])
        return encode_span(span)

    batch = [base, odd, base, odd]
    assert otel_bridge_native.encode_span_fields(batch, StatusCode.UNSET, reentrant) == otlp_proto.encode_span_fields(
        batch
    )


# --- choosing the encoder (both paths, always) ---------------------------------------------------


def test_pure_is_chosen_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENCODER_ENV, "pure")
    encoder = ProtoEncoder({}, "s", "1", "")
    assert not encoder.native
    assert "pure" in encoder.description
    assert encoder.encode(FIXTURE_SPANS[:5]) == otlp_proto.encode_request(
        otlp_proto.encode_resource({}), otlp_proto.encode_scope("s", "1"), [encode_span(s) for s in FIXTURE_SPANS[:5]]
    )


def test_auto_takes_native_exactly_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENCODER_ENV, raising=False)
    assert choose_native() is otlp_proto.native_available()
    encoder = ProtoEncoder({}, "s", "1", "")
    assert encoder.description.startswith("native" if otlp_proto.native_available() else "pure")


def test_a_wrong_choice_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EncoderChoiceError, match="expected one of auto, native, pure"):
        choose_native("rust")
    if not otlp_proto.native_available():
        with pytest.raises(EncoderChoiceError, match="not installed"):
            choose_native("native")


def test_without_the_extension_auto_falls_back_to_pure(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine with no compiler: the module is simply absent."""
    monkeypatch.setattr(otlp_proto, "_NATIVE", None)
    monkeypatch.setattr(otlp_proto, "_NATIVE_MISSING", "the native extension otel_bridge_native is not installed")
    assert choose_native("auto") is False
    assert "not installed" in ProtoEncoder({}, "s", "1", "").description
    with pytest.raises(EncoderChoiceError, match="not installed"):
        choose_native("native")


def test_the_package_imports_without_the_extension(tmp_path: Path) -> None:
    """A fresh interpreter where ``otel_bridge_native`` cannot be imported still encodes (pure)."""
    import subprocess
    import sys

    blocker = tmp_path / "otel_bridge_native.py"
    blocker.write_text("raise ImportError('blocked for this test')\n")
    code = (
        "from otel_bridge.sinks.otlp_proto import ProtoEncoder, native_available\n"
        "e = ProtoEncoder({}, 's', '1', '')\n"
        "assert not native_available() and not e.native\n"
        "print(e.description)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path)}, check=True
    )
    assert "pure Python (the native extension otel_bridge_native is not installed" in out.stdout
