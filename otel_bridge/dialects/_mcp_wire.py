"""MCP exchange logs, read: the decoder's per-request and per-session state, and small readers of
JSON-RPC ids, trace context, headers, progress and tool results (a wrong shape reads as absent)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otel_bridge.dialects._shapes import objects, text


@dataclass
class Pending:
    run_id: str
    call_id: str
    method: str
    tool: str | None
    exchange: str
    attributes: tuple[tuple[str, str | int | bool], ...]
    own_run: bool  # a stateless request with no trace context: its run ends with it
    trace: str = ""  # the caller's trace id, if the request named one
    client: str | None = None  # the client's name, if it said
    token: str | None = None  # its progress token, if it asked for progress


@dataclass
class Session:
    client: str | None = None
    version: str | None = None
    # The runs of this session, by caller trace id ("" without one), in order. The run an ``initialize``
    # opened (before the session had an id) is the session's own.
    runs: dict[str, str] | None = None


def valid_id(value: object) -> str | None:
    """A JSON-RPC id as a string (ids are strings or integers; anything else is no id)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, int)):
        return str(value)
    return None


def trace_id_of(traceparent: str | None) -> str | None:
    if traceparent is None:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def header(headers: object, name: str) -> str | None:
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str) and value:
            return value
    return None


def progress_status(params: dict[str, Any]) -> str | None:
    progress = params.get("progress")
    if isinstance(progress, bool) or not isinstance(progress, (int, float)):
        return None
    total = params.get("total")
    shown = f"{progress:g}"
    if isinstance(total, (int, float)) and not isinstance(total, bool):
        return f"{shown}/{total:g}"
    return shown


def error_text(result: dict[str, Any]) -> str:
    for part in objects(result, "content"):
        value = text(part, "text")
        if value is not None:
            return value
    return "isError"


def tool_result(result: dict[str, Any]) -> object:
    """What a tool returned: its structured content when it has one, else its content parts."""
    structured = result.get("structuredContent")
    if structured is not None:
        return structured
    return result.get("content")
