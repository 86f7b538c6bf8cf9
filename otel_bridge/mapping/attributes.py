"""Pure attribute functions: one event in, ``(key, value)`` pairs out.

Kept apart from the span lifecycle so that each can be tested alone. Zero is
data: every test here is ``is not None``, never truthiness.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.model import AgentEvent, Attributes, AttributeValue, EventKind, TokenUsage

Pair = tuple[str, AttributeValue]

# Model-name prefixes that identify a provider when the producer does not say.
_PROVIDER_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("claude", "anthropic"),
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
    ("gemini", "gcp.gemini"),
    ("mistral", "mistral_ai"),
    ("grok", "x_ai"),
    ("deepseek", "deepseek"),
    ("command", "cohere"),
)
_ERROR_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]{0,63})(?::|\s*\(|$)")
_RUN_KINDS = frozenset({EventKind.RUN_STARTED, EventKind.RUN_FINISHED, EventKind.RUN_FAILED})
_CONTENT_KINDS = frozenset({EventKind.THINKING, EventKind.MESSAGE, EventKind.LLM_CHUNK, EventKind.TOOL_REQUESTED})


def provider_for(provider: str | None, model: str | None) -> str | None:
    """The provider as given, else inferred from a well-known model prefix."""
    if provider:
        return provider
    if model:
        lowered = model.lower()
        for prefix, name in _PROVIDER_BY_PREFIX:
            if lowered.startswith(prefix):
                return name
    return None


def error_type_for(event: AgentEvent) -> str:
    """A low-cardinality ``error.type``: the producer's, an exception-like prefix, or ``_OTHER``."""
    if event.error_type:
        return event.error_type
    if event.error:
        match = _ERROR_PREFIX.match(event.error.strip())
        if match is not None:
            return match.group(1)
    return sc.ERROR_TYPE_OTHER


def usage_pairs(usage: TokenUsage | None, latest: bool) -> Iterator[Pair]:
    if usage is not None:
        yield from usage_attributes(usage, latest).items()


def usage_attributes(usage: TokenUsage, latest: bool) -> Attributes:
    out: Attributes = {}
    if usage.input is not None:
        out[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input
    if usage.output is not None:
        out[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output
    if usage.cache_read is not None:
        out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
    if usage.cache_creation is not None:
        out[sc.cache_creation_key(latest)] = usage.cache_creation
    if usage.reasoning is not None:
        out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning
    return out


# The per-span functions below build a dict rather than yield pairs: they run for
# every span start and end, and a dict is about half the cost of a generator.


def common_pairs(event: AgentEvent) -> Iterator[Pair]:
    """Attributes every span a run produces carries."""
    yield sc.BRIDGE_DIALECT, event.dialect
    if event.conversation_id is not None:
        yield sc.GEN_AI_CONVERSATION_ID, event.conversation_id


def _common(out: Attributes, event: AgentEvent) -> Attributes:
    out[sc.BRIDGE_DIALECT] = event.dialect
    if event.conversation_id is not None:
        out[sc.GEN_AI_CONVERSATION_ID] = event.conversation_id
    return out


def run_start_attributes(event: AgentEvent) -> Attributes:
    out: Attributes = {
        sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
        sc.BRIDGE_RUN_ID: event.run_id,
        sc.BRIDGE_SOURCE: event.source,
    }
    _common(out, event)
    if event.kind in _RUN_KINDS:
        out.update(agent_pairs(event))
    elif event.agent is not None:
        out[sc.GEN_AI_AGENT_NAME] = event.agent
    if event.parent_run_id is not None:
        out[sc.BRIDGE_PARENT_RUN_ID] = event.parent_run_id
    return out


def agent_pairs(event: AgentEvent) -> Iterator[Pair]:
    if event.agent is not None:
        yield sc.GEN_AI_AGENT_NAME, event.agent
    provider = provider_for(event.provider, event.model)
    if provider is not None:
        yield sc.GEN_AI_PROVIDER_NAME, provider
    if event.model is not None:
        yield sc.GEN_AI_REQUEST_MODEL, event.model


def llm_start_attributes(event: AgentEvent) -> Attributes:
    """Set at span start (samplers read these)."""
    out: Attributes = {sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT}
    provider = provider_for(event.provider, event.model)
    if provider is not None:
        out[sc.GEN_AI_PROVIDER_NAME] = provider
    if event.model is not None:
        out[sc.GEN_AI_REQUEST_MODEL] = event.model
    if event.stream:
        # Conditionally required: present (true) only when streaming.
        out[sc.GEN_AI_REQUEST_STREAM] = True
    if event.temperature is not None:
        out[sc.GEN_AI_REQUEST_TEMPERATURE] = event.temperature
    if event.max_tokens is not None:
        out[sc.GEN_AI_REQUEST_MAX_TOKENS] = event.max_tokens
    if event.top_p is not None:
        out[sc.GEN_AI_REQUEST_TOP_P] = event.top_p
    if event.call_id is not None:
        out[sc.BRIDGE_CALL_ID] = event.call_id
    return _common(out, event)


def llm_end_attributes(event: AgentEvent, latest: bool) -> Attributes:
    """Set when the call completes or fails."""
    out: Attributes = {}
    provider = provider_for(event.provider, event.model or event.response_model)
    if provider is not None:
        out[sc.GEN_AI_PROVIDER_NAME] = provider
    if event.model is not None:
        out[sc.GEN_AI_REQUEST_MODEL] = event.model
    # A failed call has no response: its model is only echoed back on success.
    response_model = event.response_model or (event.model if event.kind is EventKind.LLM_COMPLETED else None)
    if response_model is not None:
        out[sc.GEN_AI_RESPONSE_MODEL] = response_model
    if event.response_id is not None:
        out[sc.GEN_AI_RESPONSE_ID] = event.response_id
    if event.finish_reasons is not None:
        out[sc.GEN_AI_RESPONSE_FINISH_REASONS] = event.finish_reasons
    if event.usage is not None:
        out.update(usage_attributes(event.usage, latest))
    return out


def tool_start_attributes(event: AgentEvent) -> Attributes:
    out: Attributes = {sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL}
    if event.tool_name is not None:
        out[sc.GEN_AI_TOOL_NAME] = event.tool_name
    if event.call_id is not None:
        out[sc.GEN_AI_TOOL_CALL_ID] = event.call_id
    out[sc.GEN_AI_TOOL_TYPE] = event.tool_type or sc.TOOL_TYPE_FUNCTION
    return _common(out, event)


def tool_content_pairs(event: AgentEvent, limit: int) -> Iterator[Pair]:
    """Opt-in content: tool arguments and result."""
    if event.arguments is not None:
        yield sc.GEN_AI_TOOL_CALL_ARGUMENTS, truncate_text(event.arguments, limit)
    if event.result is not None:
        yield sc.GEN_AI_TOOL_CALL_RESULT, truncate_text(event.result, limit)


def llm_content_pairs(event: AgentEvent, limit: int) -> Iterator[Pair]:
    """Opt-in content: the response text as ``gen_ai.output.messages``."""
    if event.text is not None:
        message = [{"role": "assistant", "parts": [{"type": "text", "content": event.text}]}]
        yield sc.GEN_AI_OUTPUT_MESSAGES, truncate_json(message, limit)


def error_pairs(event: AgentEvent) -> Iterator[Pair]:
    yield sc.ERROR_TYPE, error_type_for(event)


def span_event_pairs(event: AgentEvent, capture_content: bool, limit: int) -> Iterator[Pair]:
    """Attributes of a span event made from a non-span event."""
    yield sc.BRIDGE_EVENT_TYPE, event.original_type
    if event.event_id is not None:
        yield sc.BRIDGE_EVENT_ID, event.event_id
    if event.name is not None:
        yield sc.BRIDGE_STEP_NAME, event.name
    if event.status is not None:
        yield sc.BRIDGE_STATUS, event.status
    if event.error is not None:
        yield sc.BRIDGE_ERROR_MESSAGE, truncate_text(event.error, limit)
        yield sc.ERROR_TYPE, error_type_for(event)
    if event.kind is EventKind.TOOL_REQUESTED:
        # A tool call the model asked for, recorded on its chat span.
        if event.tool_name is not None:
            yield sc.GEN_AI_TOOL_NAME, event.tool_name
        if event.call_id is not None:
            yield sc.GEN_AI_TOOL_CALL_ID, event.call_id
        if capture_content and event.arguments is not None:
            yield sc.GEN_AI_TOOL_CALL_ARGUMENTS, truncate_text(event.arguments, limit)
    if event.payload is not None and (capture_content or event.kind not in _CONTENT_KINDS):
        yield sc.BRIDGE_EVENT_PAYLOAD, truncate_raw(bytes(event.payload), limit)


def truncate_text(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit]


def truncate_raw(raw: bytes, limit: int) -> str:
    """JSON text kept valid when cut: an oversized value becomes a marker object."""
    if len(raw) <= limit:
        return raw.decode("utf-8", errors="replace")
    prefix = raw[: max(0, limit - 64)].decode("utf-8", errors="ignore")
    return msgspec.json.encode({"truncated_bytes": len(raw), "prefix": prefix}).decode()


def truncate_json(value: object, limit: int) -> str:
    return truncate_raw(msgspec.json.encode(value), limit)
