"""What LangGraph stream frames say, as pure readers: usage, provider, message text, errors, stream modes
and the subgraph namespaces of ``stream_subgraphs``.

The decoder (:mod:`.langgraph`) owns the state (the run, open calls and tools,
nested graphs) and asks these readers for everything else.
"""

from __future__ import annotations

from typing import Any

from otel_bridge.dialects._shapes import count, obj, text, usage_or_none
from otel_bridge.dialects.base import json_text, opt_str
from otel_bridge.model import TokenUsage

MODES = frozenset({"events", "messages", "updates", "values", "custom", "debug", "tasks", "checkpoints"})
CHAT_START = frozenset({"on_chat_model_start", "on_llm_start"})
CHAT_STREAM = frozenset({"on_chat_model_stream", "on_llm_stream"})
CHAT_END = frozenset({"on_chat_model_end", "on_llm_end"})
CHAT_ERROR = frozenset({"on_chat_model_error", "on_llm_error"})
AI_TYPES = frozenset({"ai", "AIMessage", "AIMessageChunk"})
TOOL_TYPES = frozenset({"tool", "ToolMessage"})
TOOL_ERROR = "error"
# LangChain's ls_provider names -> the conventions' gen_ai.provider.name values.
_PROVIDERS = {
    "google_genai": "gcp.gemini",
    "google_vertexai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "mistralai": "mistral_ai",
    "xai": "x_ai",
}


def usage_from(u: object) -> TokenUsage | None:
    """LangChain's ``usage_metadata``: ``input_tokens`` already includes the cached ones."""
    if not isinstance(u, dict):
        return None
    inputs = obj(u, "input_token_details")
    outputs = obj(u, "output_token_details")
    return usage_or_none(
        TokenUsage(
            input=count(u, "input_tokens"),
            output=count(u, "output_tokens"),
            cache_read=count(inputs, "cache_read"),
            cache_creation=count(inputs, "cache_creation"),
            reasoning=count(outputs, "reasoning"),
        )
    )


def provider_from(metadata: dict[str, Any]) -> str | None:
    provider = text(metadata, "ls_provider")
    return _PROVIDERS.get(provider, provider) if provider is not None else None


def message_text(message: dict[str, Any]) -> str | None:
    """A message's text: a string, or the text blocks of a list of content blocks."""
    content = message.get("content")
    if isinstance(content, str):
        return content or None
    if isinstance(content, list):
        said = "".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
        return said or None
    return None


def error_of(value: object) -> tuple[str, str | None]:
    """``(message, type)`` of an error as LangGraph serialises it: a string, or ``{error, message}``."""
    if isinstance(value, dict):
        return (opt_str(value, "message") or opt_str(value, "error") or "error", text(value, "error"))
    if isinstance(value, str) and value:
        return value, None
    return "error", None


def claims(event: str | None, d: object) -> bool:
    """A frame only LangGraph sends: the platform's ``metadata`` first frame, an ``astream_events`` v2 event
    (``on_*`` with ``run_id`` and ``parent_ids``), or a ``messages`` tuple with LangGraph's node metadata."""
    event = split_mode(event)[0]
    if isinstance(d, dict):
        if event == "metadata":
            return isinstance(d.get("run_id"), str) and "attempt" in d
        name = d.get("event")
        return (
            isinstance(name, str)
            and name.startswith("on_")
            and isinstance(d.get("run_id"), str)
            and isinstance(d.get("parent_ids"), list)
        )
    if event == "messages" and isinstance(d, list) and len(d) == 2:
        metadata = d[1]
        return isinstance(metadata, dict) and ("langgraph_node" in metadata or "langgraph_step" in metadata)
    return False


def split_mode(event: str | None) -> tuple[str | None, tuple[str, ...]]:
    """An SSE event name as ``(stream mode, subgraph namespace)``: ``stream_subgraphs`` names a subgraph's
    frames ``messages|outer:<task id>|inner:<task id>``; the root graph's are just ``messages``."""
    if event is None or "|" not in event:
        return event, ()
    mode, _, namespace = event.partition("|")
    return mode, tuple(s for s in namespace.split("|") if s)


def namespace_of(metadata: dict[str, Any]) -> tuple[str, ...]:
    """The graph an event runs in: its node task's ``langgraph_checkpoint_ns`` (``outer:<id>|node:<id>``)
    without the node task itself; ``()`` for the root graph."""
    ns = text(metadata, "langgraph_checkpoint_ns")
    if ns is None or "|" not in ns:
        return ()  # the root graph's node: its one segment is the node task itself
    return tuple(s for s in ns.split("|") if s)[:-1]


def node_of(segment: str) -> str:
    """A namespace segment's node name (``outer:<task id>`` -> ``outer``)."""
    return segment.partition(":")[0] or segment


def tool_output(output: object) -> tuple[str | None, bool]:
    """``(result text, failed)`` of a tool's output: a ToolMessage (``status: "error"`` fails it) or any JSON."""
    if not isinstance(output, dict):
        return json_text(output), False
    return message_text(output) if output else json_text(output), text(output, "status") == TOOL_ERROR
