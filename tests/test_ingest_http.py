"""POST /v1/events against the real server process: answers, documented errors, and it keeps serving."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.golden import FIXTURES
from tests.support.server import BridgeProcess

MAX_BODY = 16384


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    tmp: pathlib.Path = tmp_path_factory.mktemp("ingest")
    config = tmp / "bridge.toml"
    config.write_text(f"[ingest]\nmax_body_bytes = {MAX_BODY}\n[mapping]\nrun_end_grace_s = 0.0\n")
    proc = BridgeProcess(tmp / "bridge.log", args=["--config", str(config)])
    try:
        yield proc
    finally:
        proc.stop()


def post(server: BridgeProcess, body: bytes, content_type: str | None, query: str = "") -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return httpx.post(f"{server.url}/v1/events{query}", content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "content_type", "query", "status", "error", "message"),
    [
        (b"{nope", "application/json", "", 400, "malformed_body", "body is not valid JSON"),
        (b"42", "application/json", "", 400, "malformed_body", "must be an object or an array"),
        (b"[]", "application/json", "", 400, "empty_body", "holds no events"),
        (b": only a comment\n\n", "text/event-stream", "", 400, "empty_body", "holds no events"),
        (b"\xff\xfe", "text/event-stream", "", 400, "malformed_body", "not valid UTF-8"),
        (b"x" * (MAX_BODY + 1), "application/json", "", 413, "body_too_large", f"exceeds {MAX_BODY} bytes"),
        (b"a=1", "application/x-www-form-urlencoded", "", 415, "unsupported_media_type", "is not accepted"),
        (b"{}", None, "", 415, "unsupported_media_type", "'(none)' is not accepted"),
        (b"{}", "application/json", "?dialect=klingon", 422, "unknown_dialect", "unknown dialect 'klingon'"),
        (b"nope\n{bad\n", "application/x-ndjson", "", 422, "no_valid_events", "every event in the body was rejected"),
    ],
)
def test_bad_input_gets_its_documented_answer(
    server: BridgeProcess, body: bytes, content_type: str | None, query: str, status: int, error: str, message: str
) -> None:
    r = post(server, body, content_type, query)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == error
    assert message in r.json()["message"]
    assert httpx.get(f"{server.url}/v1/health").json()["status"] == "ok"  # still serving


def test_partly_bad_batch_is_accepted_with_counts_and_errors(server: BridgeProcess) -> None:
    body = b'{"kind":"progress","run_id":"mixed-1"}\nnot json\n{"kind":"llm.completed","run_id":"mixed-1","model":1}\n'
    r = post(server, body, "application/x-ndjson")
    assert r.status_code == 202
    out = r.json()
    assert (out["accepted"], out["rejected"], out["dialect"]) == (1, 2, "generic")
    assert [(e["index"], e["reason"]) for e in out["errors"]] == [(1, "invalid_json"), (2, "undecodable")]
    assert "Expected `str | null`, got `int` - at `$.model`" in out["errors"][1]["message"]
    health = httpx.get(f"{server.url}/v1/health").json()
    assert health["events_rejected"]["invalid_json"] >= 1


def test_openintent_log_page_is_detected_and_traced(server: BridgeProcess) -> None:
    r = post(server, (FIXTURES / "openintent" / "event-log.json").read_bytes(), "application/json")
    assert r.status_code == 202
    out = r.json()
    assert (out["accepted"], out["rejected"], out["events"], out["dialect"]) == (21, 0, 21, "openintent")
    (run,) = out["runs"]
    assert run["run_id"] == "c76a2948-17be-4226-8859-c4378a1a9dec"
    # The run's own span follows its terminal event by the run's grace period (1 s).
    deadline = time.monotonic() + 10
    while True:
        trace = httpx.get(f"{server.url}/v1/traces/{run['trace_id']}")
        assert trace.status_code == 200
        names = sorted(s["name"] for s in trace.json()["resourceSpans"][0]["scopeSpans"][0]["spans"])
        if len(names) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert names == [
        "chat gpt-4o",
        "chat gpt-4o",
        "execute_tool fetch",
        "execute_tool search",
        "invoke_agent otel-probe-agent",
    ]


def test_events_without_run_ids_are_grouped_by_the_run_id_parameter(server: BridgeProcess) -> None:
    first = post(server, b'event: thinking\ndata: {"text": "hm"}\n\n', "text/event-stream", "?run_id=grouped-7")
    second = post(
        server,
        b'event: tool_use\ndata: {"tool_name": "t", "tool_use_id": "u1", "input_summary": "", "status": "running"}\n\n',
        "text/event-stream",
        "?run_id=grouped-7&dialect=agent-event-stream",
    )
    assert first.json()["runs"] == second.json()["runs"]
    assert first.json()["runs"][0]["run_id"] == "grouped-7"
    other = post(server, b'event: thinking\ndata: {"text": "hm"}\n\n', "text/event-stream")
    assert other.json()["runs"][0]["run_id"] != "grouped-7"


def test_trace_lookup_errors(server: BridgeProcess) -> None:
    r = httpx.get(f"{server.url}/v1/traces/zz")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_trace_id")
    r = httpx.get(f"{server.url}/v1/traces/{'ab' * 16}")
    assert (r.status_code, r.json()["error"]) == (404, "trace_not_found")


def test_events_that_name_no_run_get_a_new_run_per_request(server: BridgeProcess) -> None:
    # A generic event with no run id: each request is its own run, keyed 32 hex digits.
    body = b'{"type": "progress", "message": "no run named"}'
    runs = [post(server, body, "application/json").json()["runs"] for _ in range(3)]
    ids = [r[0]["run_id"] for r in runs]
    assert len(set(ids)) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
