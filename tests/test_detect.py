"""Dialect detection: every capture is recognised as its own dialect and claimed by no other.

The captures are the golden cases: ``tests/fixtures/<dialect>/``, one folder per
registered dialect (test_dialect_golden.py fails if a dialect has none), so a new
dialect's captures are checked against every other dialect, and theirs against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from otel_bridge.dialects import registry
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import DONE_SENTINEL, Frame, sniff_text_frames
from otel_bridge.dialects.stream import StreamDecoder
from tests.support.golden import FIXTURES, cases

# Each capture with the dialect its folder names (generic/ holds protocols no dialect decodes yet).
CAPTURES = [(p, p.parent.name) for p in cases()]
IDS = [f"{p.parent.name}/{p.name}" for p, _ in CAPTURES]


def _frames(path: Path) -> list[tuple[Frame, Any]]:
    out = []
    for frame in sniff_text_frames(path.read_text()):
        if frame.data.strip() != DONE_SENTINEL:
            out.append((frame, msgspec.json.decode(frame.data)))
    return out


@pytest.mark.parametrize(("path", "dialect"), CAPTURES, ids=IDS)
def test_no_other_dialect_claims_any_frame_of_a_capture(path: Path, dialect: str) -> None:
    claims = {
        (name, index)
        for index, (frame, obj) in enumerate(_frames(path))
        for name, other in registry.DIALECTS.items()
        if name != dialect and other.sniff(frame, obj)
    }
    assert claims == set()


@pytest.mark.parametrize(("path", "dialect"), CAPTURES, ids=IDS)
def test_a_capture_is_detected_from_its_first_frames(path: Path, dialect: str) -> None:
    frames = _frames(path)
    if dialect != registry.FALLBACK:
        # Claimed by its own sniff, not reached by falling back.
        own = registry.DIALECTS[dialect]
        assert any(own.sniff(f, o) for f, o in frames[: registry.SNIFF_FRAMES])
    assert registry.detect(frames).name == dialect
    decoder = StreamDecoder(StreamContext(source="test", stream_key="k"))
    decoder.feed(sniff_text_frames(path.read_text()))
    decoder.close()
    assert (decoder.dialect, decoder.rejections) == (dialect, [])


def test_a_stream_no_dialect_knows_is_still_ingested_as_generic() -> None:
    text = 'event: tick\ndata: {"n": 1}\n\nevent: tock\ndata: {"n": 2}\n\n'
    decoder = StreamDecoder(StreamContext(source="test", stream_key="k", clock_ns=lambda: 1))
    events = decoder.feed(sniff_text_frames(text)) + decoder.close()
    assert decoder.dialect == "generic"
    assert [(e.kind, e.original_type, e.run_id) for e in events] == [
        ("custom", "tick", "k"),
        ("custom", "tock", "k"),
    ]


def test_a_forced_dialect_is_used_without_sniffing() -> None:
    # An ag-ui stream forced through the generic dialect stays generic: the user's choice wins.
    path = FIXTURES / "ag-ui" / "typescript-encoder.sse"
    decoder = StreamDecoder(StreamContext(source="test", stream_key="k", clock_ns=lambda: 1), registry.get("generic"))
    events = decoder.feed(sniff_text_frames(path.read_text())) + decoder.close()
    assert decoder.dialect == "generic"
    assert {e.dialect for e in events} == {"generic"}


@pytest.mark.parametrize(
    ("frame", "obj", "dialect"),
    [
        # Look-alikes: each is another dialect's frame, or nobody's, and must not be misread.
        (Frame("error", b""), {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}, "anthropic"),
        (Frame(None, b""), {"type": "error", "code": "x", "message": "y", "sequence_number": 3}, "openai-responses"),
        (Frame("error", b""), {"error": "boom", "statusCode": 500}, "agentlang"),
        (Frame("error", b""), {"error": "internal error", "correlation_id": "c1"}, "locus"),
        (Frame("done", b""), {"status": "complete", "total_events": 3}, "locus"),
        (Frame(None, b""), {"type": "done", "message": "hi", "reason": "complete"}, "locus-agentserver"),
        (Frame(None, b""), {"type": "RUN_STARTED", "threadId": "t", "runId": "r"}, "ag-ui"),
        (Frame("tool_start", b""), {"event_type": "tool_start", "intent_id": "i", "timestamp": "x"}, "openintent"),
        (Frame(None, b""), {"type": "done"}, None),
        (Frame("message", b""), {"text": "hello"}, None),
    ],
)
def test_look_alike_frames_are_claimed_by_their_own_dialect_only(frame: Frame, obj: Any, dialect: str | None) -> None:
    claimed = [name for name, d in registry.DIALECTS.items() if d.sniff(frame, obj)]
    assert claimed == ([dialect] if dialect else [])
