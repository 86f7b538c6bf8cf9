"""Deterministic trace and span ids.

A run's trace id is derived from its run id, so a replay of the same capture,
or a sidecar restarted mid-run, puts the same run in the same trace. Span ids
are derived from the trace id and the span's key (``run``, ``llm:<id>``...),
so the same span gets the same id however often it is rebuilt.

The flip side: a backend that already holds a trace keeps it when the same
capture is exported again (the spans are the same spans, so nothing new shows).
A salt (``mapping.id_salt``, ``replay --salt``) goes into every derived trace id:
the same capture replayed with another salt is another set of traces, and with
the same salt the same set again. A trace id a producer gave in a W3C
``traceparent`` is kept as given (it links to the producer's own spans).
"""

from __future__ import annotations

import hashlib
import re

_TRACE_SALT = b"otel-bridge/trace\x00"
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


def trace_id_for_run(run_id: str, salt: str = "") -> bytes:
    """16-byte trace id derived from the run id (dialect-independent) and an optional salt."""
    salted = _TRACE_SALT + salt.encode() + b"\x00" if salt else _TRACE_SALT
    digest = hashlib.sha256(salted + run_id.encode()).digest()
    tid = digest[:16]
    return tid if tid != _ZERO_TRACE else digest[16:32]


def span_id_for(trace_id: bytes, key: str) -> bytes:
    """8-byte span id derived from the trace id and the span's key."""
    digest = hashlib.sha256(trace_id + key.encode()).digest()
    sid = digest[:8]
    return sid if sid != _ZERO_SPAN else digest[8:16]


def parse_traceparent(value: str | None) -> tuple[bytes, bytes] | None:
    """``(trace_id, parent_span_id)`` from a W3C traceparent, or ``None`` if invalid."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match.group(1) == "ff":
        return None
    trace_id = bytes.fromhex(match.group(2))
    span_id = bytes.fromhex(match.group(3))
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id
