"""The pure attribute functions: exact ``(key, value)`` pairs per span kind.

Each test pops every attribute it expects and then asserts nothing is left, so
an attribute added or renamed by mistake fails here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import pytest

from otel_bridge import semconv as sc
from otel_bridge.mapping import attributes as attrs
from otel_bridge.mapping.span_names import span_kind, span_name
from otel_bridge.model import AgentEvent, AttributeValue, EventKind, SpanKind, TokenUsage

T0 = 1_800_000_000_000_000_000
LIMIT = 1000


def ev(kind: EventKind, **fields: Any) -> AgentEvent:
    return AgentEvent(kind=kind, run_id="run-1", timestamp_ns=T0, dialect="test", original_type="orig", **fields)


def left(pairs: Mapping[str, AttributeValue] | Iterable[tuple[str, AttributeValue]]) -> dict[str, AttributeValue]:
    """A mutable copy to pop from (a generator of pairs yields each key once)."""
    items = list(pairs.items() if isinstance(pairs, Mapping) else pairs)
    out = dict(items)
    assert len(out) == len(items), "a key was yielded twice"
    return out


# --- runs ------------------------------------------------------------------------


def test_run_start_attributes_of_a_run_event() -> None:
    a = left(
        attrs.run_start_attributes(
            ev(
                EventKind.RUN_STARTED,
                agent="planner",
                model="claude-sonnet-4",
                conversation_id="th-1",
                parent_run_id="run-0",
                source="replay",
            )
        )
    )
    assert a.pop(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT
    assert a.pop(sc.BRIDGE_RUN_ID) == "run-1"
    assert a.pop(sc.BRIDGE_SOURCE) == "replay"
    assert a.pop(sc.BRIDGE_DIALECT) == "test"
    assert a.pop(sc.GEN_AI_CONVERSATION_ID) == "th-1"
    assert a.pop(sc.GEN_AI_AGENT_NAME) == "planner"
    assert a.pop(sc.GEN_AI_PROVIDER_NAME) == "anthropic"  # inferred from the model's prefix
    assert a.pop(sc.GEN_AI_REQUEST_MODEL) == "claude-sonnet-4"
    assert a.pop(sc.BRIDGE_PARENT_RUN_ID) == "run-0"
    assert a == {}


def test_run_start_attributes_of_another_event_take_only_its_agent() -> None:
    # A run opened by an LLM event: that call's model is not the run's.
    a = left(attrs.run_start_attributes(ev(EventKind.LLM_STARTED, agent="coder", model="gpt-4o")))
    assert a.pop(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT
    assert a.pop(sc.BRIDGE_RUN_ID) == "run-1"
    assert a.pop(sc.BRIDGE_SOURCE) == "http"
    assert a.pop(sc.BRIDGE_DIALECT) == "test"
    assert a.pop(sc.GEN_AI_AGENT_NAME) == "coder"
    assert a == {}


def test_continuation_is_named_after_the_finished_runs_agent() -> None:
    a = left(attrs.continuation_attributes(ev(EventKind.MESSAGE), "planner"))
    assert a.pop(sc.GEN_AI_AGENT_NAME) == "planner"
    assert a.pop(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT
    assert a.pop(sc.BRIDGE_RUN_ID) == "run-1"
    assert a.pop(sc.BRIDGE_SOURCE) == "http"
    assert a.pop(sc.BRIDGE_DIALECT) == "test"
    assert a == {}


def test_continuation_keeps_the_agent_its_event_names() -> None:
    a = attrs.continuation_attributes(ev(EventKind.MESSAGE, agent="late"), "planner")
    assert a[sc.GEN_AI_AGENT_NAME] == "late"
    assert sc.GEN_AI_AGENT_NAME not in attrs.continuation_attributes(ev(EventKind.MESSAGE), None)


def test_run_end_attributes_of_a_failed_run() -> None:
    event = ev(
        EventKind.RUN_FAILED,
        agent="critic",
        provider="openai",
        model="gpt-4o",
        cost_usd=0.0,
        error="TimeoutError: upstream",
        status="failed",
    )
    a = left(attrs.run_end_attributes(event, named=False))
    assert a.pop(sc.GEN_AI_AGENT_NAME) == "critic"
    assert a.pop(sc.GEN_AI_PROVIDER_NAME) == "openai"
    assert a.pop(sc.GEN_AI_REQUEST_MODEL) == "gpt-4o"
    assert a.pop(sc.BRIDGE_REPORTED_COST) == 0.0  # zero is data
    assert a.pop(sc.ERROR_TYPE) == "TimeoutError"
    assert a.pop(sc.BRIDGE_STATUS) == "failed"
    assert a == {}


def test_run_end_does_not_rename_a_named_run_nor_type_a_finished_one() -> None:
    a = left(attrs.run_end_attributes(ev(EventKind.RUN_FINISHED, agent="critic", error="x"), named=True))
    assert a == {}  # no agent (named already), no error.type (not a failure)


def test_run_finish_attributes() -> None:
    usage = TokenUsage(input=10, output=0, cache_read=4, cache_creation=2, reasoning=1)
    a = left(attrs.run_finish_attributes(close_reason=sc.CLOSE_IDLE, usage=usage, cost=0.5, latest=False))
    assert a.pop(sc.BRIDGE_CLOSE_REASON) == sc.CLOSE_IDLE
    assert a.pop(sc.GEN_AI_USAGE_INPUT_TOKENS) == 10
    assert a.pop(sc.GEN_AI_USAGE_OUTPUT_TOKENS) == 0
    assert a.pop(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) == 4
    assert a.pop(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS) == 2
    assert a.pop(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) == 1
    assert a.pop(sc.GEN_AI_USAGE_COST) == 0.5
    assert a == {}
    assert attrs.run_finish_attributes(close_reason=None, usage=None, cost=None, latest=False) == {}


def test_usage_follows_the_chosen_convention_version() -> None:
    latest = left(attrs.usage_attributes(TokenUsage(cache_creation=3), latest=True))
    assert latest.pop(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS) == 3
    assert latest == {}
    assert attrs.usage_attributes(TokenUsage(), latest=True) == {}


# --- chat spans ------------------------------------------------------------------


def test_llm_start_attributes() -> None:
    event = ev(
        EventKind.LLM_STARTED,
        model="gpt-4o",
        stream=True,
        temperature=0.0,
        max_tokens=0,
        top_p=1.0,
        call_id="c1",
        conversation_id="th-1",
    )
    a = left(attrs.llm_start_attributes(event))
    assert a.pop(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT
    assert a.pop(sc.GEN_AI_PROVIDER_NAME) == "openai"
    assert a.pop(sc.GEN_AI_REQUEST_MODEL) == "gpt-4o"
    assert a.pop(sc.GEN_AI_REQUEST_TEMPERATURE) == 0.0
    assert a.pop(sc.GEN_AI_REQUEST_MAX_TOKENS) == 0
    assert a.pop(sc.GEN_AI_REQUEST_TOP_P) == 1.0
    assert a.pop(sc.BRIDGE_CALL_ID) == "c1"
    assert a.pop(sc.BRIDGE_DIALECT) == "test"
    assert a.pop(sc.GEN_AI_CONVERSATION_ID) == "th-1"
    # gen_ai.request.stream is written once, when the span closes (llm_finish_attributes).
    assert a == {}


def test_llm_end_attributes_of_a_completion() -> None:
    event = ev(
        EventKind.LLM_COMPLETED,
        model="gpt-4o",
        response_id="chatcmpl-1",
        finish_reasons=("stop",),
        usage=TokenUsage(input=5, output=7),
    )
    a = left(attrs.llm_end_attributes(event, latest=False))
    assert a.pop(sc.GEN_AI_PROVIDER_NAME) == "openai"
    assert a.pop(sc.GEN_AI_REQUEST_MODEL) == "gpt-4o"
    assert a.pop(sc.GEN_AI_RESPONSE_MODEL) == "gpt-4o"  # echoed back on success
    assert a.pop(sc.GEN_AI_RESPONSE_ID) == "chatcmpl-1"
    assert a.pop(sc.GEN_AI_RESPONSE_FINISH_REASONS) == ("stop",)
    assert a.pop(sc.GEN_AI_USAGE_INPUT_TOKENS) == 5
    assert a.pop(sc.GEN_AI_USAGE_OUTPUT_TOKENS) == 7
    assert a == {}


def test_llm_end_attributes_of_a_failure_have_no_response_model() -> None:
    a = left(attrs.llm_end_attributes(ev(EventKind.LLM_FAILED, model="gemini-2.0-flash"), latest=False))
    assert a.pop(sc.GEN_AI_PROVIDER_NAME) == "gcp.gemini"
    assert a.pop(sc.GEN_AI_REQUEST_MODEL) == "gemini-2.0-flash"
    assert a == {}


def test_llm_content_pairs() -> None:
    a = left(attrs.llm_content_pairs(ev(EventKind.LLM_COMPLETED, text="hi"), LIMIT))
    messages = a.pop(sc.GEN_AI_OUTPUT_MESSAGES)
    assert isinstance(messages, str)
    assert msgspec.json.decode(messages) == [{"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}]
    assert a == {}
    assert left(attrs.llm_content_pairs(ev(EventKind.LLM_COMPLETED), LIMIT)) == {}


def test_llm_finish_attributes_of_a_streamed_call() -> None:
    a = left(attrs.llm_finish_attributes(streaming=True, chunk_count=3, time_to_first_chunk_ns=250_000_000))
    assert a.pop(sc.GEN_AI_REQUEST_STREAM) is True
    assert a.pop(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) == 0.25
    assert a.pop(sc.BRIDGE_CHUNK_COUNT) == 3
    assert a == {}


def test_llm_finish_attributes_clamp_a_chunk_before_its_start_to_zero() -> None:
    a = attrs.llm_finish_attributes(streaming=True, chunk_count=1, time_to_first_chunk_ns=-5)
    assert a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == 0.0


def test_llm_finish_attributes_of_a_call_not_streamed() -> None:
    # "stream" is present only when true; no chunks, no count.
    assert attrs.llm_finish_attributes(streaming=False, chunk_count=0, time_to_first_chunk_ns=None) == {}
    a = left(attrs.llm_finish_attributes(streaming=True, chunk_count=0, time_to_first_chunk_ns=None))
    assert a.pop(sc.GEN_AI_REQUEST_STREAM) is True
    assert a == {}


def test_cost_and_stream_attributes() -> None:
    assert attrs.cost_attributes(0.0) == {sc.GEN_AI_USAGE_COST: 0.0}
    assert attrs.stream_attributes("s-1") == {sc.BRIDGE_STREAM_ID: "s-1"}


# --- tools, agents, steps ------------------------------------------------------------


def test_tool_start_attributes() -> None:
    a = left(attrs.tool_start_attributes(ev(EventKind.TOOL_STARTED, tool_name="search", call_id="t1")))
    assert a.pop(sc.GEN_AI_OPERATION_NAME) == sc.OP_EXECUTE_TOOL
    assert a.pop(sc.GEN_AI_TOOL_NAME) == "search"
    assert a.pop(sc.GEN_AI_TOOL_CALL_ID) == "t1"
    assert a.pop(sc.GEN_AI_TOOL_TYPE) == sc.TOOL_TYPE_FUNCTION  # the default
    assert a.pop(sc.BRIDGE_DIALECT) == "test"
    assert a == {}


def test_start_attributes_of_an_agent_span() -> None:
    a = left(attrs.start_attributes(sc.OP_INVOKE_AGENT, ev(EventKind.AGENT_STARTED, agent="sub", model="o3-mini")))
    assert a.pop(sc.BRIDGE_DIALECT) == "test"
    assert a.pop(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT
    assert a.pop(sc.GEN_AI_AGENT_NAME) == "sub"
    assert a.pop(sc.GEN_AI_PROVIDER_NAME) == "openai"
    assert a.pop(sc.GEN_AI_REQUEST_MODEL) == "o3-mini"
    assert a == {}


def test_start_attributes_of_a_step_span() -> None:
    a = left(attrs.start_attributes(sc.SPAN_STEP, ev(EventKind.STEP_STARTED, name="plan")))
    assert a.pop(sc.BRIDGE_DIALECT) == "test"
    assert a.pop(sc.BRIDGE_STEP_NAME) == "plan"
    assert a == {}
    assert attrs.start_attributes(sc.SPAN_STEP, ev(EventKind.STEP_STARTED)) == {sc.BRIDGE_DIALECT: "test"}


def test_start_attributes_dispatch_chat_and_tool() -> None:
    llm = ev(EventKind.LLM_STARTED, model="gpt-4o")
    tool = ev(EventKind.TOOL_STARTED, tool_name="x")
    assert attrs.start_attributes(sc.OP_CHAT, llm) == attrs.llm_start_attributes(llm)
    assert attrs.start_attributes(sc.OP_EXECUTE_TOOL, tool) == attrs.tool_start_attributes(tool)


def test_open_attributes_of_an_inferred_tool_start_with_content() -> None:
    event = ev(
        EventKind.TOOL_STARTED, tool_name="search", tool_type="extension", inferred=True, arguments="a" * 20, result="r"
    )
    a = left(attrs.open_attributes(sc.OP_EXECUTE_TOOL, event, capture_content=True, limit=8))
    assert a.pop(sc.GEN_AI_OPERATION_NAME) == sc.OP_EXECUTE_TOOL
    assert a.pop(sc.GEN_AI_TOOL_NAME) == "search"
    assert a.pop(sc.GEN_AI_TOOL_TYPE) == "extension"
    assert a.pop(sc.BRIDGE_DIALECT) == "test"
    assert a.pop(sc.BRIDGE_INFERRED) is True
    assert a.pop(sc.GEN_AI_TOOL_CALL_ARGUMENTS) == "a" * 8  # cut at the limit
    assert a.pop(sc.GEN_AI_TOOL_CALL_RESULT) == "r"
    assert a == {}


def test_open_attributes_capture_no_content_unless_asked() -> None:
    event = ev(EventKind.TOOL_STARTED, tool_name="search", arguments="{}")
    assert attrs.open_attributes(sc.OP_EXECUTE_TOOL, event, False, LIMIT) == attrs.tool_start_attributes(event)
    # Content is a tool's only: a chat span's start carries none.
    llm = ev(EventKind.LLM_STARTED, arguments="{}")
    assert attrs.open_attributes(sc.OP_CHAT, llm, True, LIMIT) == attrs.llm_start_attributes(llm)


def test_incomplete_attributes() -> None:
    a = left(attrs.incomplete_attributes(sc.CLOSE_EVICTED))
    assert a.pop(sc.ERROR_TYPE) == sc.ERROR_INCOMPLETE
    assert a.pop(sc.BRIDGE_CLOSE_REASON) == sc.CLOSE_EVICTED
    assert a == {}


# --- span names and kinds ------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "attributes", "name"),
    [
        (sc.OP_CHAT, {sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-1"}, "chat gpt-4o"),
        (sc.OP_CHAT, {sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-1"}, "chat gpt-4o-1"),
        (sc.OP_CHAT, {sc.GEN_AI_REQUEST_MODEL: ""}, "chat"),
        (sc.OP_EXECUTE_TOOL, {sc.GEN_AI_TOOL_NAME: "search"}, "execute_tool search"),
        (sc.OP_EXECUTE_TOOL, {}, "execute_tool"),
        (sc.OP_INVOKE_AGENT, {sc.GEN_AI_AGENT_NAME: "planner"}, "invoke_agent planner"),
        (sc.OP_INVOKE_AGENT, {sc.GEN_AI_TOOL_NAME: "search"}, "invoke_agent"),
        (sc.SPAN_STEP, {sc.BRIDGE_STEP_NAME: "plan"}, "step plan"),
        (sc.SPAN_STEP, {}, "step"),
    ],
)
def test_span_name(op: str, attributes: dict[str, AttributeValue], name: str) -> None:
    assert span_name(op, attributes) == name


def test_span_kind() -> None:
    assert span_kind(sc.OP_CHAT, {}) is SpanKind.CLIENT
    for op in (sc.OP_EXECUTE_TOOL, sc.OP_INVOKE_AGENT, sc.SPAN_STEP, sc.SPAN_REQUEST):
        assert span_kind(op, {}) is SpanKind.INTERNAL
    # An MCP request (its tool calls too) is seen in front of the server that serves it.
    for op in (sc.OP_EXECUTE_TOOL, sc.SPAN_REQUEST):
        assert span_kind(op, {sc.MCP_METHOD_NAME: "tools/call"}) is SpanKind.SERVER


# --- span events and helpers ---------------------------------------------------------


def test_span_event_pairs_of_a_requested_tool_call() -> None:
    event = ev(
        EventKind.TOOL_REQUESTED,
        event_id="e1",
        tool_name="search",
        call_id="t1",
        arguments="{}",
        payload=msgspec.Raw(b'{"x":1}'),
    )
    a = left(attrs.span_event_pairs(event, capture_content=True, limit=LIMIT))
    assert a.pop(sc.BRIDGE_EVENT_TYPE) == "orig"
    assert a.pop(sc.BRIDGE_EVENT_ID) == "e1"
    assert a.pop(sc.GEN_AI_TOOL_NAME) == "search"
    assert a.pop(sc.GEN_AI_TOOL_CALL_ID) == "t1"
    assert a.pop(sc.GEN_AI_TOOL_CALL_ARGUMENTS) == "{}"
    assert a.pop(sc.BRIDGE_EVENT_PAYLOAD) == '{"x":1}'
    assert a == {}


def test_span_event_pairs_keep_content_out_unless_captured() -> None:
    event = ev(EventKind.LLM_CHUNK, name="n", status="s", error="boom", payload=msgspec.Raw(b'{"text":"secret"}'))
    a = left(attrs.span_event_pairs(event, capture_content=False, limit=LIMIT))
    assert a.pop(sc.BRIDGE_EVENT_TYPE) == "orig"
    assert a.pop(sc.BRIDGE_STEP_NAME) == "n"
    assert a.pop(sc.BRIDGE_STATUS) == "s"
    assert a.pop(sc.BRIDGE_ERROR_MESSAGE) == "boom"
    assert a.pop(sc.ERROR_TYPE) == "boom"
    assert a == {}  # a chunk's payload is content


@pytest.mark.parametrize(
    ("fields", "error_type"),
    [
        ({"error_type": "rate_limited", "error": "TimeoutError: x"}, "rate_limited"),
        ({"error": "TimeoutError: upstream"}, "TimeoutError"),
        ({"error": "httpx.ReadTimeout(...)"}, "httpx.ReadTimeout"),
        ({"error": "something went wrong"}, sc.ERROR_TYPE_OTHER),
        ({}, sc.ERROR_TYPE_OTHER),
    ],
)
def test_error_type_for(fields: dict[str, Any], error_type: str) -> None:
    assert attrs.error_type_for(ev(EventKind.TOOL_FAILED, **fields)) == error_type


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("azure.ai.openai", "gpt-4o", "azure.ai.openai"),
        (None, "Claude-3-5-sonnet", "anthropic"),
        (None, "mistral-large", "mistral_ai"),
        (None, "llama-3", None),
        (None, None, None),
    ],
)
def test_provider_for(provider: str | None, model: str | None, expected: str | None) -> None:
    assert attrs.provider_for(provider, model) == expected


def test_truncate_raw_keeps_json_valid() -> None:
    raw = b'{"text":"' + b"x" * 200 + b'"}'
    assert attrs.truncate_raw(raw, len(raw)) == raw.decode()
    cut = msgspec.json.decode(attrs.truncate_raw(raw, 100))
    assert cut == {"truncated_bytes": len(raw), "prefix": raw[:36].decode()}
