"""Wire framing: SSE per the WHATWG algorithm, JSON and NDJSON bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_bridge.dialects.framing import (
    Frame,
    FramingError,
    SSEParser,
    frames_for,
    parse_sse,
    sniff_text_frames,
    split_ndjson,
)

STREAM = (
    ": connected\n\n"
    'event: token\ndata: {"text": "a"}\n\n'
    "id: 7\nevent: multi\ndata: line1\ndata: line2\n\n"
    "data: no-event-name\n\n"
    ": keepalive\n"
    "retry: 1500\n"
    "data: [DONE]\n\n"
)
EXPECTED = [
    Frame("token", b'{"text": "a"}', None),
    Frame("multi", b"line1\nline2", "7"),
    Frame(None, b"no-event-name", "7"),  # the last event id persists, as the spec says
    Frame(None, b"[DONE]", "7"),
]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_sse_any_line_ending(newline: str) -> None:
    assert parse_sse(STREAM.replace("\n", newline)) == EXPECTED


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_sse_split_at_every_position_gives_the_same_frames(newline: str) -> None:
    text = STREAM.replace("\n", newline)
    for cut in range(len(text) + 1):
        parser = SSEParser()
        frames = parser.feed(text[:cut]) + parser.feed(text[cut:]) + parser.close()
        assert frames == EXPECTED, f"cut at {cut}"


def test_sse_counts_comments_and_reads_retry() -> None:
    parser = SSEParser()
    parser.feed(STREAM)
    assert parser.comments == 2
    assert parser.retry_ms == 1500


def test_sse_last_frame_without_blank_line_is_kept_at_close() -> None:
    parser = SSEParser()
    assert parser.feed("event: done\ndata: {}") == []
    assert parser.close() == [Frame("done", b"{}", None)]


def test_json_object_array_and_ndjson() -> None:
    assert frames_for(b'{"a": 1}', "application/json") == [Frame(None, b'{"a": 1}')]
    assert frames_for(b'[{"a": 1}, {"b": [2]}]', "application/json; charset=utf-8") == [
        Frame(None, b'{"a": 1}'),
        Frame(None, b'{"b": [2]}'),
    ]
    assert frames_for(b'{"a":1}\n\n{"b":2}\r\n', "application/x-ndjson") == [
        Frame(None, b'{"a":1}'),
        Frame(None, b'{"b":2}'),
    ]


@given(st.lists(st.sampled_from([b"\n", b"\r", b"\r\n", b" ", b"\t", b"\x0b", b"\x1c", b"{}", b"x"])).map(b"".join))
def test_ndjson_lines_are_those_splitlines_gives(body: bytes) -> None:
    # Bodies without a CR are split at LF (the fast path): the frames are those of every line end counted.
    assert split_ndjson(body) == [Frame(None, s) for line in body.splitlines() if (s := line.strip())]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{nope", "not valid JSON"), (b"42", "object or an array"), (b'"s"', "object or an array")],
)
def test_json_body_errors_are_framing_errors(body: bytes, message: str) -> None:
    with pytest.raises(FramingError, match=message):
        frames_for(body, "application/json")


def test_unknown_media_type_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        frames_for(b"x=1", "application/x-www-form-urlencoded")


def test_sniff_text_frames_reads_sse_json_and_ndjson() -> None:
    assert list(sniff_text_frames('[{"a":1}]')) == [Frame(None, b'{"a":1}')]
    assert list(sniff_text_frames('{"a":1}\n{"b":2}\n')) == [Frame(None, b'{"a":1}'), Frame(None, b'{"b":2}')]
    assert list(sniff_text_frames("event: x\ndata: {}\n\n")) == [Frame("x", b"{}")]
