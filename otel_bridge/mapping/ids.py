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

Cost, and why SHA-256 stays. A run derives one trace id and one span id per span
(plus one per tool call's link to its chat span): about 0.6 derivations per
event of the bench's workload. BLAKE2s with an 8-byte digest measured 25-40 %
cheaper per call than SHA-256 here, which is under 0.1 us per event, well
under 1 % of an event's CPU. Switching would change every span id: a capture
replayed after an upgrade would no longer land on the spans a backend already
holds, and a run that spans the upgrade would get two sets of ids. Not worth
it. (Both are collision-safe for this use: 64 bits of a cryptographic hash of
the 128-bit trace id and the span's key, so two spans of one trace collide only
by chance, about 5 x 10^-20 per pair, and keys are unique within a run by
construction, see :mod:`.table`.) What did pay: a re-sent event is now found
before its run is looked up, so (its run open or remembered) it derives no id.
And the same SHA-256 from CPython's own implementation (``_sha256``; ``_sha2`` from
3.12) rather than OpenSSL's through :mod:`hashlib`, where one digest of a short key
costs ~5,600 instructions against ~4,000, nearly all of it setting up and clearing
an OpenSSL context: the same digests, so the same ids (tests/test_ids.py), ~1,500
fewer instructions per derivation. :mod:`hashlib`'s is the fallback where neither exists.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable
from typing import Protocol

_TRACE_SALT = b"otel-bridge/trace\x00"
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


class _Digest(Protocol):
    def digest(self) -> bytes: ...


def _interpreter_sha256() -> Callable[[bytes], _Digest]:
    """CPython's own SHA-256 constructor (no OpenSSL context per digest), else :func:`hashlib.sha256`."""
    for name in ("_sha256", "_sha2"):  # Python 3.11; 3.12 and later
        try:
            found: Callable[[bytes], _Digest] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return found
    return hashlib.sha256


_sha256 = _interpreter_sha256()


def trace_id_for_run(run_id: str, salt: str = "") -> bytes:
    """16-byte trace id derived from the run id (dialect-independent) and an optional salt."""
    salted = _TRACE_SALT + salt.encode() + b"\x00" if salt else _TRACE_SALT
    digest = _sha256(salted + run_id.encode()).digest()
    tid = digest[:16]
    return tid if tid != _ZERO_TRACE else digest[16:32]


def span_id_for(trace_id: bytes, key: str) -> bytes:
    """8-byte span id derived from the trace id and the span's key."""
    digest = _sha256(trace_id + key.encode()).digest()
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
