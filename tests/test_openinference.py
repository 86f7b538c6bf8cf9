"""OpenInference attributes: derived from the GenAI ones, added beside them, every name covered.

The golden cases ``tests/fixtures/*/*-openinference.*`` hold whole span trees with OpenInference
on; here, the pure functions alone (whole outputs, every pair popped) and a check that every
OpenInference name in ``semconv.py`` is produced by a golden case or by these tests.
"""

from __future__ import annotations

from typing import Any

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.mapping.openinference import openinference_attributes, with_openinference
from otel_bridge.model import Attributes, AttributeValue, SpanKind, SpanRecord
from tests.support.golden import cases, load_expected, options_for

# Every OpenInference attribute *name* in semconv (kinds, mime types and the provider maps are values).
OI_NAMES = {
    value
    for name, value in vars(sc).items()
    if name.startswith("OI_")
    and isinstance(value, str)
    and not name.startswith(("OI_KIND_", "OI_MIME_"))
    and name != "OI_PROJECT_NAME"  # a resource attribute: see test_the_project_name_is_a_resource_attribute
}
MESSAGE_SUFFIXES = {sc.OI_MESSAGE_ROLE, sc.OI_MESSAGE_CONTENT, sc.OI_MESSAGE_TOOL_CALL_ID, sc.OI_MESSAGE_TOOL_CALLS}
CALL_SUFFIXES = {sc.OI_TOOL_CALL_ID, sc.OI_TOOL_CALL_FUNCTION_NAME, sc.OI_TOOL_CALL_FUNCTION_ARGUMENTS}


def full_chat() -> Attributes:
    """A chat span with every GenAI attribute OpenInference reads."""
    return {
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_PROVIDER_NAME: "anthropic",
        sc.GEN_AI_RESPONSE_MODEL: "claude-sonnet-4-5-20250929",
        sc.GEN_AI_CONVERSATION_ID: "conv-1",
        sc.GEN_AI_AGENT_NAME: "planner",
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.5,
        sc.GEN_AI_REQUEST_MAX_TOKENS: 100,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 0,  # zero is data
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 3,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 2,
        sc.GEN_AI_USAGE_COST: 0.25,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS: '[{"type":"text","content":"Be brief."}]',
        sc.GEN_AI_INPUT_MESSAGES: msgspec.json.encode(
            [
                {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t0", "result": {"t": 18}}]},
            ]
        ).decode(),
        sc.GEN_AI_OUTPUT_MESSAGES: msgspec.json.encode(
            [
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "text", "content": "Checking"},
                        {"type": "tool_call", "id": "t1", "name": "get", "arguments": {"city": "Lisbon"}},
                    ],
                }
            ]
        ).decode(),
    }


def test_a_chat_span_flattened_the_openinference_way() -> None:
    a = openinference_attributes(full_chat())
    out = "llm.output_messages.0.message."
    inp = "llm.input_messages."
    expected: dict[str, AttributeValue] = {
        sc.OI_SPAN_KIND: "LLM",
        sc.OI_SESSION_ID: "conv-1",
        sc.OI_AGENT_NAME: "planner",
        sc.OI_LLM_MODEL_NAME: "claude-sonnet-4-5-20250929",  # no request model: the response model
        sc.OI_LLM_PROVIDER: "anthropic",
        sc.OI_LLM_SYSTEM: "anthropic",
        sc.OI_TOKEN_PROMPT: 0,
        sc.OI_TOKEN_COMPLETION: 7,
        sc.OI_TOKEN_TOTAL: 7,
        sc.OI_TOKEN_CACHE_READ: 0,
        sc.OI_TOKEN_CACHE_WRITE: 3,
        sc.OI_TOKEN_REASONING: 2,
        sc.OI_COST_TOTAL: 0.25,
        sc.OI_LLM_INVOCATION_PARAMETERS: '{"temperature":0.5,"max_tokens":100}',
        inp + "0.message.role": "system",
        inp + "0.message.content": "Be brief.",
        inp + "1.message.role": "user",
        inp + "1.message.content": "Weather?",
        inp + "2.message.role": "tool",
        inp + "2.message.tool_call_id": "t0",
        inp + "2.message.content": '{"t":18}',
        sc.OI_INPUT_MIME_TYPE: sc.OI_MIME_JSON,
        out + "role": "assistant",
        out + "content": "Checking",
        out + "tool_calls.0.tool_call.id": "t1",
        out + "tool_calls.0.tool_call.function.name": "get",
        out + "tool_calls.0.tool_call.function.arguments": '{"city":"Lisbon"}',
        sc.OI_OUTPUT_VALUE: "Checking",
        sc.OI_OUTPUT_MIME_TYPE: sc.OI_MIME_TEXT,
    }
    input_value = a.pop(sc.OI_INPUT_VALUE)
    assert isinstance(input_value, str)
    assert [m["role"] for m in msgspec.json.decode(input_value)] == ["system", "user", "tool"]
    assert a == expected


def test_tool_agent_and_step_spans() -> None:
    tool = {
        sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
        sc.GEN_AI_TOOL_NAME: "search",
        sc.GEN_AI_TOOL_CALL_ID: "t1",
        sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"q":"x"}',
        sc.GEN_AI_TOOL_CALL_RESULT: "found",
    }
    assert openinference_attributes(tool) == {
        sc.OI_SPAN_KIND: "TOOL",
        sc.OI_TOOL_NAME: "search",
        sc.OI_TOOL_CALL_ID: "t1",
        sc.OI_TOOL_PARAMETERS: '{"q":"x"}',
        sc.OI_INPUT_VALUE: '{"q":"x"}',
        sc.OI_INPUT_MIME_TYPE: sc.OI_MIME_JSON,
        sc.OI_OUTPUT_VALUE: "found",
        sc.OI_OUTPUT_MIME_TYPE: sc.OI_MIME_TEXT,
    }
    agent = {sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.GEN_AI_AGENT_NAME: "a"}
    assert openinference_attributes(agent) == {sc.OI_SPAN_KIND: "AGENT", sc.OI_AGENT_NAME: "a"}
    step = {sc.BRIDGE_STEP_NAME: "plan"}
    assert openinference_attributes(step) == {sc.OI_SPAN_KIND: "CHAIN"}


def test_a_truncated_output_is_shown_as_its_marker() -> None:
    marker = '{"truncated_bytes":9000,"prefix":"[{\\"role\\""}'
    a = openinference_attributes({sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT, sc.GEN_AI_OUTPUT_MESSAGES: marker})
    assert a == {
        sc.OI_SPAN_KIND: "LLM",
        sc.OI_OUTPUT_VALUE: marker,
        sc.OI_OUTPUT_MIME_TYPE: sc.OI_MIME_JSON,
    }


def test_openinference_is_added_never_instead() -> None:
    attributes = full_chat()
    span = SpanRecord(
        trace_id=b"t" * 16,
        span_id=b"s" * 8,
        parent_span_id=None,
        name="chat",
        kind=SpanKind.CLIENT,
        start_ns=1,
        end_ns=2,
        attributes=dict(attributes),
    )
    out = with_openinference(span).attributes
    assert {k: v for k, v in out.items() if k in attributes} == attributes
    assert set(out) - set(attributes) == set(openinference_attributes(attributes))


def _names_in(doc: Any, into: set[str]) -> None:
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "attributes" and isinstance(value, dict):
                into.update(value)
            _names_in(value, into)
    elif isinstance(doc, list):
        for item in doc:
            _names_in(item, into)


def _base_names(keys: set[str]) -> set[str]:
    """Flattened message keys back to their semconv parts (``llm.output_messages``, ``message.role``...)."""
    out = set(keys)
    for key in keys:
        for prefix in (sc.OI_INPUT_MESSAGES, sc.OI_OUTPUT_MESSAGES):
            if key.startswith(prefix + "."):
                out.add(prefix)
                rest = key[len(prefix) + 1 :].split(".", 1)[1]
                out.update(s for s in MESSAGE_SUFFIXES if rest.startswith(s))
                if rest.startswith(sc.OI_MESSAGE_TOOL_CALLS + "."):
                    out.update(s for s in CALL_SUFFIXES if rest.endswith(s))
    return out


def test_every_openinference_name_has_a_golden_or_a_whole_output_test() -> None:
    golden: set[str] = set()
    oi_cases = [c for c in cases() if options_for(c).get("openinference")]
    assert {c.parent.name for c in oi_cases} >= {"openai-chat", "anthropic", "locus", "ag-ui"}
    for case in oi_cases:
        _names_in(load_expected(case), golden)
    golden = _base_names(golden)
    unit = _base_names(set(openinference_attributes(full_chat())))
    missing_from_goldens = OI_NAMES - golden
    # Only what no capture has (input messages, system instructions, cache writes...) is left to the unit test.
    assert missing_from_goldens <= unit, sorted(missing_from_goldens - unit)
    assert sc.OI_SPAN_KIND in golden
    assert sc.OI_LLM_MODEL_NAME in golden
    assert sc.OI_TOOL_PARAMETERS in golden
    assert sc.OI_SESSION_ID in golden


def test_the_project_name_is_a_resource_attribute() -> None:
    from otel_bridge.assembly import resource_for
    from otel_bridge.config import SemconvSettings, Settings

    assert sc.OI_PROJECT_NAME not in resource_for(Settings())
    resource = resource_for(Settings(semconv=SemconvSettings(project_name="agents")))
    assert resource[sc.OI_PROJECT_NAME] == "agents"
    # the user's own resource attributes still win
    explicit = Settings(semconv=SemconvSettings(project_name="a"), resource_attributes={sc.OI_PROJECT_NAME: "b"})
    assert resource_for(explicit)[sc.OI_PROJECT_NAME] == "b"


def test_environment_switches() -> None:
    from otel_bridge.config import load_settings

    s = load_settings(environ={"OTEL_BRIDGE_OPENINFERENCE": "true", "OTEL_BRIDGE_PROJECT_NAME": "p"})
    assert (s.semconv.openinference, s.semconv.project_name) == (True, "p")
    assert load_settings(environ={}).semconv.openinference is False
