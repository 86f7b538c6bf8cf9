"""Bad input to any registered dialect gives a DecodeError or events, never another exception.

Every dialect in the registry is fed right names with wrong shapes: the event
names, types and keys below, plus every name, type and top-level key its own
captures under tests/fixtures/<dialect>/ use, so a new dialect is covered as
soon as it is registered with its golden captures.
"""

from __future__ import annotations

import contextlib
from functools import cache
from typing import Any, NamedTuple

import msgspec
import pytest

from otel_bridge.dialects import registry
from otel_bridge.dialects.base import DecodeError, StreamContext
from otel_bridge.dialects.framing import DONE_SENTINEL, Frame, sniff_text_frames
from otel_bridge.model import AgentEvent, EventKind
from tests.support.golden import FIXTURES, cases

NAMES: list[str | None] = [
    None,
    "model_chunk",
    "subagent",
    "terminate",
    "done",
    "error",
    "agent_start",
    "llm_response",
    "message_start",
    "content_block_delta",
    "response.completed",
    "RUN_FINISHED",
]
TYPES = [
    *(kind.value for kind in EventKind),  # the canonical form (generic)
    "model_chunk",
    "subagent",
    "tool_complete",
    "think",
    "done",
    "error",
    "TEXT_MESSAGE_CHUNK",
    "TOOL_CALL_CHUNK",
    "RUN_FINISHED",
    "RUN_ERROR",
    "SUBAGENT_STARTED",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "response.created",
    "response.output_item.done",
    "response.completed",
    "response.failed",
    "response.incomplete",
]
# Right keys, wrong shapes: every value a field might be read from is of the wrong type somewhere here.
WEIRD_VALUES: list[Any] = [None, 1, "x", [], [1, "a", None], {}, {"a": [1]}, {"type": ["x"], "kind": {}}, True, 1.5]
TYPE_KEYS = ("type", "event_type", "kind")


KEYS = [
    "event_type",
    "type",
    "timestamp",
    "usage",
    "tool_calls",
    "event",
    "choices",
    "delta",
    "message",
    "item",
    "response",
    "content_block",
    "index",
    "tokens",
    "error",
    "done",
    "outcome",
    "runId",
    "messageId",
    "toolCallId",
    "object",
    "id",
    "agent",
    "step",
]


class Vocabulary(NamedTuple):
    names: list[str | None]
    types: list[str]
    keys: list[str]


@cache
def _vocabulary(dialect: str) -> Vocabulary:
    """The names, types and keys above, and those the dialect's own captures use."""
    names, types, keys = list(NAMES), list(TYPES), list(KEYS)
    for capture in cases(FIXTURES / dialect):
        for frame in sniff_text_frames(capture.read_text()):
            names.append(frame.event)
            obj = msgspec.json.decode(frame.data) if frame.data.strip() != DONE_SENTINEL else None
            if isinstance(obj, dict):
                types += [obj[key] for key in TYPE_KEYS if isinstance(obj.get(key), str)]
                keys += obj
    return Vocabulary(*(list(dict.fromkeys(words)) for words in (names, types, keys)))


def _objects(vocabulary: Vocabulary) -> list[Any]:
    out: list[Any] = [None, 3, "text", [], [1, 2], {}]
    fields = [k for k in vocabulary.keys if k not in TYPE_KEYS]
    for kind in vocabulary.types:
        for value in WEIRD_VALUES:
            out.append({**{key: kind for key in TYPE_KEYS}, **{k: value for k in fields}})
    out.append({"object": "chat.completion.chunk", "choices": [{"delta": {"tool_calls": [None, {"index": "x"}]}}]})
    return out


@pytest.mark.parametrize("dialect", list(registry.DIALECTS))
def test_malformed_frames_never_raise_anything_but_decode_error(dialect: str) -> None:
    decoder = registry.get(dialect).decoder(StreamContext(source="test", stream_key="k", clock_ns=lambda: 10**18))
    vocabulary = _vocabulary(dialect)
    objects = _objects(vocabulary)
    events: list[object] = []
    for name in vocabulary.names:
        for obj in objects:
            with contextlib.suppress(DecodeError):
                events += decoder.feed(Frame(name, b"{}"), obj)
    events += decoder.close()
    # Any other exception has failed the test by now; what was not rejected came out as events.
    assert [e for e in events if not isinstance(e, AgentEvent)] == []
