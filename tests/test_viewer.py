"""The viewer page at ``GET /``: served, its HTML/JS contract with the API, and a trace shown in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from otel_bridge import semconv as sc
from otel_bridge.model import EventKind
from otel_bridge.sinks.feed.record import FeedRecord
from otel_bridge.web import viewer
from otel_bridge.web.viewer import page_config
from tests.support.live import LiveServer, post, wait_for

RUN = [
    {"kind": "run.started", "run_id": "view-1", "agent": "planner"},
    {"kind": "llm.started", "run_id": "view-1", "model": "gpt-4o", "call_id": "c1"},
    {
        "kind": "llm.completed",
        "run_id": "view-1",
        "model": "gpt-4o",
        "call_id": "c1",
        "usage": {"input": 5, "output": 2},
    },
    {"kind": "tool.started", "run_id": "view-1", "tool_name": "search", "call_id": "t1"},
    {"kind": "tool.failed", "run_id": "view-1", "tool_name": "search", "call_id": "t1", "error": "boom"},
    {"kind": "run.finished", "run_id": "view-1"},
]


@pytest.fixture
def server() -> Iterator[LiveServer]:
    live = LiveServer()
    try:
        yield live
    finally:
        live.stop()


def test_the_page_and_its_two_files_are_served(server: LiveServer) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    kinds = re.search(r'<body data-kinds="([^"]*)">', page.text)
    assert kinds is not None
    assert kinds.group(1).split(" ") == [k.value for k in EventKind]  # every event name the feed can send
    assert httpx.get(server.url + "/static/viewer.js").headers["content-type"] == "text/javascript; charset=utf-8"
    assert httpx.get(server.url + "/static/viewer.css").headers["content-type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        # Dot segments percent-encoded, so the client sends them as they are (it would
        # normalise "/static/../app.py" to "/app.py", which never reaches the route).
        ("/static/%2E%2E", ".."),
        ("/static/.%2e", ".."),
        ("/static/app.py", "app.py"),
        ("/static/viewer.js.map", "viewer.js.map"),
    ],
)
def test_a_name_off_the_static_list_gets_the_whitelists_404(server: LiveServer, path: str, name: str) -> None:
    r = httpx.get(server.url + path)
    assert r.request.url.raw_path == path.encode()  # sent as written
    # The whitelist's own answer, not the router's {"detail": "Not Found"}.
    assert (r.status_code, r.json()) == (404, {"error": "not_found", "message": f"no static file {name!r}"})


def test_an_encoded_slash_does_not_climb_out_of_static(server: LiveServer) -> None:
    r = httpx.get(server.url + "/static/..%2Fapp.py")
    assert r.request.url.raw_path == b"/static/..%2Fapp.py"
    assert r.status_code == 404
    assert "create_app" not in r.text


def test_the_page_is_told_the_names_it_reads_spans_by(server: LiveServer) -> None:
    page = httpx.get(server.url + "/").text
    found = re.search(r'<script id="config" type="application/json">(.*?)</script>', page)
    assert found is not None
    assert json.loads(found.group(1)) == page_config(None)
    config = page_config("http://jaeger:16686/trace/{trace_id}")
    assert config["kinds"] == [k.value for k in EventKind]
    attrs = config["attrs"]
    assert isinstance(attrs, dict)
    assert attrs["operation"] == sc.GEN_AI_OPERATION_NAME
    assert attrs["toolArguments"] == sc.GEN_AI_TOOL_CALL_ARGUMENTS
    assert config["traceUrlTemplate"] == "http://jaeger:16686/trace/{trace_id}"
    # No attribute name spelled in the script: it reads them all from the config.
    js = httpx.get(server.url + "/static/viewer.js").text
    assert not re.search(r'"(gen_ai|otel_bridge)\.', js)
    for key in set(re.findall(r"\bA\.([a-zA-Z]+)", js)):
        assert key in attrs, key


def test_a_closing_script_tag_in_the_config_cannot_end_the_element() -> None:
    assert b"</script>" not in viewer._script_json({"traceUrlTemplate": "http://x/</script><script>alert(1)"})


def test_the_script_reads_only_what_the_api_serves(server: LiveServer) -> None:
    js = httpx.get(server.url + "/static/viewer.js").text
    assert '"/v1/traces?" + params.toString()' in js
    assert '"/v1/traces/" + traceId' in js
    assert 'q.set("access_token", token)' in js
    post(server.url, RUN)
    wait_for(lambda: bool(httpx.get(server.url + "/v1/traces").json()["traces"]), what="a trace in the store")
    summary = httpx.get(server.url + "/v1/traces").json()["traces"][0]
    for field in set(re.findall(r"\bt\.([a-z_]+)", js)):
        assert field in summary, field
    # What the script reads from a feed event (``d.<field>``) is a field of the feed's record.
    feed_fields = set(re.findall(r"\bd\.([a-z_]+)", js))
    assert feed_fields <= set(FeedRecord.__struct_fields__), feed_fields - set(FeedRecord.__struct_fields__)
    # The tree reads OTLP/JSON as the trace endpoint writes it.
    trace = httpx.get(f"{server.url}/v1/traces/{summary['trace_id']}").json()
    span = trace["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for field in ("spanId", "parentSpanId", "startTimeUnixNano", "endTimeUnixNano", "name", "attributes"):
        assert f"s.{field}" in js
    assert {"spanId", "startTimeUnixNano", "endTimeUnixNano", "name", "attributes"} <= span.keys()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (scripts/install-tools.sh installs it)"
)
def test_headless_chromium_shows_the_trace_waterfall(server: LiveServer) -> None:
    """The page without Playwright: Chromium's own --dump-dom of a trace (tests/test_viewer_browser.py drives it)."""
    assert CHROMIUM is not None
    post(server.url, RUN)
    wait_for(lambda: len(server.app.state.pipeline.store) == 1, what="the trace in the store")
    summary = httpx.get(server.url + "/v1/traces").json()["traces"][0]
    wait_for(
        lambda: httpx.get(server.url + "/v1/traces").json()["traces"][0]["span_count"] == 3, what="all three spans"
    )
    trace = httpx.get(f"{server.url}/v1/traces/{summary['trace_id']}").json()
    spans = {s["spanId"]: s["name"] for s in trace["resourceSpans"][0]["scopeSpans"][0]["spans"]}
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
            "--dump-dom",
            f"{server.url}/#trace={summary['trace_id']}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = re.findall(
        r'<div class="row ([^"]*)"[^>]*data-span-id="([0-9a-f]{16})".*?<span class="name">([^<]*)</span>', dom
    )
    assert {span_id: name for _, span_id, name in rows} == spans
    classes = {name: cls.split() for cls, _, name in rows}
    assert "error" in classes["execute_tool search"]
    assert "error" not in classes["chat gpt-4o"]
    assert "selected" in classes["execute_tool search"]  # a trace opens at its first failed call
