"""The ingest route reads its query parameters by hand: exactly as Starlette (and so FastAPI before) read them."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from otel_bridge.web.ingest import query_parameters

CASES = [
    b"",
    b"dialect=ag-ui",
    b"run_id=r%201&source=a+b",
    b"run_id=first&run_id=second",  # the last one wins
    b"dialect=&run_id=",  # blank values are kept (an empty dialect is an unknown one)
    b"run_id=%E2%9C%93&source=%ff",  # UTF-8 escapes; an invalid byte is replaced
    b"run%5Fid=escaped-name&other=1&source",
    b"&&run_id=x&",
    b"run_id=a=b",
]


@pytest.mark.parametrize("raw", CASES)
def test_query_parameters_read_as_starlette_reads_them(raw: bytes) -> None:
    params = QueryParams(raw)
    expected = {k: params[k] for k in ("dialect", "run_id", "source") if k in params}
    assert query_parameters(raw) == expected


def test_the_dispatch_serves_only_post_and_leaves_other_methods_to_the_router() -> None:
    from starlette.testclient import TestClient

    from otel_bridge.app import create_app
    from otel_bridge.config import Settings

    with TestClient(create_app(Settings())) as client:
        accepted = client.post(
            "/v1/events?run_id=q-1&source=s",
            content=b'{"kind": "run.started", "agent": "a"}',
            headers={"Content-Type": "application/json"},
        )
        assert accepted.status_code == 202
        assert accepted.headers["content-type"] == "application/json"
        assert accepted.json()["runs"][0]["run_id"] == "q-1"
        assert client.get("/v1/events").status_code == 405
        refused = client.post("/v1/events?dialect=klingon", content=b"{}", headers={"Content-Type": "application/json"})
        assert (refused.status_code, refused.json()["error"]) == (422, "unknown_dialect")


@pytest.mark.parametrize(
    ("headers", "dialect"), [({"X-Vercel-AI-UI-Message-Stream": "v1"}, "vercel-ai"), ({}, "generic")]
)
def test_the_route_passes_a_dialect_naming_header_to_detection(headers: dict[str, str], dialect: str) -> None:
    from starlette.testclient import TestClient

    from otel_bridge.app import create_app
    from otel_bridge.config import Settings

    # `start` and `finish` alone claim nothing: only the forwarded producer header names the dialect.
    body = b'data: {"type":"start","messageId":"m1"}\n\ndata: {"type":"finish"}\n\ndata: [DONE]\n\n'
    with TestClient(create_app(Settings())) as client:
        answer = client.post("/v1/events", content=body, headers={"Content-Type": "text/event-stream", **headers})
        assert answer.status_code == 202, answer.text
        assert answer.json()["dialect"] == dialect
