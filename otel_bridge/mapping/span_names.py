"""A span's name and kind, from its operation and attributes, as the GenAI conventions give them."""

from __future__ import annotations

from collections.abc import Mapping

from otel_bridge import semconv as sc
from otel_bridge.model import AttributeValue, SpanKind

# Read once: on Python 3.11 every `SpanKind.X` goes through the enum metaclass's __getattr__ slot.
_CLIENT, _SERVER, _INTERNAL = SpanKind.CLIENT, SpanKind.SERVER, SpanKind.INTERNAL


def span_name(op: str, attributes: Mapping[str, AttributeValue]) -> str:
    """``{operation} {target}`` as the GenAI conventions name spans: the model, tool, agent or step."""
    if op == sc.OP_CHAT:
        target = attributes.get(sc.GEN_AI_REQUEST_MODEL) or attributes.get(sc.GEN_AI_RESPONSE_MODEL)
    elif op == sc.OP_EXECUTE_TOOL:
        target = attributes.get(sc.GEN_AI_TOOL_NAME)
    elif op == sc.OP_INVOKE_AGENT:
        target = attributes.get(sc.GEN_AI_AGENT_NAME)
    elif op == sc.SPAN_REQUEST:
        # "{mcp.method.name} {target}" (the MCP page): the prompt or resource it is about, if any.
        called = attributes.get(sc.MCP_METHOD_NAME) or attributes.get(sc.BRIDGE_STEP_NAME) or op
        about = attributes.get(sc.GEN_AI_PROMPT_NAME) or attributes.get(sc.MCP_RESOURCE_URI)
        return f"{called} {about}" if about else str(called)
    else:
        method = attributes.get(sc.A2A_METHOD_NAME)
        if method:
            return str(method)  # A2A spans are named by their method alone
        target = attributes.get(sc.BRIDGE_STEP_NAME)
    return f"{op} {target}" if target else op


def span_kind(op: str, attributes: Mapping[str, AttributeValue]) -> SpanKind:
    """A chat span is a client call to the model provider; an MCP request (its tool calls too) is seen in
    front of the server that serves it; everything else is internal."""
    if op == sc.OP_CHAT:
        return _CLIENT
    return _SERVER if sc.MCP_METHOD_NAME in attributes else _INTERNAL
