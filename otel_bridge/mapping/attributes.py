"""Pure attribute functions: one event (or a span's end state) in, attributes out.

Every attribute a mapped span carries is written here (the captured content and an
event's payload in :mod:`.content_attributes`), and its name and kind are chosen
here; the span lifecycle (:mod:`.lifecycle`) only decides which of these apply when.
A span's start builds its attributes; what its end adds is written into them by the
``add_*`` functions, so no dict is built only to be merged. Kept apart so that each
can be tested alone. Zero is data: every test here is ``is not None``, never truthiness.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping

from otel_bridge import content
from otel_bridge import semconv as sc
from otel_bridge.mapping.content_attributes import llm_content_pairs as llm_content_pairs
from otel_bridge.mapping.content_attributes import payload_attribute, tool_content_pairs
from otel_bridge.mapping.content_attributes import truncate_raw as truncate_raw
from otel_bridge.model import AgentEvent, Attributes, AttributeValue, EventKind, TokenUsage
from otel_bridge.semconv_latest import naming

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
# Enum members compared with per span or span event, read once: on Python 3.11 every `EventKind.X` goes through
# the enum metaclass's __getattr__ slot, about ten times the cost of reading a global.
_LLM_COMPLETED = EventKind.LLM_COMPLETED
_RUN_FAILED = EventKind.RUN_FAILED
_TOOL_REQUESTED = EventKind.TOOL_REQUESTED


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


def usage_attributes(usage: TokenUsage, latest: bool, *, run: bool = False) -> Attributes:
    """Token counts, named by the conventions' version (``latest``: the opt-in); ``run``: for a run's span."""
    return add_usage({}, usage, latest, run=run)


def add_usage(out: Attributes, usage: TokenUsage, latest: bool, *, run: bool = False) -> Attributes:
    """:func:`usage_attributes` written into ``out`` (a span's attributes): no dict built to be merged."""
    names = naming(latest)
    if usage.input is not None:
        out[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input
    if usage.output is not None:
        out[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output
    cache = names.run_span_cache_tokens or not run
    if usage.cache_read is not None and cache:
        out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
    if usage.cache_creation is not None and cache:
        out[names.usage_cache_write] = usage.cache_creation
    if usage.reasoning is not None:
        out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning
    return out


# The per-span functions below build a dict (or write into one) rather than yield pairs:
# they run for every span start and end, and a dict is about half the cost of a generator.


def _common(out: Attributes, event: AgentEvent) -> Attributes:
    """Attributes every span a run produces carries."""
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
    if event.agent_description is not None:
        out[sc.GEN_AI_AGENT_DESCRIPTION] = event.agent_description
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
    """Set at span start (the request); ``gen_ai.request.stream`` waits for :func:`llm_finish_attributes`."""
    out: Attributes = {sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT}
    provider = provider_for(event.provider, event.model)
    if provider is not None:
        out[sc.GEN_AI_PROVIDER_NAME] = provider
    if event.model is not None:
        out[sc.GEN_AI_REQUEST_MODEL] = event.model
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
    return add_llm_end({}, event, latest)


def add_llm_end(out: Attributes, event: AgentEvent, latest: bool) -> Attributes:
    """:func:`llm_end_attributes` written into ``out``."""
    provider = provider_for(event.provider, event.model or event.response_model)
    if provider is not None:
        out[sc.GEN_AI_PROVIDER_NAME] = provider
    if event.model is not None:
        out[sc.GEN_AI_REQUEST_MODEL] = event.model
    # A failed call has no response: its model is only echoed back on success.
    response_model = event.response_model or (event.model if event.kind is _LLM_COMPLETED else None)
    if response_model is not None:
        out[sc.GEN_AI_RESPONSE_MODEL] = response_model
    if event.response_id is not None:
        out[sc.GEN_AI_RESPONSE_ID] = event.response_id
    if event.finish_reasons is not None:
        out[sc.GEN_AI_RESPONSE_FINISH_REASONS] = event.finish_reasons
    if event.usage is not None:
        add_usage(out, event.usage, latest)
    return out


def inherited_model_attributes(
    span: Mapping[str, AttributeValue], containers: Iterable[Mapping[str, AttributeValue]]
) -> Attributes:
    """A chat span whose stream named no model takes its nearest agent's (the run's) model.

    Locus, AG-UI and Agentlang often name the model once, on the run or agent, and never on
    the call: the call then requested that model. A span that has a request or response model
    of its own keeps it (a response model alone names the span, per the conventions).
    """
    if sc.GEN_AI_REQUEST_MODEL in span or sc.GEN_AI_RESPONSE_MODEL in span:
        return {}
    for attributes in containers:
        model = attributes.get(sc.GEN_AI_REQUEST_MODEL)
        if isinstance(model, str) and model:
            out: Attributes = {sc.GEN_AI_REQUEST_MODEL: model}
            if sc.GEN_AI_PROVIDER_NAME not in span:
                given = attributes.get(sc.GEN_AI_PROVIDER_NAME)
                provider = provider_for(given if isinstance(given, str) else None, model)
                if provider is not None:
                    out[sc.GEN_AI_PROVIDER_NAME] = provider
            return out
    return {}


def has_model(attributes: Mapping[str, AttributeValue]) -> bool:
    return sc.GEN_AI_REQUEST_MODEL in attributes or sc.GEN_AI_RESPONSE_MODEL in attributes


def priced_model(attributes: Mapping[str, AttributeValue]) -> str | None:
    """The model a call is priced by: the one that answered, else the one requested."""
    for key in (sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_MODEL):
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def tool_start_attributes(event: AgentEvent) -> Attributes:
    return add_tool_start({}, event)


def add_tool_start(out: Attributes, event: AgentEvent) -> Attributes:
    if event.attributes is not None:
        out.update(protocol_pairs(event))
    out[sc.GEN_AI_OPERATION_NAME] = sc.OP_EXECUTE_TOOL
    if event.tool_name is not None:
        out[sc.GEN_AI_TOOL_NAME] = event.tool_name
    if event.call_id is not None:
        out[sc.GEN_AI_TOOL_CALL_ID] = event.call_id
    out[sc.GEN_AI_TOOL_TYPE] = event.tool_type or sc.TOOL_TYPE_FUNCTION
    return _common(out, event)


def error_pairs(event: AgentEvent) -> Iterator[Pair]:
    yield sc.ERROR_TYPE, error_type_for(event)


def start_attributes(op: str, event: AgentEvent) -> Attributes:
    """What a span of operation ``op`` says about its start; re-applied by a tool's, agent's or step's end."""
    if op == sc.OP_CHAT:
        return llm_start_attributes(event)
    return add_start({}, op, event)


def add_start(out: Attributes, op: str, event: AgentEvent) -> Attributes:
    """:func:`start_attributes` written into ``out``: a tool's, agent's or step's end re-applies its start's
    (what the end says wins, in the places the start's attributes hold)."""
    if op == sc.OP_CHAT:
        out.update(llm_start_attributes(event))
        return out
    if op == sc.OP_EXECUTE_TOOL:
        return add_tool_start(out, event)
    _common(out, event)
    if op == sc.SPAN_REQUEST:
        if event.name is not None:
            out[sc.BRIDGE_STEP_NAME] = event.name
        if event.attributes is not None:
            out.update(protocol_pairs(event))
        return out
    if op == sc.OP_INVOKE_AGENT:
        out[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
        out.update(agent_pairs(event))
    elif event.name is not None:
        out[sc.BRIDGE_STEP_NAME] = event.name
        if event.name in sc.A2A_METHODS:
            out.update(a2a_pairs(event))
    return out


def protocol_pairs(event: AgentEvent) -> Iterator[Pair]:
    """The protocol attributes a dialect read (MCP's), limited to the names the conventions define for them."""
    for key, value in event.attributes or ():
        if key in sc.PROTOCOL_ATTRIBUTES:
            yield key, value


def a2a_pairs(event: AgentEvent) -> Iterator[Pair]:
    """An A2A call's span (a step named by its method): the method, its task (the run) and the task's state."""
    yield sc.A2A_METHOD_NAME, event.name or ""
    yield sc.A2A_TASK_ID, event.run_id
    if event.status is not None:
        yield sc.A2A_TASK_STATE, event.status


def open_attributes(op: str, event: AgentEvent, capture_content: bool, limit: int) -> Attributes:
    """A span opened by ``event``: its start, whether the dialect inferred that start, and a tool's content (opt-in)."""
    out = llm_start_attributes(event) if op == sc.OP_CHAT else add_start({}, op, event)
    if event.inferred:
        # The dialect inferred this start; its time is not a request time.
        out[sc.BRIDGE_INFERRED] = True
    if capture_content and op == sc.OP_EXECUTE_TOOL:
        out.update(tool_content_pairs(event, limit))
    return out


def continuation_attributes(event: AgentEvent, agent: str | None) -> Attributes:
    """The root of a late event's continuation span: its run attributes, named after the finished run's agent
    unless the event names one."""
    out = run_start_attributes(event)
    if agent is not None:
        out.setdefault(sc.GEN_AI_AGENT_NAME, agent)
    return out


def run_end_attributes(event: AgentEvent, *, named: bool) -> Attributes:
    """A run's terminal event: its agent and model, reported cost, error and status.

    ``named``: the run has an agent name already. The agent that started a run
    names it; a later actor does not rename it.
    """
    out: Attributes = {}
    for key, value in agent_pairs(event):
        if key != sc.GEN_AI_AGENT_NAME or not named:
            out[key] = value
    if event.cost_usd is not None:
        out[sc.BRIDGE_REPORTED_COST] = event.cost_usd
    if event.kind is _RUN_FAILED:
        out.update(error_pairs(event))
    if event.status is not None:
        out[sc.BRIDGE_STATUS] = event.status
    return out


def run_finish_attributes(
    *, close_reason: str | None, usage: TokenUsage | None, cost: float | None, latest: bool
) -> Attributes:
    """A run's root span as it closes: why the bridge closed it (``None``: its producer ended it),
    the run's summed token usage and priced cost."""
    out: Attributes = {}
    if close_reason is not None:
        out[sc.BRIDGE_CLOSE_REASON] = close_reason
    if usage is not None:
        out.update(usage_attributes(usage, latest, run=True))
    if cost is not None:
        out[sc.GEN_AI_USAGE_COST] = cost
    return out


def cost_attributes(cost: float) -> Attributes:
    """The priced cost of a call (USD)."""
    return {sc.GEN_AI_USAGE_COST: cost}


def add_cost(out: Attributes, cost: float) -> None:
    """:func:`cost_attributes` written into ``out``."""
    out[sc.GEN_AI_USAGE_COST] = cost


def stream_attributes(stream_id: str) -> Attributes:
    """The producer's stream id, on the chat span its stream events were paired with."""
    return {sc.BRIDGE_STREAM_ID: stream_id}


def llm_finish_attributes(*, streaming: bool, chunk_count: int, time_to_first_chunk_ns: int | None) -> Attributes:
    """A chat span as it closes, however it closes: whether it streamed, how fast and in how many chunks.

    ``gen_ai.request.stream`` is written here only, once the span's streaming is
    known for certain (from its start, its completion, its chunks or its stream events).
    """
    return add_llm_finish(
        {}, streaming=streaming, chunk_count=chunk_count, time_to_first_chunk_ns=time_to_first_chunk_ns
    )


def add_llm_finish(
    out: Attributes, *, streaming: bool, chunk_count: int, time_to_first_chunk_ns: int | None
) -> Attributes:
    """:func:`llm_finish_attributes` written into ``out``."""
    if streaming:
        # Conditionally required: present (true) only when streaming.
        out[sc.GEN_AI_REQUEST_STREAM] = True
        if time_to_first_chunk_ns is not None:
            out[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = max(0, time_to_first_chunk_ns) / 1e9
    if chunk_count:
        out[sc.BRIDGE_CHUNK_COUNT] = chunk_count
    return out


def incomplete_attributes(reason: str) -> Attributes:
    """A span its producer never ended, closed by the bridge for ``reason`` (``evicted``, ``idle``...)."""
    return {sc.ERROR_TYPE: sc.ERROR_INCOMPLETE, sc.BRIDGE_CLOSE_REASON: reason}


def run_marker_attributes(root: Mapping[str, AttributeValue]) -> Attributes:
    """The "in progress" marker of a long run: its root's attributes so far, findable by agent, conversation
    and run id, but no ``gen_ai.operation.name``, so no metric (the sidecar's or a collector's
    spanmetrics) counts it as an agent invocation."""
    out: Attributes = {k: v for k, v in root.items() if k != sc.GEN_AI_OPERATION_NAME}
    out[sc.BRIDGE_RUN_IN_PROGRESS] = True
    return out


def span_event_pairs(
    event: AgentEvent, capture_content: bool, limit: int, redact: Callable[[str], str] | None = None
) -> Iterator[Pair]:
    """:func:`span_event_attributes` as pairs."""
    yield from span_event_attributes(event, capture_content, limit, redact).items()


def span_event_attributes(
    event: AgentEvent, capture_content: bool, limit: int, redact: Callable[[str], str] | None = None
) -> Attributes:
    """Attributes of a span event made from a non-span event. ``redact`` cleans the original payload
    (the one place it leaves the sidecar) before it is cut to ``limit``."""
    out: Attributes = {sc.BRIDGE_EVENT_TYPE: event.original_type}
    if event.event_id is not None:
        out[sc.BRIDGE_EVENT_ID] = event.event_id
    if event.name is not None:
        out[sc.BRIDGE_STEP_NAME] = event.name
    if event.status is not None:
        out[sc.BRIDGE_STATUS] = event.status
    if event.attributes is not None:
        out.update(protocol_pairs(event))
    if event.error is not None:
        out[sc.BRIDGE_ERROR_MESSAGE] = content.cut_text(event.error, limit)
        out[sc.ERROR_TYPE] = error_type_for(event)
    if event.kind is _TOOL_REQUESTED:
        # A tool call the model asked for, recorded on its chat span.
        if event.tool_name is not None:
            out[sc.GEN_AI_TOOL_NAME] = event.tool_name
        if event.call_id is not None:
            out[sc.GEN_AI_TOOL_CALL_ID] = event.call_id
        if capture_content and event.arguments is not None:
            out[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = content.cut_json_text(event.arguments, limit)
    if event.payload is not None and (capture_content or event.kind not in _CONTENT_KINDS):
        out[sc.BRIDGE_EVENT_PAYLOAD] = payload_attribute(bytes(event.payload), limit, redact)
    return out
