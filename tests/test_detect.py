"""Dialect detection: every real capture is recognised as its own dialect and claimed by no other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from otel_bridge.dialects import registry
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import DONE_SENTINEL, Frame, sniff_text_frames
from otel_bridge.dialects.stream import StreamDecoder
from tests.conftest import samples_dir
from tests.support.golden import FIXTURES

# Every capture in ../shared/samples, by the dialect that produced it.
SAMPLE_DIALECTS = {
    "ag-ui-python.sse": "ag-ui",
    "ag-ui-typescript.sse": "ag-ui",
    "agent-event-stream.sse": "agent-event-stream",
    "agentlang-check-nomonitor.sse": "agentlang",
    "agentlang-check.sse": "agentlang",
    "agentlang-flow.sse": "agentlang",
    "agentlang-keepalive.sse": "agentlang",
    "agentlang-llm-error.sse": "agentlang",
    "anthropic-messages-error.sse": "anthropic",
    "anthropic-messages.sse": "anthropic",
    "locus-agentserver.sse": "locus-agentserver",
    "locus.sse": "locus",
    "locus_async_error.sse": "locus",
    "openai-chat.sse": "openai-chat",
    "openai-responses-error.sse": "openai-responses",
    "openai-responses.sse": "openai-responses",
    "openintent-adapter-events.json": "openintent",
    "openintent-events.json": "openintent",
    "openintent-intent.sse": "openintent",
}
# The golden fixtures crafted here, by folder: each must be detected as its folder's dialect too.
CRAFTED = sorted(p for p in FIXTURES.rglob("*.sse"))


def _frames(path: Path) -> list[tuple[Frame, Any]]:
    out = []
    for frame in sniff_text_frames(path.read_text()):
        if frame.data.strip() != DONE_SENTINEL:
            out.append((frame, msgspec.json.decode(frame.data)))
    return out


def _captures() -> list[tuple[Path, str]]:
    samples = [(samples_dir() / name, dialect) for name, dialect in SAMPLE_DIALECTS.items()]
    return samples + [(p, p.parent.name) for p in CRAFTED]


CAPTURES = _captures()
IDS = [f"{p.parent.name}/{p.name}" for p, _ in CAPTURES]


def test_the_sample_table_names_every_shared_capture() -> None:
    assert sorted(p.name for p in samples_dir().iterdir()) == sorted(SAMPLE_DIALECTS)


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
    path = samples_dir() / "ag-ui-typescript.sse"
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
