"""MCP exchange logs, read: the JSON-RPC messages a record's body holds, a request's span attributes,
and small readers of JSON-RPC ids, trace context, headers, progress and tool results (a wrong shape
reads as absent).

The decoder (:mod:`.mcp`) owns the state (:mod:`._mcp_pending`, :mod:`._mcp_runs`) and asks these
pure readers for everything else.
"""

from __future__ import annotations

from typing import Any

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.dialects._shapes import objects, text
from otel_bridge.dialects.base import DecodeError, opt_str
from otel_bridge.dialects.framing import parse_sse

_TARGET_PARAM = {"prompts/get": (sc.GEN_AI_PROMPT_NAME, "name")}
_RESOURCE_METHODS = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
_TRANSPORT = ((sc.NETWORK_TRANSPORT, "tcp"), (sc.NETWORK_PROTOCOL_NAME, "http"))

_json_decode = msgspec.json.Decoder().decode
_json_encode = msgspec.json.Encoder().encode

Attributes = tuple[tuple[str, str | int | bool], ...]


def messages_of(record: dict[str, Any]) -> list[tuple[dict[str, Any], bytes]]:
    """The JSON-RPC messages a record's body holds, each with its JSON text (a span event's payload)."""
    body = record.get("body")
    if body is None:
        return []
    if isinstance(body, str):
        out: list[tuple[dict[str, Any], bytes]] = []
        for sse in parse_sse(body):
            if not sse.data.strip():
                continue  # a priming event (resumable streams): no message
            try:
                message = _json_decode(sse.data)
            except msgspec.DecodeError as exc:
                raise DecodeError(f"MCP response: an SSE event is not JSON: {exc}") from None
            out.extend(_batch(message, sse.data))
        return out
    return _batch(body, None)


def _batch(body: object, data: bytes | None) -> list[tuple[dict[str, Any], bytes]]:
    if isinstance(body, dict):
        return [(body, data if data is not None else _json_encode(body))]
    if isinstance(body, list):  # a JSON-RPC batch (protocol 2025-03-26)
        return [(m, _json_encode(m)) for m in body if isinstance(m, dict)]
    raise DecodeError(f"MCP exchange record: body must be a JSON-RPC message, got {type(body).__name__}")


def request_attributes(
    method: str,
    rid: str,
    session: str | None,
    version: str | None,
    params: dict[str, Any],
    message: dict[str, Any],
) -> Attributes:
    """A request span's attributes: method, id, session, versions, its prompt or resource, the transport."""
    out: list[tuple[str, str | int | bool]] = [(sc.MCP_METHOD_NAME, method), (sc.JSONRPC_REQUEST_ID, rid)]
    if session is not None:
        out.append((sc.MCP_SESSION_ID, session))
    if version is not None:
        out.append((sc.MCP_PROTOCOL_VERSION, version))
    jsonrpc = opt_str(message, "jsonrpc")
    if jsonrpc is not None and jsonrpc != "2.0":
        out.append((sc.JSONRPC_PROTOCOL_VERSION, jsonrpc))
    target = _TARGET_PARAM.get(method)
    if target is not None and (value := text(params, target[1])) is not None:
        out.append((target[0], value))
    if method in _RESOURCE_METHODS and (uri := text(params, "uri")) is not None:
        out.append((sc.MCP_RESOURCE_URI, uri))
    out.extend(_TRANSPORT)
    return tuple(out)


def valid_id(value: object) -> str | None:
    """A JSON-RPC id as a string (ids are strings or integers; anything else is no id)."""
    kind = type(value)
    if kind is int or kind is str:  # the common cases first (a bool's type is bool, not int)
        return str(value)
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
