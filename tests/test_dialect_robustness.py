"""Bad input to any new dialect gives a DecodeError or events, never another exception."""

from __future__ import annotations

from typing import Any

import pytest

from otel_bridge.dialects import registry
from otel_bridge.dialects.base import DecodeError, StreamContext
from otel_bridge.dialects.framing import Frame

NEW_DIALECTS = ["locus", "locus-agentserver", "ag-ui", "agentlang", "openai-chat", "openai-responses", "anthropic"]
NAMES = [
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
WEIRD_VALUES: list[Any] = [None, 1, "x", [], [1, "a", None], {}, {"a": [1]}, True, 1.5]


def _objects() -> list[Any]:
    out: list[Any] = [None, 3, "text", [], [1, 2], {}]
    keys = [
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
        "usage",
        "outcome",
        "runId",
        "messageId",
        "toolCallId",
        "object",
        "id",
        "agent",
        "step",
    ]
    for kind in TYPES:
        for value in WEIRD_VALUES:
            out.append(
                {"type": kind, "event_type": kind, **{k: value for k in keys if k not in ("type", "event_type")}}
            )
    out.append({"object": "chat.completion.chunk", "choices": [{"delta": {"tool_calls": [None, {"index": "x"}]}}]})
    return out


@pytest.mark.parametrize("dialect", NEW_DIALECTS)
def test_malformed_frames_never_raise_anything_but_decode_error(dialect: str) -> None:
    decoder = registry.get(dialect).decoder(StreamContext(source="test", stream_key="k", clock_ns=lambda: 10**18))
    decoded = rejected = 0
    for name in NAMES:
        for obj in _objects():
            try:
                decoder.feed(Frame(name, b"{}"), obj)
                decoded += 1
            except DecodeError:
                rejected += 1
    decoder.close()
    assert decoded + rejected == len(NAMES) * len(_objects())
