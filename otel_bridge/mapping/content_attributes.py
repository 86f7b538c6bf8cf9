"""Content attributes: what a span may say of the content that passed through it.

Opt-in content capture (``mapping.capture_content``: tool arguments and results, the model's
answer and the tool calls it asked for, the inference details event that repeats them) and the
original payload a span event carries. Pure functions, as in :mod:`.attributes`, kept apart
because everything here is text a producer sent: cut to the attribute limit with its JSON kept
valid (:mod:`otel_bridge.content`), and, for the payload, redacted first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

import msgspec

from otel_bridge import content
from otel_bridge import semconv as sc
from otel_bridge.model import AgentEvent, Attributes, AttributeValue, EventKind, SpanEventRecord

Pair = tuple[str, AttributeValue]


def tool_content_pairs(event: AgentEvent, limit: int) -> Iterator[Pair]:
    """Opt-in content: tool arguments and result (JSON kept valid when cut, see :mod:`otel_bridge.content`)."""
    if event.arguments is not None:
        yield sc.GEN_AI_TOOL_CALL_ARGUMENTS, content.cut_json_text(event.arguments, limit)
    if event.result is not None:
        yield sc.GEN_AI_TOOL_CALL_RESULT, content.cut_json_text(event.result, limit)


def _arguments_value(arguments: AttributeValue | None) -> object:
    """Tool-call arguments as the structured message format holds them: the JSON object, else the text."""
    if not isinstance(arguments, str):
        return None
    try:
        return msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return arguments


def requested_tool_calls(events: Iterable[SpanEventRecord]) -> list[dict[str, object]]:
    """The tool calls a model asked for, from its chat span's ``tool.requested`` events, as message parts."""
    calls: list[dict[str, object]] = []
    for record in events:
        if record.name != EventKind.TOOL_REQUESTED.value:
            continue
        a = record.attributes
        part: dict[str, object] = {"type": sc.PART_TOOL_CALL}
        if sc.GEN_AI_TOOL_CALL_ID in a:
            part["id"] = a[sc.GEN_AI_TOOL_CALL_ID]
        if sc.GEN_AI_TOOL_NAME in a:
            part["name"] = a[sc.GEN_AI_TOOL_NAME]
        arguments = _arguments_value(a.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS))
        if arguments is not None:
            part["arguments"] = arguments
        calls.append(part)
    return calls


def llm_content_pairs(event: AgentEvent, limit: int, tool_calls: Iterable[dict[str, object]] = ()) -> Iterator[Pair]:
    """Opt-in content: the answer (its text and the tool calls it asked for) as ``gen_ai.output.messages``,
    in the conventions' structured format; cut to ``limit`` keeping the JSON valid."""
    parts: list[dict[str, object]] = []
    if event.text is not None:
        parts.append({"type": sc.PART_TEXT, "content": event.text})
    parts.extend(tool_calls)
    if parts:
        message: dict[str, object] = {"role": sc.ROLE_ASSISTANT, "parts": parts}
        if event.finish_reasons:
            message["finish_reason"] = event.finish_reasons[0]
        yield sc.GEN_AI_OUTPUT_MESSAGES, content.cut_messages([message], limit)


# What the inference details event (SPAN_AND_EVENT) repeats of a chat span's content.
_CONTENT_ATTRIBUTES = (sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES)


def content_event_attributes(attributes: Mapping[str, AttributeValue]) -> Attributes | None:
    """The ``gen_ai.client.inference.operation.details`` event of a chat span: its captured content,
    or ``None`` when it has none."""
    out: Attributes = {key: attributes[key] for key in _CONTENT_ATTRIBUTES if key in attributes}
    if not out:
        return None
    out[sc.GEN_AI_OPERATION_NAME] = sc.OP_CHAT
    for key in (sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_PROVIDER_NAME):
        if key in attributes:
            out[key] = attributes[key]
    return out


def payload_attribute(raw: bytes, limit: int, redact: Callable[[str], str] | None) -> str:
    """An event's original payload as a span event carries it: redacted (``redact``), then cut to ``limit``."""
    if redact is None:
        return content.cut_raw(raw, limit)
    text = raw.decode("utf-8", errors="replace")
    redacted = redact(text)
    if redacted is text and len(raw) <= limit and text.isascii():
        return text  # nothing redacted and short: what cutting its bytes again gives
    return content.cut_raw(redacted.encode(), limit)


def truncate_raw(raw: bytes, limit: int) -> str:
    """JSON text kept valid when cut: an oversized value becomes a marker object (see :mod:`otel_bridge.content`)."""
    return content.cut_raw(raw, limit)
