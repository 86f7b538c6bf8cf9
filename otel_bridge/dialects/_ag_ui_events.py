"""The AG-UI wire vocabulary: every event type, the groups the decoder treats alike, and usage entries.

Kept apart from the decoder (:mod:`.ag_ui`) so that what the protocol says
reads in one place and how a stream becomes runs and spans in another.
"""

from __future__ import annotations

from otel_bridge.dialects.base import opt_int, opt_str
from otel_bridge.model import TokenUsage

EVENT_TYPES = frozenset(
    {
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "TEXT_MESSAGE_CHUNK",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_CHUNK",
        "TOOL_CALL_RESULT",
        "STATE_SNAPSHOT",
        "STATE_DELTA",
        "MESSAGES_SNAPSHOT",
        "ACTIVITY_SNAPSHOT",
        "ACTIVITY_DELTA",
        "RAW",
        "CUSTOM",
        "RUN_STARTED",
        "RUN_FINISHED",
        "RUN_ERROR",
        "STEP_STARTED",
        "STEP_FINISHED",
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_END",
        "REASONING_MESSAGE_CHUNK",
        "REASONING_END",
        "REASONING_ENCRYPTED_VALUE",
        "SUBAGENT_STARTED",
        "SUBAGENT_FINISHED",
        "SUBAGENT_ERROR",
        # 0.1.x, replaced by REASONING_* in 1.0
        "THINKING_START",
        "THINKING_END",
        "THINKING_TEXT_MESSAGE_START",
        "THINKING_TEXT_MESSAGE_CONTENT",
        "THINKING_TEXT_MESSAGE_END",
    }
)
STATE_TYPES = frozenset({"STATE_SNAPSHOT", "STATE_DELTA", "MESSAGES_SNAPSHOT"})
# Frames whose meaning is carried by the events around them (the message they open or close).
ABSORBED = frozenset(
    {
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_END",
        "THINKING_START",
        "THINKING_END",
        "THINKING_TEXT_MESSAGE_START",
    }
)
REASONING_CONTENT = frozenset({"REASONING_MESSAGE_CONTENT", "THINKING_TEXT_MESSAGE_CONTENT"})
REASONING_END = frozenset({"REASONING_MESSAGE_END", "THINKING_TEXT_MESSAGE_END"})
MODEL_ROLES = frozenset({"assistant"})
STATUS_AWAITING_RESULT = "awaiting_result"


def usage_from(entries: object) -> tuple[TokenUsage | None, str | None, str | None]:
    """Summed ``TokenUsage[]`` and, when one model was used, its provider and model.

    AG-UI counts are totals or named parts of one: ``inputTokens`` already
    includes ``cachedInputTokens``, as the conventions want.
    """
    if not isinstance(entries, list):
        return None, None, None
    total: TokenUsage | None = None
    models: set[tuple[str | None, str | None]] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        models.add((opt_str(entry, "provider"), opt_str(entry, "model")))
        usage = TokenUsage(
            input=opt_int(entry, "inputTokens"),
            output=opt_int(entry, "outputTokens"),
            cache_read=opt_int(entry, "cachedInputTokens"),
            cache_creation=opt_int(entry, "cacheWriteInputTokens"),
            reasoning=opt_int(entry, "reasoningTokens"),
        )
        total = usage if total is None else total.plus(usage)
    provider, model = next(iter(models)) if len(models) == 1 else (None, None)
    return (None if total is None or total.is_empty() else total), provider, model
