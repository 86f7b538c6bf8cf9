"""What each Locus event says, as pure readers: one event's JSON to its kind and fields.

Shared by both Locus wire forms (:class:`Fields` names their keys). The
decoder (:mod:`._locus_decoder`) owns the state (runs, model calls,
subagents) and asks these readers for everything else; an event type without
a reader is a span event named by its type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_bridge.dialects.base import EventFields, json_text, opt_float, opt_int, opt_str
from otel_bridge.model import EventKind, TokenUsage

# Every LocusEvent type of locus-sdk 3.0.1 (locus.core.events).
EVENT_TYPES = frozenset(
    {
        "think",
        "tool_start",
        "tool_complete",
        "tool_progress",
        "subagent",
        "reflect",
        "grounding",
        "final_answer_verification",
        "model_retry",
        "compaction",
        "terminate",
        "interrupt",
        "custom",
        "model_chunk",
        "model_complete",
        "specialist_start",
        "specialist_complete",
        "orchestrator_decision",
        "causal_node",
        "causal_edge",
        "before_invocation",
        "after_invocation",
        "before_tool_call",
        "after_tool_call",
    }
)
HANDLER_DONE = "done"
HANDLER_ERROR = "error"


@dataclass(frozen=True)
class Fields:
    """Where a Locus wire form keeps what the decoder reads."""

    type_key: str  # the key naming the event type
    tool_name: str
    think_text: str
    terminate: str  # the event type that ends the agent's run
    final_message: str
    timestamps: bool


def usage_from(u: object) -> TokenUsage | None:
    """Locus usage dicts: ``prompt/completion_tokens``; cache counts the Anthropic way (outside the
    prompt count: added to it) or the OpenAI way (``cached_tokens``, inside it)."""
    if not isinstance(u, dict):
        return None
    prompt = opt_int(u, "prompt_tokens")
    read_outside = opt_int(u, "cache_read_input_tokens")
    write_outside = opt_int(u, "cache_creation_input_tokens")
    if prompt is not None:
        prompt += (read_outside or 0) + (write_outside or 0)
    usage = TokenUsage(
        input=prompt,
        output=opt_int(u, "completion_tokens"),
        cache_read=read_outside if read_outside is not None else opt_int(u, "cached_tokens"),
        cache_creation=write_outside if write_outside is not None else opt_int(u, "cache_write_tokens"),
        reasoning=opt_int(u, "reasoning_tokens"),
    )
    return None if usage.is_empty() else usage


Reader = Callable[[str, dict[str, Any], Fields], tuple[EventKind, EventFields]]


def _think(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    return EventKind.THINKING, {"agent": opt_str(d, "agent_name"), "text": opt_str(d, f.think_text)}


def _tool_start(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    return EventKind.TOOL_STARTED, {
        "agent": opt_str(d, "agent_name"),
        "tool_name": opt_str(d, f.tool_name),
        "call_id": opt_str(d, "tool_call_id"),
        "arguments": json_text(d.get("arguments")),
    }


def _tool_complete(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    error = opt_str(d, "error")
    return EventKind.TOOL_FAILED if error else EventKind.TOOL_COMPLETED, {
        "agent": opt_str(d, "agent_name"),
        "tool_name": opt_str(d, f.tool_name),
        "call_id": opt_str(d, "tool_call_id"),
        "duration_ms": opt_float(d, "duration_ms"),
        "error": error,
        "error_type": "tool_error" if error else None,
        "result": json_text(d.get("result")),
    }


def _tool_progress(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    return EventKind.PROGRESS, {
        "tool_name": opt_str(d, f.tool_name),
        "call_id": opt_str(d, "tool_call_id"),
        "name": opt_str(d, f.tool_name),
        "status": opt_str(d, "message"),
    }


def _specialist_start(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    return EventKind.AGENT_STARTED, {
        "call_id": opt_str(d, "specialist_id"),
        "agent": opt_str(d, "specialist_type") or opt_str(d, "agent_name"),
        "name": opt_str(d, "task"),
    }


def _specialist_complete(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    return EventKind.AGENT_FINISHED, {
        "call_id": opt_str(d, "specialist_id"),
        "agent": opt_str(d, "specialist_type") or opt_str(d, "agent_name"),
        "duration_ms": opt_float(d, "duration_ms"),
        "result": json_text(d.get("result")),
    }


def _model_retry(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    return EventKind.CUSTOM, {"name": event_type, "error": opt_str(d, "error"), "error_type": opt_str(d, "reason")}


def _custom(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    return EventKind.CUSTOM, {"name": opt_str(d, "name") or event_type}


_READERS: dict[str, Reader] = {
    "think": _think,
    "tool_start": _tool_start,
    "tool_complete": _tool_complete,
    "tool_progress": _tool_progress,
    "specialist_start": _specialist_start,
    "specialist_complete": _specialist_complete,
    "model_retry": _model_retry,
    "custom": _custom,
}


def read_event(event_type: str, d: dict[str, Any], f: Fields) -> tuple[EventKind, EventFields]:
    """The kind and fields of one event; any type without a reader (reflect, grounding, compaction,
    interrupt, orchestrator_decision, hooks, unknown ones) is a span event named by its type."""
    reader = _READERS.get(event_type)
    if reader is None:
        return EventKind.CUSTOM, {"name": event_type}
    return reader(event_type, d, f)


def read_terminate(d: dict[str, Any], f: Fields) -> tuple[bool, EventFields]:
    """Whether the agent's terminate is a failure, and its fields (usage and cost are the run's own)."""
    reason = opt_str(d, "reason")
    error = opt_str(d, "error")
    failed = reason == "error" or error is not None
    cost = opt_float(d, "reported_cost_usd")
    return failed, {
        "agent": opt_str(d, "agent_name"),
        "status": reason,
        "usage": usage_from(d.get("usage")),
        "cost_usd": cost if cost is not None else opt_float(d, "cost_usd"),
        "error": (error or "terminated with an error") if failed else None,
        # error.type comes from the message ("RuntimeError: ..."); the reason is only "error".
        "error_type": None,
        "text": opt_str(d, f.final_message),
    }
