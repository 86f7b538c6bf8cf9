"""What A2A frames say, as pure readers of the two wires (1.0 and 0.3), and the requests that resume a task.

The decoder (:mod:`.a2a`) owns the state (tasks, open calls, artifacts, clocks)
and asks these readers for everything else. A subscription (the sources) asks
:func:`task_of` which task a frame is about and :func:`resubscribe_body` for the
request that joins that task again after a dropped connection; the agent card's
well-known paths are here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otel_bridge import semconv as sc
from otel_bridge.dialects._shapes import gemini_usage, obj, objects, text
from otel_bridge.model import TokenUsage

_V03_METHODS = frozenset({sc.A2A_METHOD_STREAM_V03, sc.A2A_METHOD_RESUBSCRIBE_V03})

# Where an agent publishes its card: the current path first, then the one before A2A 0.3.
AGENT_CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")

_V1_KINDS = ("task", "message", "statusUpdate", "artifactUpdate")
_V03_KINDS = {
    "task": "task",
    "message": "message",
    "status-update": "statusUpdate",
    "artifact-update": "artifactUpdate",
}
# What each 1.0 result kind must hold to be A2A's (an MCP or other JSON-RPC result has none of these shapes).
_V1_SHAPES = {
    "task": ("id", "status"),
    "message": ("messageId", "role"),
    "statusUpdate": ("taskId", "status"),
    "artifactUpdate": ("taskId", "artifact"),
}
_STATE_PREFIX = "TASK_STATE_"
FINISHED = frozenset({"completed", "canceled"})
FAILED = frozenset({"failed", "rejected"})
INTERRUPTED = frozenset({"input_required", "auth_required"})
ENDS_STREAM = FINISHED | FAILED | INTERRUPTED
_ADK_CALL = "function_call"
_ADK_RESPONSE = "function_response"


def result_kind(d: object) -> tuple[str, dict[str, Any], bool] | None:
    """``(kind, payload, v03)`` of a JSON-RPC result frame, or ``None`` if it is no A2A result."""
    result = obj(d, "result")
    if not result:
        return None
    kind = result.get("kind")
    if isinstance(kind, str):
        canonical = _V03_KINDS.get(kind)
        return (canonical, result, True) if canonical is not None else None
    present = [k for k in _V1_KINDS if isinstance(result.get(k), dict)]
    if len(present) != 1 or len(result) != 1:
        return None
    payload = result[present[0]]
    if not any(key in payload for key in _V1_SHAPES[present[0]]):
        return None
    return present[0], payload, False


def normalize_state(value: object) -> str | None:
    """``TASK_STATE_INPUT_REQUIRED`` (1.0) and ``input-required`` (0.3) alike become ``input_required``."""
    if not isinstance(value, str) or not value:
        return None
    state = value.removeprefix(_STATE_PREFIX).lower().replace("-", "_")
    return state or None


def task_of(d: object) -> tuple[str | None, str | None]:
    """``(task id, state)`` a frame reports: the task it is about, and its state when the frame says one."""
    found = result_kind(d)
    if found is None:
        return None, None
    kind, payload, _ = found
    task_id = text(payload, "id") if kind == "task" else text(payload, "taskId")
    return task_id, normalize_state(obj(payload, "status").get("state"))


def stream_method(v03: bool, resubscribe: bool) -> str:
    """The method a stream of a task is named by: the first stream's, or a resubscription's, on either wire."""
    if v03:
        return sc.A2A_METHOD_RESUBSCRIBE_V03 if resubscribe else sc.A2A_METHOD_STREAM_V03
    return sc.A2A_METHOD_SUBSCRIBE if resubscribe else sc.A2A_METHOD_SEND_STREAMING


def streaming_method(body: object) -> str | None:
    """The A2A streaming method a JSON-RPC request body calls, or ``None`` if it calls none."""
    if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
        return None
    method = body.get("method")
    return method if isinstance(method, str) and method in sc.A2A_METHODS else None


def resubscribe_body(request: dict[str, Any], task_id: str) -> dict[str, Any]:
    """The request that streams ``task_id`` again, on the wire of the original ``request`` (same JSON-RPC id)."""
    method = request.get("method")
    v03 = isinstance(method, str) and method in _V03_METHODS
    return {
        "jsonrpc": "2.0",
        "id": request.get("id", 1),
        "method": sc.A2A_METHOD_RESUBSCRIBE_V03 if v03 else sc.A2A_METHOD_SUBSCRIBE,
        "params": {"id": task_id},
    }


@dataclass(frozen=True)
class AgentCard:
    """What an agent card says about the agent a subscription talks to."""

    name: str | None
    description: str | None


def agent_card(d: object) -> AgentCard | None:
    """The agent's name and description from its card, or ``None`` if ``d`` is no agent card."""
    name, description = text(d, "name"), text(d, "description")
    if name is None and description is None:
        return None
    return AgentCard(name, description)


@dataclass
class MessageParts:
    """What one agent message holds, read with ADK's A2A metadata conventions."""

    usage: TokenUsage | None
    author: str | None
    text: str | None
    calls: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None


def message_parts(m: dict[str, Any], metadata: dict[str, Any]) -> MessageParts:
    """A message's text, tool calls and results (``data`` parts marked ``adk_type``), usage, author and error."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    for part in objects(m, "parts"):
        adk_type = text(obj(part, "metadata"), "adk_type")
        data = obj(part, "data")
        if adk_type == _ADK_CALL and data:
            calls.append(data)
        elif adk_type == _ADK_RESPONSE and data:
            responses.append(data)
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    return MessageParts(
        usage=gemini_usage(metadata.get("adk_usage_metadata")),
        author=text(metadata, "adk_author"),
        text="".join(texts) or None,
        calls=calls,
        responses=responses,
        error_code=text(metadata, "adk_error_code"),
        error_message=text(metadata, "adk_error_message"),
    )


def parts_text(m: object) -> str | None:
    """The text parts of a message, joined."""
    said = "".join(p["text"] for p in objects(m, "parts") if isinstance(p.get("text"), str))
    return said or None
