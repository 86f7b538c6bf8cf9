"""The SSE framing helper: exact bytes of every frame the feed writes."""

from __future__ import annotations

import pytest
from sse_starlette import ServerSentEvent

from otel_bridge.sinks.feed import sse
from otel_bridge.sinks.feed.subscriber import HEARTBEAT


def test_data_only() -> None:
    assert sse.frame(b'{"a":1}') == b'data: {"a":1}\n\n'


def test_id_event_and_data_in_that_order() -> None:
    assert sse.frame(b"{}", event="llm.completed", event_id=1000) == b"id: 1000\nevent: llm.completed\ndata: {}\n\n"


def test_id_without_event() -> None:
    assert sse.frame(b"{}", event_id=7) == b"id: 7\ndata: {}\n\n"


def test_event_without_id() -> None:
    assert sse.frame(b"{}", event="missed") == b"event: missed\ndata: {}\n\n"


def test_empty_data_is_still_an_event() -> None:
    assert sse.frame(b"") == b"data: \n\n"


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"one\ntwo", b"data: one\ndata: two\n"),
        (b"one\r\ntwo\rthree", b"data: one\ndata: two\ndata: three\n"),
        # A trailing line break is an empty last line: the client's joined data ends with "\n".
        (b"one\n", b"data: one\ndata: \n"),
        (b"\n", b"data: \ndata: \n"),
    ],
)
def test_multi_line_data_is_one_data_line_per_line(data: bytes, lines: bytes) -> None:
    assert sse.frame(data, event="x", event_id=1) == b"id: 1\nevent: x\n" + lines + b"\n"


def test_split_lines_false_writes_the_data_as_given() -> None:
    # The caller's promise (compact JSON) is trusted: no scan, one data line.
    assert sse.frame(b'{"a":"b"}', split_lines=False) == b'data: {"a":"b"}\n\n'
    assert sse.frame(b'{"a":"b"}', split_lines=False) == sse.frame(b'{"a":"b"}')


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "end\n"])
def test_an_event_name_with_a_line_break_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        sse.frame(b"{}", event=name)


def test_comment() -> None:
    assert sse.comment("heartbeat") == b": heartbeat\n\n"
    assert sse.comment() == b": \n\n"
    assert sse.comment("two\nlines") == b": two\n: lines\n\n"


def test_comment_is_the_heartbeat_the_stream_response_sends() -> None:
    # The feed's heartbeat is the bytes sse-starlette's pings were (the wire did not change with the response).
    assert HEARTBEAT == sse.comment("heartbeat") == ServerSentEvent(comment="heartbeat", sep="\n").encode()


@pytest.mark.parametrize("event", [None, "llm.completed", "missed"])
@pytest.mark.parametrize("event_id", [None, 0, 7, 1_764_000_000_000_123, "1764000000000-12"])
@pytest.mark.parametrize("data", [b"", b"{}", b'{"name":"x"}' * 50])
def test_frame_size_is_the_length_of_the_frame(data: bytes, event: str | None, event_id: int | str | None) -> None:
    framed = sse.frame(data, event=event, event_id=event_id, split_lines=False)
    assert sse.frame_size(len(data), event=event, event_id=event_id) == len(framed)


def test_retry() -> None:
    assert sse.retry(3000) == b"retry: 3000\n\n"


@pytest.mark.parametrize(
    ("data", "event", "event_id"),
    [
        ("a", None, None),
        ("multi\nline", "llm.chunk", 42),
        ('{"k":[1,2]}', "run.started", None),
        ("x", None, 0),
    ],
)
def test_same_bytes_as_sse_starlette(data: str, event: str | None, event_id: int | None) -> None:
    """Another SSE encoder writes the format the same way (with ``\\n`` line ends)."""
    theirs = ServerSentEvent(data, event=event, id=None if event_id is None else str(event_id), sep="\n")
    assert sse.frame(data.encode(), event=event, event_id=event_id) == theirs.encode()
