"""``GET /v1/traces`` and ``GET /v1/traces/{trace_id}`` on the real app: the listing, its limits and filters,
one trace as OTLP/JSON, and the error answers.

Runs are posted with their own timestamps, so every figure in a listing is known
in advance; trace ids are derived from run ids, so they are constants here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_bridge import __version__
from otel_bridge.config import Settings
from tests.support.live import LiveServer, post, wait_for

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
MAX_TRACES = 3
# The runs' trace ids: derived from their run ids alone.
TRACE = {
    "wt-a": "f44a7b56081f25717d8f3bb06b03bd96",
    "wt-b": "be9547e24f7dbf14c1eef41e10b9135f",
    "wt-c": "9c0057f990b02374d10a189d0872730d",
    "wt-d": "8a9226b2fa7d9429347e883897a5b758",
}


def at(ms: int) -> int:
    return T0 + ms * MS


RUNS: dict[str, list[dict[str, Any]]] = {
    # Evicted: the store keeps MAX_TRACES traces and this one is the oldest.
    "wt-a": [
        {"kind": "run.started", "agent": "planner", "timestamp": at(0)},
        {"kind": "run.finished", "timestamp": at(10)},
    ],
    "wt-b": [
        {"kind": "run.started", "agent": "planner", "timestamp": at(1_000)},
        {"kind": "llm.started", "call_id": "c1", "model": "gpt-4o", "timestamp": at(1_010)},
        {
            "kind": "llm.completed",
            "call_id": "c1",
            "model": "gpt-4o",
            "usage": {"input": 100, "output": 20},
            "timestamp": at(1_060),
        },
        {"kind": "run.finished", "timestamp": at(1_100)},
    ],
    "wt-c": [
        {"kind": "run.started", "agent": "writer", "timestamp": at(2_000)},
        {"kind": "tool.started", "call_id": "t1", "tool_name": "search", "timestamp": at(2_010)},
        {"kind": "tool.failed", "call_id": "t1", "tool_name": "search", "error": "boom", "timestamp": at(2_030)},
        {"kind": "run.failed", "error": "gave up", "timestamp": at(2_040)},
    ],
    # Still running when the listing is read: its own span has not ended.
    "wt-d": [
        {"kind": "run.started", "agent": "planner", "timestamp": at(3_000)},
        {"kind": "llm.completed", "call_id": "c2", "model": "gpt-4o", "timestamp": at(3_050)},
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """One app for the module: the runs are posted once, oldest first; the tests only read."""
    settings = msgspec.convert(
        {
            "store": {"max_traces": MAX_TRACES},
            "mapping": {"run_end_grace_s": 0.0, "sweep_interval_s": 0.05},
            "pricing": {"enabled": False},
        },
        Settings,
    )
    live = LiveServer(settings)
    try:
        for run_id, events in RUNS.items():
            assert post(live.url, [{**e, "run_id": run_id} for e in events]).status_code == 202
        wait_for(lambda: _statuses(live) == ["running", "error", "ok"], what="the finished runs to settle")
        yield live
    finally:
        live.stop()


def _statuses(server: LiveServer) -> list[str]:
    return [t["status"] for t in httpx.get(server.url + "/v1/traces").json()["traces"]]


def listing(server: LiveServer, query: str = "") -> httpx.Response:
    return httpx.get(f"{server.url}/v1/traces{query}", timeout=5)


SUMMARY = {
    "wt-b": {
        "trace_id": TRACE["wt-b"],
        "run_id": "wt-b",
        "agent": "planner",
        "dialect": "generic",
        "name": "invoke_agent planner",
        "start_time_unix_nano": at(1_000),
        "duration_ms": 100.0,
        "span_count": 2,
        "error_count": 0,
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": None,  # pricing is off here
        "status": "ok",
        "llm_calls": 1,
        "tool_calls": 0,
        "models": ["gpt-4o"],
    },
    "wt-c": {
        "trace_id": TRACE["wt-c"],
        "run_id": "wt-c",
        "agent": "writer",
        "dialect": "generic",
        "name": "invoke_agent writer",
        "start_time_unix_nano": at(2_000),
        "duration_ms": 40.0,
        "span_count": 2,
        "error_count": 2,  # the tool and the run
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": None,
        "status": "error",
        "llm_calls": 0,
        "tool_calls": 1,
        "models": [],
    },
    "wt-d": {
        "trace_id": TRACE["wt-d"],
        "run_id": "wt-d",
        "agent": "planner",
        "dialect": "generic",
        "name": None,  # its own span is still open
        "start_time_unix_nano": at(3_000),
        "duration_ms": 50.000001,  # its chat span has no start: an instant, which lasts 1 ns
        "span_count": 1,
        "error_count": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": None,
        "status": "running",
        "llm_calls": 1,
        "tool_calls": 0,
        "models": ["gpt-4o"],
    },
}
PROBLEM = "application/json"


def test_the_listing_is_newest_first_and_holds_only_the_kept_traces(server: LiveServer) -> None:
    r = listing(server)
    assert (r.status_code, r.headers["content-type"]) == (200, "application/json")
    assert r.json() == {"traces": [SUMMARY["wt-d"], SUMMARY["wt-c"], SUMMARY["wt-b"]]}  # wt-a was evicted


@pytest.mark.parametrize(
    ("query", "runs"),
    [
        ("?limit=1", ["wt-d"]),
        ("?limit=2", ["wt-d", "wt-c"]),
        ("?limit=1000", ["wt-d", "wt-c", "wt-b"]),
        ("?run_id=wt-c", ["wt-c"]),
        ("?agent=planner", ["wt-d", "wt-b"]),
        ("?agent=planner&limit=1", ["wt-d"]),
        ("?agent=planner&run_id=wt-c", []),
        ("?run_id=wt-a", []),  # evicted
        ("?run_id=nope", []),
    ],
)
def test_limit_and_filters(server: LiveServer, query: str, runs: list[str]) -> None:
    r = listing(server, query)
    assert r.status_code == 200
    assert r.json() == {"traces": [SUMMARY[run] for run in runs]}


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "many"])
def test_a_limit_out_of_range_is_refused(server: LiveServer, limit: str) -> None:
    # The project's error body, not FastAPI's {"detail": ...} 422 (tests/test_viewer_api.py: every parameter).
    r = listing(server, f"?limit={limit}")
    assert (r.status_code, r.json()) == (
        400,
        {"error": "invalid_query", "message": f"limit must be an integer from 1 to 1000, got {limit!r}"},
    )


def test_one_trace_is_an_otlp_json_export_request(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/v1/traces/{TRACE['wt-b']}", timeout=5)
    assert (r.status_code, r.headers["content-type"]) == (200, "application/json")
    request = json_format.Parse(r.content, ExportTraceServiceRequest())
    (resource_spans,) = request.resource_spans
    resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert resource["service.name"] == "otel-bridge"
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("otel-bridge", __version__)
    spans = sorted(scope_spans.spans, key=lambda s: s.start_time_unix_nano)
    # OTLP/JSON ids are hex; protobuf's JSON parser read them as base64.
    assert {base64.b64encode(s.trace_id).decode() for s in spans} == {TRACE["wt-b"]}
    assert [(s.name, s.start_time_unix_nano, s.end_time_unix_nano) for s in spans] == [
        ("invoke_agent planner", at(1_000), at(1_100)),
        ("chat gpt-4o", at(1_010), at(1_060)),
    ]
    run, chat = spans
    assert chat.parent_span_id == run.span_id


def test_a_running_trace_can_be_read_before_its_run_span_ends(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/v1/traces/{TRACE['wt-d']}", timeout=5)
    assert r.status_code == 200
    spans = json_format.Parse(r.content, ExportTraceServiceRequest()).resource_spans[0].scope_spans[0].spans
    assert [s.name for s in spans] == ["chat gpt-4o"]


@pytest.mark.parametrize("run", ["wt-a", "never-seen"])
def test_an_unknown_or_evicted_trace_is_404(server: LiveServer, run: str) -> None:
    trace_id = TRACE.get(run, "0123456789abcdef" * 2)
    r = httpx.get(f"{server.url}/v1/traces/{trace_id}", timeout=5)
    assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM)
    assert r.json() == {
        "error": "trace_not_found",
        "message": f"no trace {trace_id} in the embedded store (it keeps recent traces only)",
    }


@pytest.mark.parametrize("trace_id", ["zz", "ab" * 15, "ab" * 17, "g" * 32, TRACE["wt-b"][:-1] + "x"])
def test_a_malformed_trace_id_is_400(server: LiveServer, trace_id: str) -> None:
    r = httpx.get(f"{server.url}/v1/traces/{trace_id}", timeout=5)
    assert (r.status_code, r.headers["content-type"]) == (400, PROBLEM)
    assert r.json() == {"error": "invalid_trace_id", "message": "trace id must be 32 hex characters"}


def test_both_endpoints_say_when_the_store_is_off() -> None:
    live = LiveServer(msgspec.convert({"store": {"enabled": False}}, Settings))
    try:
        off = {"error": "store_disabled", "message": "the embedded trace store is disabled (store.enabled = false)"}
        for path in ("/v1/traces", f"/v1/traces/{TRACE['wt-b']}"):
            r = httpx.get(live.url + path, timeout=5)
            assert (r.status_code, r.headers["content-type"], r.json()) == (404, PROBLEM, off)
    finally:
        live.stop()
