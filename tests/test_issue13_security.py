"""Issue 13, item 7: tokens never reach the log, ``/metrics`` is behind the token unless public,
and the OpenAPI schema documents every route."""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from otel_bridge.app import create_app
from otel_bridge.config import Settings
from otel_bridge.dialects.framing import ACCEPTED_MEDIA_TYPES
from otel_bridge.web.auth import RedactQueryCredentials, redact
from otel_bridge.web.ingest import STATUS
from tests.support.server import BridgeProcess

TOKEN = "s3cret-token-123"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/v1/stream?access_token=abc", "/v1/stream?access_token=REDACTED"),
        ("/v1/stream?run_id=r&access_token=abc&format=agui", "/v1/stream?run_id=r&access_token=REDACTED&format=agui"),
        ("/v1/stream?TOKEN=abc", "/v1/stream?TOKEN=REDACTED"),
        ("/v1/stream?run_id=token", "/v1/stream?run_id=token"),
        ("/v1/traces", "/v1/traces"),
    ],
)
def test_redact(target: str, expected: str) -> None:
    assert redact(target) == expected


def test_the_filter_rewrites_uvicorns_access_record() -> None:
    args = ("1.2.3.4", "GET", "/v1/stream?access_token=x", "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', args, None)
    assert RedactQueryCredentials().filter(record)
    assert record.getMessage() == '1.2.3.4 - "GET /v1/stream?access_token=REDACTED HTTP/1.1" 200'


def test_the_feed_token_never_reaches_the_access_log(bridge_server: Callable[..., BridgeProcess]) -> None:
    server = bridge_server(env={"OTEL_BRIDGE_TOKEN": TOKEN}, args=["--log-level", "info"])
    with httpx.stream("GET", f"{server.url}/v1/stream?access_token={TOKEN}&replay=0", timeout=5) as r:
        assert r.status_code == 200
    httpx.get(f"{server.url}/v1/traces?token={TOKEN}")
    deadline = time.monotonic() + 5
    while "/v1/traces?token=REDACTED" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()
    assert "/v1/stream?access_token=REDACTED" in log
    assert TOKEN not in log


def test_metrics_need_the_token_unless_public(
    bridge_server: Callable[..., BridgeProcess], tmp_path: pathlib.Path
) -> None:
    guarded = bridge_server(env={"OTEL_BRIDGE_TOKEN": TOKEN})
    assert httpx.get(guarded.url + "/metrics").status_code == 401
    r = httpx.get(guarded.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert "otel_bridge" in r.text
    config = tmp_path / "public.toml"
    config.write_text("[metrics]\npublic = true\n")
    public = bridge_server(env={"OTEL_BRIDGE_TOKEN": TOKEN}, args=["--config", str(config)])
    assert httpx.get(public.url + "/metrics").status_code == 200
    assert httpx.get(public.url + "/v1/traces").status_code == 401


# Routes that are not API: the viewer's page and its assets, and FastAPI's own documentation.
NOT_API = {"/", "/static/{name}", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _routes(routes: list[Any]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, APIRoute):
            found |= {(route.path, m.lower()) for m in route.methods}
        inner = getattr(route, "original_router", None) or getattr(route, "router", None)
        if inner is not None and hasattr(inner, "routes"):
            found |= _routes(inner.routes)
    return found


def test_the_openapi_schema_documents_every_route() -> None:
    app = create_app(Settings())
    schema = app.openapi()
    documented = {(path, method) for path, ops in schema["paths"].items() for method in ops}
    served = {(p, m) for p, m in _routes(app.routes) if p not in NOT_API and m != "head"}
    assert served, "no routes found: the walk over the app's routes is broken"
    assert documented == served
    ingest = schema["paths"]["/v1/events"]["post"]
    assert set(ingest["requestBody"]["content"]) == set(ACCEPTED_MEDIA_TYPES)
    assert {int(code) for code in ingest["responses"]} >= {202, 401, 413, *STATUS.values()}
    assert "422" in ingest["responses"]
    assert set(schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {
        "text/plain; version=0.0.4; charset=utf-8"
    }
