"""Shape-safe reads of decoded JSON for the dialects of protocols with nested payloads.

A2A, ADK, the Vercel AI SDK and LangGraph nest what the bridge reads two or
three objects deep, and any level may be missing or of the wrong type in a
malformed frame. These helpers return an empty object, an empty list or
``None`` instead, so a decoder reads nested fields in one expression and bad
shapes become absent fields, never an exception.
"""

from __future__ import annotations

from typing import Any

from otel_bridge.dialects.base import opt_int
from otel_bridge.model import TokenUsage


def obj(d: object, key: str) -> dict[str, Any]:
    """``d[key]`` if ``d`` is an object and that value is an object, else ``{}``."""
    if isinstance(d, dict):
        value = d.get(key)
        if isinstance(value, dict):
            return value
    return {}


def objects(d: object, key: str) -> list[dict[str, Any]]:
    """The objects in the list ``d[key]`` (other elements are skipped), else ``[]``."""
    if isinstance(d, dict):
        value = d.get(key)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def text(d: object, key: str) -> str | None:
    """``d[key]`` if it is a non-empty string (no conversion: an id of the wrong type is absent)."""
    if isinstance(d, dict):
        value = d.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def count(d: object, key: str) -> int | None:
    """A token count: an integer, or a whole double (protobuf JSON sends ``512.0``)."""
    return opt_int(d, key) if isinstance(d, dict) else None


def usage_or_none(usage: TokenUsage) -> TokenUsage | None:
    return None if usage.is_empty() else usage


def gemini_usage(u: object) -> TokenUsage | None:
    """Gemini's ``usageMetadata`` (ADK and its A2A bridge): prompt, candidates, cached and thoughts counts."""
    if not isinstance(u, dict):
        return None
    output = count(u, "candidatesTokenCount")
    reasoning = count(u, "thoughtsTokenCount")
    if output is not None and reasoning is not None:
        output += reasoning  # Gemini counts thoughts apart; the conventions count them inside the output
    return usage_or_none(
        TokenUsage(
            input=count(u, "promptTokenCount"),
            output=output,
            cache_read=count(u, "cachedContentTokenCount"),
            reasoning=reasoning,
        )
    )


def error_result(response: object) -> str | None:
    """The error text of a tool result that is only an error (``{"error": "..."}``), the form ADK's
    tool-error callbacks and many tools return; ``None`` for any other result."""
    if isinstance(response, dict) and len(response) == 1:
        value = response.get("error")
        if isinstance(value, str) and value:
            return value
    return None
