"""OTLP protobuf encoding written directly as bytes, with no SDK span objects.

Direct encoding is several times cheaper than building SDK spans and encoding
them with ``encode_spans`` (about 10 us against 70 us a span when it was
measured; BENCHMARKS.md has the current pipeline figures).
Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``; a golden test parses every output back with
``opentelemetry-proto`` and a real collector accepts it.

The span encoder here (:func:`encode_span`) is the reference. The optional native
extension ``otel_bridge_native`` (``native/``, Rust; ~15x faster, BENCHMARKS.md "OTLP
encoding") writes the same bytes: it handles only records whose every value has its
exact type and fits its field, and hands any other span to :func:`encode_span`
whole, so an edge case is decided in one place; the tests compare the two byte for
byte. :class:`ProtoEncoder` uses the native one when it is installed, unless
``OTEL_BRIDGE_OTLP_ENCODER=pure`` (:func:`choose_native`); without a compiler
nothing changes but the speed.
"""

from __future__ import annotations

import importlib
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from types import ModuleType
from typing import cast

from otel_bridge.config import ConfigError
from otel_bridge.model import AttributeValue, SpanEventRecord, SpanLinkRecord, SpanRecord, StatusCode
from otel_bridge.sinks.otlp_clamp import clamp_span

_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack

# Tags: (field_number << 3) | wire_type, pre-encoded (all < 128, so one byte).
_LEN = 2
_VARINT = 0
_I64 = 1


def _tag(field: int, wire: int) -> bytes:
    return bytes([(field << 3) | wire])


# Span fields
_T_TRACE_ID = _tag(1, _LEN)
_T_SPAN_ID = _tag(2, _LEN)
_T_PARENT = _tag(4, _LEN)
_T_NAME = _tag(5, _LEN)
_T_KIND = _tag(6, _VARINT)
_T_START = _tag(7, _I64)
_T_END = _tag(8, _I64)
_T_ATTR = _tag(9, _LEN)
_T_EVENT = _tag(11, _LEN)
_T_DROPPED_EVENTS = _tag(12, _VARINT)
_T_LINK = _tag(13, _LEN)
_T_STATUS = _tag(15, _LEN)
_T_FLAGS = b"\x85\x01"  # field 16, wire type 5 (fixed32): two-byte tag
# Event / Link / Status / KeyValue / AnyValue / containers
_T_EV_TIME = _tag(1, _I64)
_T_EV_NAME = _tag(2, _LEN)
_T_EV_ATTR = _tag(3, _LEN)
_T_LINK_ATTR = _tag(4, _LEN)
_T_STATUS_MSG = _tag(2, _LEN)
_T_STATUS_CODE = _tag(3, _VARINT)
_T_KV_KEY = _tag(1, _LEN)
_T_KV_VALUE = _tag(2, _LEN)
_T_AV_STRING = _tag(1, _LEN)
_T_AV_BOOL = _tag(2, _VARINT)
_T_AV_INT = _tag(3, _VARINT)
_T_AV_DOUBLE = _tag(4, _I64)
_T_AV_ARRAY = _tag(5, _LEN)
_T_ARRAY_VALUES = _tag(1, _LEN)
_T_1_LEN = _tag(1, _LEN)
_T_2_LEN = _tag(2, _LEN)
_T_3_LEN = _tag(3, _LEN)
_SAMPLED_FLAGS = (0x100 | 0x01).to_bytes(4, "little")  # HAS_IS_REMOTE mask + sampled


_SMALL_VARINTS = [bytes((i,)) for i in range(128)]


def varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL_VARINTS[value]
    if not -0x8000000000000000 <= value <= 0xFFFFFFFFFFFFFFFF:
        raise OverflowError(f"{value} does not fit in a 64-bit varint")
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf encodes it
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    n = len(payload)
    return tag + (_SMALL_VARINTS[n] if n < 0x80 else varint(n)) + payload


def _any_value(value: AttributeValue) -> bytes:
    if isinstance(value, str):
        return _ld(_T_AV_STRING, value.encode())
    if isinstance(value, bool):
        return _T_AV_BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return _T_AV_INT + varint(value)
    if isinstance(value, float):
        return _T_AV_DOUBLE + _pack_double(value)
    items = b"".join(_ld(_T_ARRAY_VALUES, _any_value(item)) for item in value)
    return _ld(_T_AV_ARRAY, items)


@lru_cache(maxsize=1024)
def _key(key: str) -> bytes:
    return _ld(_T_KV_KEY, key.encode())


# Repeated pairs (operation names, providers, models, flags) are encoded once,
# already wrapped as a repeated KeyValue field: the hot path is one dict lookup.
_PAIR_CACHE: dict[tuple[bytes, str, object, type], bytes] = {}
_PAIR_CACHE_MAX = 16_384


def key_value(key: str, value: AttributeValue) -> bytes:
    return _key(key) + _ld(_T_KV_VALUE, _any_value(value))


def _attributes(tag: bytes, attributes: dict[str, AttributeValue]) -> bytes:
    parts = []
    cache = _PAIR_CACHE
    for k, v in attributes.items():
        cacheable = type(v) is bool or (type(v) is str and len(v) <= 64)
        if cacheable:
            ck = (tag, k, v, type(v))
            hit = cache.get(ck)
            if hit is None:
                hit = _ld(tag, key_value(k, v))
                if len(cache) < _PAIR_CACHE_MAX:
                    cache[ck] = hit
            parts.append(hit)
        else:
            parts.append(_ld(tag, key_value(k, v)))
    return b"".join(parts)


def _event(ev: SpanEventRecord) -> bytes:
    return (
        _T_EV_TIME
        + _pack_fixed64(ev.time_ns)
        + _ld(_T_EV_NAME, ev.name.encode())
        + _attributes(_T_EV_ATTR, ev.attributes)
    )


def _link(link: SpanLinkRecord) -> bytes:
    return _ld(_T_TRACE_ID, link.trace_id) + _ld(_T_SPAN_ID, link.span_id) + _attributes(_T_LINK_ATTR, link.attributes)


def encode_span(span: SpanRecord) -> bytes:
    """One ``Span`` message body: the reference the native encoder must equal byte for byte.

    Never raises: a value OTLP cannot carry is clamped (:mod:`.otlp_clamp`).
    """
    try:
        return _encode_span(span)
    except (ValueError, TypeError, OverflowError, struct.error, AttributeError):
        # UnicodeEncodeError is a ValueError. The fast path stays free of checks;
        # only a record that failed pays for the clamp.
        return _encode_span(clamp_span(span))


def _encode_span(span: SpanRecord) -> bytes:
    parts = [
        _ld(_T_TRACE_ID, span.trace_id),
        _ld(_T_SPAN_ID, span.span_id),
    ]
    if span.parent_span_id:
        parts.append(_ld(_T_PARENT, span.parent_span_id))
    parts.append(_ld(_T_NAME, span.name.encode()))
    parts.append(_T_KIND + varint(int(span.kind)))
    parts.append(_T_START + _pack_fixed64(span.start_ns))
    parts.append(_T_END + _pack_fixed64(span.end_ns))
    parts.append(_attributes(_T_ATTR, span.attributes))
    for ev in span.events:
        parts.append(_ld(_T_EVENT, _event(ev)))
    if span.dropped_events:
        parts.append(_T_DROPPED_EVENTS + varint(span.dropped_events))
    for link in span.links:
        parts.append(_ld(_T_LINK, _link(link)))
    if span.status_code is not StatusCode.UNSET:
        status = b""
        if span.status_message:
            status += _ld(_T_STATUS_MSG, span.status_message.encode())
        status += _T_STATUS_CODE + varint(int(span.status_code))
        parts.append(_ld(_T_STATUS, status))
    parts.append(_T_FLAGS + _SAMPLED_FLAGS)
    return b"".join(parts)


def encode_span_fields(spans: Iterable[SpanRecord]) -> bytes:
    """Every span as a ``ScopeSpans.spans`` field, concatenated (pure Python)."""
    return b"".join(_ld(_T_2_LEN, encode_span(s)) for s in spans)


def encode_resource(attributes: dict[str, AttributeValue]) -> bytes:
    """A ``Resource`` message body."""
    return _attributes(_T_1_LEN, attributes)


def encode_scope(name: str, version: str) -> bytes:
    """An ``InstrumentationScope`` message body."""
    return _ld(_T_1_LEN, name.encode()) + _ld(_T_2_LEN, version.encode())


def encode_request(resource: bytes, scope: bytes, spans: Iterable[bytes], schema_url: str = "") -> bytes:
    """An ``ExportTraceServiceRequest`` from pre-encoded parts (one resource, one scope)."""
    return encode_request_fields(resource, scope, b"".join(_ld(_T_2_LEN, s) for s in spans), schema_url)


def encode_request_fields(resource: bytes, scope: bytes, span_fields: bytes, schema_url: str = "") -> bytes:
    """An ``ExportTraceServiceRequest`` around spans already written as ``ScopeSpans.spans`` fields."""
    scope_spans = _ld(_T_1_LEN, scope) + span_fields
    if schema_url:
        scope_spans += _ld(_T_3_LEN, schema_url.encode())
    resource_spans = _ld(_T_1_LEN, resource) + _ld(_T_2_LEN, scope_spans)
    if schema_url:
        resource_spans += _ld(_T_3_LEN, schema_url.encode())
    return _ld(_T_1_LEN, resource_spans)


# --- Which span encoder runs -----------------------------------------------------------------------

ENCODER_ENV = "OTEL_BRIDGE_OTLP_ENCODER"
"""``auto`` (the default: native when installed, else pure), ``native`` (fail without it) or ``pure``."""
ENCODER_CHOICES = ("auto", "native", "pure")


class EncoderChoiceError(ConfigError):
    """``OTEL_BRIDGE_OTLP_ENCODER`` names no encoder, or ``native`` where the extension is not installed."""


def _load_native() -> tuple[ModuleType | None, str]:
    try:
        module = importlib.import_module("otel_bridge_native")
    except ImportError as exc:
        return None, f"the native extension otel_bridge_native is not installed ({exc})"
    if getattr(module, "ABI", None) != NATIVE_ABI:
        return None, f"otel_bridge_native {getattr(module, '__version__', '?')} does not match this otel-bridge"
    return module, ""


NATIVE_ABI = 1
"""The native module's interface version this code expects (``otel_bridge_native.ABI``)."""
_NATIVE, _NATIVE_MISSING = _load_native()


def native_available() -> bool:
    return _NATIVE is not None


def native_unavailable_reason() -> str:
    return _NATIVE_MISSING


def choose_native(choice: str | None = None) -> bool:
    """Whether to use the native encoder, from ``choice`` (else the environment); raises :class:`EncoderChoiceError`."""
    choice = (choice if choice is not None else os.environ.get(ENCODER_ENV, "auto")).strip().lower() or "auto"
    if choice not in ENCODER_CHOICES:
        raise EncoderChoiceError(f"{ENCODER_ENV}={choice!r}: expected one of {', '.join(ENCODER_CHOICES)}")
    if choice == "native" and _NATIVE is None:
        raise EncoderChoiceError(f"{ENCODER_ENV}=native, but {_NATIVE_MISSING}")
    return choice != "pure" and _NATIVE is not None


class ProtoEncoder:
    """Encodes batches of spans for one resource and scope, which are encoded once.

    ``native``: use the native span encoder (``None``: as :func:`choose_native` decides from the
    environment). Either way the bytes are the reference's; :attr:`description` says which runs.
    """

    def __init__(
        self,
        resource: dict[str, AttributeValue],
        scope_name: str,
        scope_version: str,
        schema_url: str,
        *,
        native: bool | None = None,
    ) -> None:
        self._resource = encode_resource(resource)
        self._scope = encode_scope(scope_name, scope_version)
        self._schema_url = schema_url
        use_native = choose_native() if native is None else native
        if use_native and _NATIVE is None:
            raise EncoderChoiceError(_NATIVE_MISSING)
        self.native = use_native
        self.span_fields: Callable[[Sequence[SpanRecord]], bytes] = encode_span_fields
        if use_native:
            assert _NATIVE is not None
            fields = _NATIVE.encode_span_fields
            self.span_fields = lambda spans: cast(bytes, fields(spans, StatusCode.UNSET, encode_span))
            self.description = f"native (otel_bridge_native {_NATIVE.__version__})"
        elif _NATIVE is None:
            self.description = f"pure Python ({_NATIVE_MISSING})"
        else:
            self.description = f"pure Python ({ENCODER_ENV}=pure)"

    def encode(self, spans: Sequence[SpanRecord]) -> bytes:
        return encode_request_fields(self._resource, self._scope, self.span_fields(spans), self._schema_url)

    def encode_fields(self, span_fields: bytes) -> bytes:
        """A request around spans already written as ``ScopeSpans.spans`` fields (:meth:`span_fields`)."""
        return encode_request_fields(self._resource, self._scope, span_fields, self._schema_url)
