"""Deterministic trace and span ids, and W3C traceparent parsing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_bridge.config import MappingSettings
from otel_bridge.mapping.ids import parse_traceparent, span_id_for, trace_id_for_run
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind
from otel_bridge.pipeline import ListSink
from otel_bridge.stats import Stats

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_known_vectors() -> None:
    # Pinned: a change here moves every run of every stored capture to another trace.
    assert trace_id_for_run("run-1").hex() == hashlib.sha256(b"otel-bridge/trace\x00run-1").hexdigest()[:32]
    trace_id = trace_id_for_run("run-1")
    assert span_id_for(trace_id, "run").hex() == hashlib.sha256(trace_id + b"run").hexdigest()[:16]


def test_known_vector_literal() -> None:
    assert trace_id_for_run("run-1").hex() == "33dde6e4833477a739c2aacee7e9f35f"
    assert span_id_for(bytes(range(16)), "chat:c1").hex() == "711237ac52ead949"


def test_ids_are_deterministic_and_sized() -> None:
    assert trace_id_for_run("run-1") == trace_id_for_run("run-1")
    assert len(trace_id_for_run("run-1")) == 16
    trace_id = trace_id_for_run("run-1")
    assert span_id_for(trace_id, "chat:c1") == span_id_for(trace_id, "chat:c1")
    assert len(span_id_for(trace_id, "chat:c1")) == 8


def test_different_keys_give_different_ids() -> None:
    runs = [f"run-{i}" for i in range(1000)]
    assert len({trace_id_for_run(r) for r in runs}) == len(runs)
    trace_id = trace_id_for_run("run-1")
    keys = ["run", "run+1", "chat:c1", "chat:c1#1", "execute_tool:c1", "step:plan"]
    assert len({span_id_for(trace_id, k) for k in keys}) == len(keys)
    # The same key in another trace is another span.
    assert span_id_for(trace_id, "run") != span_id_for(trace_id_for_run("run-2"), "run")


def test_traceparent_gives_the_trace_and_the_parent() -> None:
    parsed = parse_traceparent(TRACEPARENT)
    assert parsed == (bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736"), bytes.fromhex("00f067aa0ba902b7"))
    # Surrounding space and upper case are tolerated.
    assert parse_traceparent(f"  {TRACEPARENT.upper()} ") == parsed


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is invalid
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
    ],
)
def test_invalid_traceparent_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def _run(run_id: str, traceparent: str | None) -> tuple[bytes, bytes | None]:
    sink = ListSink()
    mapper = SpanMapper(MappingSettings(), sink, Stats(), clock=lambda: 0.0)
    event = AgentEvent(
        kind=EventKind.RUN_STARTED,
        run_id=run_id,
        timestamp_ns=1,
        dialect="test",
        original_type="run",
        traceparent=traceparent,
    )
    mapper.process([event])
    mapper.close_all()
    [root] = sink.spans
    assert root.span_id == span_id_for(root.trace_id, "run")
    return root.trace_id, root.parent_span_id


def test_a_valid_traceparent_wins_over_the_run_id() -> None:
    trace_id, parent = _run("run-1", TRACEPARENT)
    assert (trace_id, parent) == parse_traceparent(TRACEPARENT)
    # Without one (or with an invalid one), the trace is the run id's.
    assert _run("run-1", None) == (trace_id_for_run("run-1"), None)
    assert _run("run-1", "garbage") == (trace_id_for_run("run-1"), None)


@given(st.binary(min_size=16, max_size=16), st.text(max_size=80), st.text(max_size=8))
def test_ids_are_hashlibs_sha256_whichever_implementation_derives_them(trace_id: bytes, key: str, salt: str) -> None:
    """The ids come from the interpreter's own SHA-256 where it has one: the digests of hashlib's, byte for byte."""
    expected = hashlib.sha256(trace_id + key.encode()).digest()
    assert span_id_for(trace_id, key) == (expected[:8] if expected[:8] != bytes(8) else expected[8:16])
    salted = b"otel-bridge/trace\x00" + (salt.encode() + b"\x00" if salt else b"")
    digest = hashlib.sha256(salted + key.encode()).digest()
    assert trace_id_for_run(key, salt) == (digest[:16] if digest[:16] != bytes(16) else digest[16:])


def test_the_interpreter_sha256_is_used_where_cpython_has_one() -> None:
    import importlib.util

    from otel_bridge.mapping import ids

    if importlib.util.find_spec("_sha256") or importlib.util.find_spec("_sha2"):
        assert ids._sha256 is not hashlib.sha256
    assert ids._sha256(b"abc").digest() == hashlib.sha256(b"abc").digest()
