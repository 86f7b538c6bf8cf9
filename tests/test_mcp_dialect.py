"""The mcp dialect on exchange logs the captures do not cover: failures, batches, cancellation,
requests the server sends, interleaved calls, a bad record among good ones.

Each case is a small log written the way the proxy writes one (``tests/fixtures/mcp/`` holds
real ones) and replayed through the real bridge; the assertions read the span tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.golden import replay_tree

SESSION = "5e55"
HEADERS = {"mcp-session-id": SESSION, "mcp-protocol-version": "2025-11-25"}
SSE = "text/event-stream"


def request(exchange: int, body: object, *, method: str = "POST", session: str | None = SESSION) -> dict[str, Any]:
    headers = dict(HEADERS) if session is not None else {}
    return {
        "exchange": exchange,
        "direction": "request",
        "http_session": session,
        "http_method": method,
        "path": "/mcp",
        "headers": headers,
        "body": body,
    }


def response(
    exchange: int, body: object, *, status: int = 200, content_type: str = SSE, method: str = "POST"
) -> dict[str, Any]:
    return {
        "exchange": exchange,
        "direction": "response",
        "http_session": SESSION,
        "http_method": method,
        "path": "/mcp",
        "status": status,
        "headers": {"content-type": content_type},
        "content_type": content_type,
        "body": body,
    }


def sse(*messages: object) -> str:
    return "".join(f"event: message\r\ndata: {json.dumps(m)}\r\n\r\n" for m in messages)


def call(rid: int, tool: str, token: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": {}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def result(rid: int, text: str = "ok") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}], "isError": False}}


def progress(token: int, n: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": n}}


def replay(tmp_path: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    path = tmp_path / "log.ndjson"
    path.write_text("".join(json.dumps({"seq": i + 1, **r}) + "\n" for i, r in enumerate(records)))
    return replay_tree(path)


def spans(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}

    def walk(span: dict[str, Any]) -> None:
        out[span["name"]] = span
        for child in span.get("children", []):
            walk(child)

    for trace in tree["traces"]:
        for span in trace["spans"]:
            walk(span)
    return out


def test_an_http_error_fails_the_request_its_exchange_carried(tmp_path: Path) -> None:
    tree = replay(
        tmp_path,
        [
            request(1, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            response(1, None, status=404, content_type="text/plain"),
        ],
    )
    span = spans(tree)["tools/list"]
    assert tree["dialect"] == "mcp"
    assert span["status"] == "ERROR"
    assert span["attributes"]["error.type"] == "404"


def test_an_error_without_a_request_id_fails_the_exchange_with_its_code(tmp_path: Path) -> None:
    error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Bad Request: missing session"}}
    tree = replay(
        tmp_path,
        [request(1, call(7, "lookup")), response(1, error, status=400, content_type="application/json")],
    )
    span = spans(tree)["execute_tool lookup"]
    assert span["attributes"]["error.type"] == "-32600"
    assert span["attributes"]["rpc.response.status_code"] == "-32600"
    assert span["status_message"] == "Bad Request: missing session"


def test_a_batch_is_one_span_per_request(tmp_path: Path) -> None:
    tree = replay(
        tmp_path,
        [
            request(1, [call(1, "a"), call(2, "b")]),
            response(1, [result(2), result(1)], content_type="application/json"),
        ],
    )
    found = spans(tree)
    assert found["execute_tool a"]["attributes"]["jsonrpc.request.id"] == "1"
    assert found["execute_tool b"]["attributes"]["jsonrpc.request.id"] == "2"
    assert found["execute_tool a"]["status"] == found["execute_tool b"]["status"] == "UNSET"


def test_a_cancelled_request_ends_as_cancelled(tmp_path: Path) -> None:
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3, "reason": "user"}}
    tree = replay(tmp_path, [request(1, call(3, "slow")), request(2, cancel), response(2, None, status=202)])
    span = spans(tree)["execute_tool slow"]
    assert span["status"] == "ERROR"
    assert span["attributes"]["error.type"] == "cancelled"
    assert span["status_message"] == "user"


def test_a_request_the_server_sends_is_a_span_ended_by_the_clients_answer(tmp_path: Path) -> None:
    sampling = {"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {"messages": []}}
    answer = {"jsonrpc": "2.0", "id": 0, "result": {"role": "assistant", "content": {"type": "text", "text": "hi"}}}
    tree = replay(
        tmp_path,
        [
            request(1, call(4, "ask")),
            response(1, sse(sampling)),
            request(2, answer),
            response(2, None, status=202),
            response(1, sse(result(4))),
        ],
    )
    found = spans(tree)
    assert found["sampling/createMessage"]["status"] == "UNSET"
    assert found["sampling/createMessage"]["attributes"]["mcp.method.name"] == "sampling/createMessage"
    assert found["execute_tool ask"]["status"] == "UNSET"


def test_interleaved_calls_keep_their_own_progress(tmp_path: Path) -> None:
    tree = replay(
        tmp_path,
        [
            request(1, call(1, "first", token=11)),
            request(2, call(2, "second", token=22)),
            response(2, sse(progress(22, 1))),
            response(1, sse(progress(11, 1))),
            response(2, sse(progress(22, 2), result(2))),
            response(1, sse(result(1))),
        ],
    )
    found = spans(tree)
    assert [e["attributes"]["otel_bridge.status"] for e in found["execute_tool first"]["events"]] == ["1"]
    assert [e["attributes"]["otel_bridge.status"] for e in found["execute_tool second"]["events"]] == ["1", "2"]


def test_a_bad_record_is_rejected_and_the_log_goes_on(tmp_path: Path) -> None:
    broken = response(1, "event: message\r\ndata: {not json\r\n\r\n")
    tree = replay(
        tmp_path,
        [request(1, call(1, "one")), broken, response(1, sse(result(1))), {"direction": "sideways", "exchange": 2}],
    )
    assert [r["reason"] for r in tree["rejections"]] == ["undecodable", "undecodable"]
    assert spans(tree)["execute_tool one"]["status"] == "UNSET"


def test_the_same_id_in_flight_twice_in_one_trace_is_two_spans(tmp_path: Path) -> None:
    traced = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    first, second = call(1, "same"), call(1, "same")
    first["params"]["_meta"] = second["params"]["_meta"] = traced
    tree = replay(
        tmp_path,
        [
            request(1, first, session=None),
            request(2, second, session=None),
            response(1, result(1, "one"), content_type="application/json"),
            response(2, result(1, "two"), content_type="application/json"),
        ],
    )
    [trace] = tree["traces"]
    [root] = trace["spans"]
    assert trace["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert root["remote_parent_span_id"] == "00f067aa0ba902b7"
    assert [c["name"] for c in root["children"]] == ["execute_tool same", "execute_tool same"]
    assert len({c["span_id"] for c in root["children"]}) == 2
    assert all(c["status"] == "UNSET" for c in root["children"])
