"""The bearer token on ingest, the feed and the trace API, and the CORS allow-list, on the real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from otel_bridge.app import create_app
from otel_bridge.config import Settings
from otel_bridge.config.settings import CorsSettings, McpSettings
from tests.support.live import post, sse, take
from tests.support.server import BridgeProcess

TOKEN = "s3cret-token-123"
MISSING = {
    "error": "unauthorized",
    "message": "this endpoint needs a bearer token: send 'Authorization: Bearer <token>'"
    " (the feed also accepts ?access_token=<token>)",
}
WRONG = {"error": "unauthorized", "message": "the bearer token is not valid"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    """One real server for the module (every test here only reads or adds events)."""
    log = tmp_path_factory.mktemp("auth") / "bridge.log"
    process = BridgeProcess(log, env={"OTEL_BRIDGE_TOKEN": TOKEN, "OTEL_BRIDGE_CORS_ORIGINS": "http://ui.example"})
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/events"), ("GET", "/v1/stream"), ("GET", "/v1/traces"), ("GET", "/v1/traces/" + "0" * 32)],
)
@pytest.mark.parametrize(
    ("headers", "body", "challenge"),
    [
        ({}, MISSING, 'Bearer realm="otel-bridge"'),
        ({"Authorization": "Bearer nope-nope-nope"}, WRONG, 'Bearer realm="otel-bridge", error="invalid_token"'),
        ({"Authorization": f"Basic {TOKEN}"}, WRONG, 'Bearer realm="otel-bridge", error="invalid_token"'),
        ({"Authorization": f"Bearer {TOKEN}x"}, WRONG, 'Bearer realm="otel-bridge", error="invalid_token"'),
    ],
)
def test_missing_or_wrong_token_is_401_with_a_clear_message(
    server: BridgeProcess, method: str, path: str, headers: dict[str, str], body: dict[str, str], challenge: str
) -> None:
    r = httpx.request(method, server.url + path, headers=headers, content=b'{"kind":"progress"}', timeout=5)
    assert (r.status_code, r.json(), r.headers["www-authenticate"]) == (401, body, challenge)


def test_the_right_token_opens_ingest_and_the_feed(server: BridgeProcess) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with sse(server.url + "/v1/stream", headers=auth) as events:
        assert post(server.url, [{"kind": "progress", "run_id": "r", "name": "p"}], token=TOKEN).status_code == 202
        assert [e.event for e in take(events, 1)] == ["progress"]
    with sse(f"{server.url}/v1/stream?access_token={TOKEN}&last_event_id=0") as events:
        assert [e.event for e in take(events, 2)] == ["missed", "progress"]
    assert httpx.get(server.url + "/v1/traces", headers=auth).status_code == 200


def test_the_query_token_is_only_for_the_feed(server: BridgeProcess) -> None:
    r = httpx.get(f"{server.url}/v1/traces?access_token={TOKEN}")
    assert (r.status_code, r.json()) == (401, MISSING)


def test_health_and_the_viewer_page_stay_open(server: BridgeProcess) -> None:
    assert httpx.get(server.url + "/v1/health").status_code == 200
    assert httpx.get(server.url + "/").status_code == 200


def test_cors_allows_only_the_listed_origins(server: BridgeProcess) -> None:
    preflight = httpx.options(
        server.url + "/v1/stream",
        headers={
            "Origin": "http://ui.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,last-event-id",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://ui.example"
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    # A 401 still carries the CORS header, so the browser lets the page read the message.
    denied = httpx.get(server.url + "/v1/traces", headers={"Origin": "http://ui.example"})
    assert (denied.status_code, denied.headers["access-control-allow-origin"]) == (401, "http://ui.example")
    other = httpx.options(
        server.url + "/v1/stream", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


def test_no_token_configured_leaves_the_api_open(bridge_server: Callable[..., BridgeProcess]) -> None:
    server = bridge_server()
    assert post(server.url, [{"kind": "progress", "run_id": "r"}]).status_code == 202
    r = httpx.get(server.url + "/v1/traces", headers={"Origin": "http://ui.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_the_ingest_lane_keeps_the_token_check_and_cors(server: BridgeProcess) -> None:
    """``POST /v1/events`` is served ahead of FastAPI's middleware (web/lanes.py), still behind both."""
    origin, JSON = {"Origin": "http://ui.example"}, {"Content-Type": "application/json"}
    body = b'{"kind":"progress","run_id":"lane"}'
    denied = httpx.post(server.url + "/v1/events", headers=origin, content=body)
    assert (denied.status_code, denied.json(), denied.headers["access-control-allow-origin"]) == (
        401,
        MISSING,
        "http://ui.example",
    )
    taken = httpx.post(
        server.url + "/v1/events", headers={**origin, **JSON, "Authorization": f"Bearer {TOKEN}"}, content=body
    )
    assert (taken.status_code, taken.headers["access-control-allow-origin"]) == (202, "http://ui.example")
    preflight = httpx.options(
        server.url + "/v1/events",
        headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    assert (preflight.status_code, preflight.headers["access-control-allow-origin"]) == (200, "http://ui.example")


@pytest.mark.parametrize("mcp", [True, False])
def test_cors_lets_a_browser_mcp_client_end_its_session_only_with_the_proxy_on(mcp: bool) -> None:
    settings = Settings(
        cors=CorsSettings(allow_origins=["http://ui.example"]),
        mcp=McpSettings(upstream="http://127.0.0.1:9/mcp" if mcp else None),
    )
    preflight = TestClient(create_app(settings)).options(  # no lifespan: nothing is started
        "/mcp",
        headers={
            "Origin": "http://ui.example",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "mcp-session-id,mcp-protocol-version",
        },
    )
    if mcp:
        assert preflight.status_code == 200
        assert "DELETE" in preflight.headers["access-control-allow-methods"]
        assert "Mcp-Session-Id" in preflight.headers["access-control-allow-headers"]
    else:
        assert preflight.status_code == 400  # DELETE and the MCP headers are not allowed without the proxy
