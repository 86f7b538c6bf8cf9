"""``GET /v1/traces`` search: every filter, the sort orders and the errors, over HTTP against the real app."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import LiveServer, post, wait_for
from tests.support.viewer_runs import T0_MS, finished_runs, open_run


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer()
    try:
        for events in [*finished_runs(), open_run()]:
            post(live.url, events)

        def settled() -> bool:
            listed = httpx.get(live.url + "/v1/traces").json()["traces"]
            return sorted(t["status"] for t in listed) == ["error", "ok", "ok", "running"]

        wait_for(settled, timeout=15, what="three finished runs (one failed) and one running")
        yield live
    finally:
        live.stop()


def runs(server: LiveServer, **params: str) -> list[str]:
    r = httpx.get(server.url + "/v1/traces", params=params)
    assert r.status_code == 200, r.text
    return [t["run_id"] for t in r.json()["traces"]]


def test_default_is_newest_first(server: LiveServer) -> None:
    assert runs(server) == ["r-open", "r-gamma", "r-beta", "r-alpha"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"agent": "planner"}, ["r-beta", "r-alpha"]),
        ({"model": "gpt-4o"}, ["r-gamma", "r-alpha"]),
        ({"model": "gpt-4.1"}, ["r-open"]),  # a running run's model is known from its events
        ({"status": "error"}, ["r-beta"]),
        ({"status": "ok"}, ["r-gamma", "r-alpha"]),
        ({"status": "running"}, ["r-open"]),
        ({"since": "2026-01-01T00:01:00Z"}, ["r-open", "r-gamma", "r-beta"]),
        ({"until": "2026-01-01T00:01:00+00:00"}, ["r-beta", "r-alpha"]),
        ({"since": str(T0_MS + 60_000), "until": str(T0_MS + 120_000)}, ["r-gamma", "r-beta"]),
        ({"min_duration_ms": "2000"}, ["r-gamma", "r-beta"]),
        ({"max_duration_ms": "2500"}, ["r-open", "r-gamma", "r-alpha"]),
        ({"min_duration_ms": "1500", "max_duration_ms": "3000"}, ["r-gamma"]),
        ({"q": "GAMMA"}, ["r-gamma"]),  # run id, any case
        ({"q": "fetch_pa"}, ["r-beta"]),  # an attribute value (the tool name)
        ({"agent": "planner", "status": "ok"}, ["r-alpha"]),
        ({"limit": "2"}, ["r-open", "r-gamma"]),
        ({"run_id": "r-beta"}, ["r-beta"]),
        ({"agent": "nobody"}, []),
        ({"agent": "", "q": ""}, ["r-open", "r-gamma", "r-beta", "r-alpha"]),  # empty: no filter (an empty form)
    ],
)
def test_filters(server: LiveServer, params: dict[str, str], expected: list[str]) -> None:
    assert runs(server, **params) == expected


def test_free_text_finds_a_trace_id(server: LiveServer) -> None:
    (gamma,) = [t for t in httpx.get(server.url + "/v1/traces").json()["traces"] if t["run_id"] == "r-gamma"]
    assert runs(server, q=gamma["trace_id"][4:20]) == ["r-gamma"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("time", ["r-alpha", "r-beta", "r-gamma", "r-open"]),
        ("-time", ["r-open", "r-gamma", "r-beta", "r-alpha"]),
        ("-duration", ["r-beta", "r-gamma", "r-alpha", "r-open"]),
        ("duration", ["r-open", "r-alpha", "r-gamma", "r-beta"]),
        ("-tokens", ["r-beta", "r-gamma", "r-alpha", "r-open"]),
        ("tokens", ["r-open", "r-alpha", "r-gamma", "r-beta"]),
    ],
)
def test_sort(server: LiveServer, sort: str, expected: list[str]) -> None:
    assert runs(server, sort=sort) == expected


def test_cost_sort_puts_unpriced_runs_last_descending(server: LiveServer) -> None:
    listed = httpx.get(server.url + "/v1/traces", params={"sort": "-cost"}).json()["traces"]
    costs = [t["cost_usd"] if t["cost_usd"] is not None else -1.0 for t in listed]
    assert costs == sorted(costs, reverse=True)
    assert listed[-1]["run_id"] == "r-open"  # not priced yet


def test_summary_counts_calls_and_models(server: LiveServer) -> None:
    (beta,) = [t for t in httpx.get(server.url + "/v1/traces").json()["traces"] if t["run_id"] == "r-beta"]
    assert beta["llm_calls"] == 1
    assert beta["tool_calls"] == 1
    assert beta["models"] == ["claude-sonnet-4-5"]
    assert beta["status"] == "error"
    assert beta["duration_ms"] == pytest.approx(5000.0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit must be an integer from 1 to 1000, got '0'"),
        ({"limit": "abc"}, "limit must be an integer from 1 to 1000, got 'abc'"),
        ({"limit": "1001"}, "limit must be an integer from 1 to 1000, got '1001'"),
        ({"status": "done"}, "status must be one of: ok, error, running, incomplete; got 'done'"),
        ({"sort": "-name"}, "sort must be one of: time, duration, tokens, cost; got 'name'"),
        (
            {"since": "yesterday"},
            "since must be an RFC 3339 time with a zone (2025-01-02T03:04:05Z) or epoch milliseconds, got 'yesterday'",
        ),
        (
            {"until": "2026-01-01T00:00:00"},
            "until must be an RFC 3339 time with a zone (2025-01-02T03:04:05Z) or epoch milliseconds, "
            "got '2026-01-01T00:00:00'",
        ),
        ({"min_duration_ms": "-1"}, "min_duration_ms must be a number of milliseconds >= 0, got '-1'"),
        ({"max_duration_ms": "nan"}, "max_duration_ms must be a number of milliseconds >= 0, got 'nan'"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since must not be later than until"),
        (
            {"min_duration_ms": "5", "max_duration_ms": "1"},
            "min_duration_ms must not be greater than max_duration_ms",
        ),
    ],
)
def test_a_bad_parameter_gets_the_projects_error_body(server: LiveServer, params: dict[str, str], message: str) -> None:
    r = httpx.get(server.url + "/v1/traces", params=params)
    assert (r.status_code, r.json()) == (400, {"error": "invalid_query", "message": message})


def test_the_parameters_are_in_the_openapi_document(server: LiveServer) -> None:
    op = httpx.get(server.url + "/openapi.json").json()["paths"]["/v1/traces"]["get"]
    documented = {p["name"]: p.get("description", "") for p in op["parameters"]}
    assert set(documented) == {
        "limit",
        "run_id",
        "agent",
        "model",
        "status",
        "since",
        "until",
        "min_duration_ms",
        "max_duration_ms",
        "q",
        "sort",
    }
    assert all(documented.values())
    assert "400" in op["responses"]
