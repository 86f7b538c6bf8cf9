"""OpenInference attributes (what Arize Phoenix and Arize read), derived from a finished span's GenAI ones.

Pure functions: a span's GenAI attributes in, its OpenInference attributes out. They are
*added* beside the GenAI attributes, never instead: a GenAI backend sees the same span as
before, Phoenix sees its own vocabulary. Nothing here reads an event: whatever the GenAI
attributes say (already redacted and truncated) is all OpenInference says, so the two can
never disagree.

* ``openinference.span.kind``: ``chat`` (and the other inference operations) -> LLM,
  ``execute_tool`` -> TOOL, ``invoke_agent`` -> AGENT, anything else (steps, a long
  run's marker) -> CHAIN.
* LLM spans: ``llm.model_name`` (request model, else response model), ``llm.provider``
  and ``llm.system``, token counts with their cache and reasoning details, ``llm.cost.total``,
  the invocation parameters, and the captured messages flattened to
  ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.*`` (tool calls as
  ``message.tool_calls.M.tool_call.*``), with ``input.value`` / ``output.value``.
* TOOL spans: ``tool.name``, ``tool_call.id``, ``tool.parameters`` and ``input.value``
  (the call's arguments), ``output.value`` (its result).
* Every span: ``session.id`` (the conversation id), ``agent.name``.

:class:`OpenInferenceSink` applies it to every finished span on its way to the sinks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.model import Attributes, AttributeValue, SpanRecord
from otel_bridge.pipeline import SpanSink

Pair = tuple[str, AttributeValue]

_KIND_BY_OP: Mapping[str, str] = {
    **{op: sc.OI_KIND_LLM for op in sc.INFERENCE_OPERATIONS},
    sc.OP_EXECUTE_TOOL: sc.OI_KIND_TOOL,
    sc.OP_INVOKE_AGENT: sc.OI_KIND_AGENT,
}


def span_kind(attributes: Mapping[str, AttributeValue]) -> str:
    op = attributes.get(sc.GEN_AI_OPERATION_NAME)
    return _KIND_BY_OP.get(op, sc.OI_KIND_CHAIN) if isinstance(op, str) else sc.OI_KIND_CHAIN


def model_name(attributes: Mapping[str, AttributeValue]) -> str | None:
    """The request model, else the response model (the conventions allow either to name the call)."""
    for key in (sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL):
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _int(value: AttributeValue | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _tokens(out: Attributes, attributes: Mapping[str, AttributeValue]) -> None:
    """Token counts; zero is data (``is not None``, never truthiness)."""
    get = attributes.get
    prompt = _int(get(sc.GEN_AI_USAGE_INPUT_TOKENS))
    completion = _int(get(sc.GEN_AI_USAGE_OUTPUT_TOKENS))
    if prompt is not None:
        out[sc.OI_TOKEN_PROMPT] = prompt
    if completion is not None:
        out[sc.OI_TOKEN_COMPLETION] = completion
    if prompt is not None and completion is not None:
        out[sc.OI_TOKEN_TOTAL] = prompt + completion
    cache_read = _int(get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS))
    if cache_read is not None:
        out[sc.OI_TOKEN_CACHE_READ] = cache_read
    cache_write = _int(get(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS))
    if cache_write is None:
        cache_write = _int(get(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS))
    if cache_write is not None:
        out[sc.OI_TOKEN_CACHE_WRITE] = cache_write
    reasoning = _int(get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS))
    if reasoning is not None:
        out[sc.OI_TOKEN_REASONING] = reasoning


def _json(value: AttributeValue | None) -> object:
    if not isinstance(value, str):
        return None
    try:
        return msgspec.json.decode(value)
    except msgspec.DecodeError:
        return None


def _text_of(parts: Sequence[object]) -> str | None:
    texts = [
        p["content"]
        for p in parts
        if isinstance(p, dict) and p.get("type") == sc.PART_TEXT and isinstance(p.get("content"), str)
    ]
    return "".join(texts) if texts else None


def message_pairs(prefix: str, messages: object) -> Iterator[Pair]:
    """GenAI structured messages (``[{role, parts: [...]}]``) flattened the OpenInference way."""
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        base = f"{prefix}.{i}."
        role = message.get("role")
        if isinstance(role, str):
            yield base + sc.OI_MESSAGE_ROLE, role
        parts = message.get("parts")
        if not isinstance(parts, list):
            continue
        text = _text_of(parts)
        if text is not None:
            yield base + sc.OI_MESSAGE_CONTENT, text
        calls = [p for p in parts if isinstance(p, dict) and p.get("type") == sc.PART_TOOL_CALL]
        for j, call in enumerate(calls):
            call_base = f"{base}{sc.OI_MESSAGE_TOOL_CALLS}.{j}."
            if isinstance(call.get("id"), str):
                yield call_base + sc.OI_TOOL_CALL_ID, call["id"]
            if isinstance(call.get("name"), str):
                yield call_base + sc.OI_TOOL_CALL_FUNCTION_NAME, call["name"]
            arguments = call.get("arguments")
            if arguments is not None:
                yield (
                    call_base + sc.OI_TOOL_CALL_FUNCTION_ARGUMENTS,
                    arguments if isinstance(arguments, str) else msgspec.json.encode(arguments).decode(),
                )
        for part in parts:
            if isinstance(part, dict) and part.get("type") == sc.PART_TOOL_CALL_RESPONSE:
                if isinstance(part.get("id"), str):
                    yield base + sc.OI_MESSAGE_TOOL_CALL_ID, part["id"]
                result = part.get("result")
                if result is not None and text is None:
                    yield (
                        base + sc.OI_MESSAGE_CONTENT,
                        result if isinstance(result, str) else msgspec.json.encode(result).decode(),
                    )
                break


def _input_messages(attributes: Mapping[str, AttributeValue]) -> list[object] | None:
    if sc.GEN_AI_SYSTEM_INSTRUCTIONS not in attributes and sc.GEN_AI_INPUT_MESSAGES not in attributes:
        return None
    messages: list[object] = []
    system = _json(attributes.get(sc.GEN_AI_SYSTEM_INSTRUCTIONS))
    if isinstance(system, list):
        messages.append({"role": "system", "parts": system})
    given = _json(attributes.get(sc.GEN_AI_INPUT_MESSAGES))
    if isinstance(given, list):
        messages.extend(given)
    return messages or None


def _value(out: Attributes, key: str, mime_key: str, value: AttributeValue | None) -> None:
    if isinstance(value, str):
        out[key] = value
        # An object or array is JSON here: the GenAI attributes hold JSON text or plain text, and a cut
        # JSON value is a marker object (parsing every value to be sure cost more than the rest together).
        out[mime_key] = sc.OI_MIME_JSON if value[:1] in ("[", "{") else sc.OI_MIME_TEXT


def _llm(out: Attributes, attributes: Mapping[str, AttributeValue]) -> None:
    get = attributes.get
    model = model_name(attributes)
    if model is not None:
        out[sc.OI_LLM_MODEL_NAME] = model
    provider = get(sc.GEN_AI_PROVIDER_NAME)
    if isinstance(provider, str):
        out[sc.OI_LLM_PROVIDER] = sc.OI_PROVIDERS.get(provider, provider)
        system = sc.OI_SYSTEMS.get(provider)
        if system is not None:
            out[sc.OI_LLM_SYSTEM] = system
    _tokens(out, attributes)
    cost = get(sc.GEN_AI_USAGE_COST)
    if isinstance(cost, float | int) and not isinstance(cost, bool):
        out[sc.OI_COST_TOTAL] = float(cost)
    params = {name: attributes[key] for name, key in _PARAMETERS if key in attributes}
    if params:
        out[sc.OI_LLM_INVOCATION_PARAMETERS] = msgspec.json.encode(params).decode()
    inputs = _input_messages(attributes)
    if inputs is not None:
        out.update(message_pairs(sc.OI_INPUT_MESSAGES, inputs))
        _value(out, sc.OI_INPUT_VALUE, sc.OI_INPUT_MIME_TYPE, msgspec.json.encode(inputs).decode())
    output = get(sc.GEN_AI_OUTPUT_MESSAGES)
    if output is None:
        return
    outputs = _json(output)
    if isinstance(outputs, list):
        out.update(message_pairs(sc.OI_OUTPUT_MESSAGES, outputs))
        # The answer's text reads best in Phoenix's Output panel; tool calls only: the messages' JSON.
        texts = [_text_of(m["parts"]) for m in outputs if isinstance(m, dict) and isinstance(m.get("parts"), list)]
        text = "".join(t for t in texts if t is not None)
        _value(out, sc.OI_OUTPUT_VALUE, sc.OI_OUTPUT_MIME_TYPE, text or output)
    else:  # a truncation marker: shown as it is
        _value(out, sc.OI_OUTPUT_VALUE, sc.OI_OUTPUT_MIME_TYPE, output)


_PARAMETERS = (
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P),
)


def _tool(out: Attributes, attributes: Mapping[str, AttributeValue]) -> None:
    get = attributes.get
    name = get(sc.GEN_AI_TOOL_NAME)
    if isinstance(name, str):
        out[sc.OI_TOOL_NAME] = name
    call_id = get(sc.GEN_AI_TOOL_CALL_ID)
    if isinstance(call_id, str):
        out[sc.OI_TOOL_CALL_ID] = call_id
    arguments = get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
    if isinstance(arguments, str):
        out[sc.OI_TOOL_PARAMETERS] = arguments
        _value(out, sc.OI_INPUT_VALUE, sc.OI_INPUT_MIME_TYPE, arguments)
    _value(out, sc.OI_OUTPUT_VALUE, sc.OI_OUTPUT_MIME_TYPE, get(sc.GEN_AI_TOOL_CALL_RESULT))


# Built as a dict, not yielded: this runs for every finished span (a generator chain cost twice as much).
def openinference_attributes(attributes: Mapping[str, AttributeValue]) -> Attributes:
    """Every OpenInference attribute a span with these GenAI ``attributes`` gets."""
    kind = span_kind(attributes)
    out: Attributes = {sc.OI_SPAN_KIND: kind}
    conversation = attributes.get(sc.GEN_AI_CONVERSATION_ID)
    if isinstance(conversation, str):
        out[sc.OI_SESSION_ID] = conversation
    agent = attributes.get(sc.GEN_AI_AGENT_NAME)
    if isinstance(agent, str):
        out[sc.OI_AGENT_NAME] = agent
    if kind == sc.OI_KIND_LLM:
        _llm(out, attributes)
    elif kind == sc.OI_KIND_TOOL:
        _tool(out, attributes)
    return out


def with_openinference(span: SpanRecord) -> SpanRecord:
    """The span with its OpenInference attributes added (a GenAI attribute is never replaced)."""
    added = openinference_attributes(span.attributes)
    added.update(span.attributes)
    return msgspec.structs.replace(span, attributes=added)


class OpenInferenceSink:
    """A :class:`~otel_bridge.pipeline.SpanSink` that adds the OpenInference attributes, then hands on."""

    def __init__(self, inner: SpanSink) -> None:
        self._inner = inner

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self._inner.consume([with_openinference(s) for s in spans])
