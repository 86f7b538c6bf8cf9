"""The MCP proxy with the real MCP SDK (mcp 2.3.0) on both sides: its client, the sidecar, its server.

The server (an ``MCPServer`` on Streamable HTTP) and the client run in the SDK's own
virtualenv (``.tools/mcp-2.3.0``, from ``scripts/install-tools.sh``) as subprocesses on
loopback; the sidecar runs in-process (uvicorn in a thread) with a ``ListSink``. The
client makes the same calls directly and through the proxy, in both protocol eras:
what it sees must be identical, and the proxy must trace every exchange (span names,
attributes, errors, progress and log events, the caller's trace context) and record
them in a log that ``replay`` turns into the same spans.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from otel_bridge.app import create_app
from otel_bridge.assembly import assemble
from otel_bridge.config import McpSettings, Settings
from otel_bridge.pipeline import ListSink
from tests.support.golden import replay_tree, span_trees
from tests.support.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
MCP_PYTHON = ROOT / ".tools" / "mcp-2.3.0" / "bin" / "python"
PRODUCER = ROOT / "tests" / "support" / "mcp_producer.py"
TRACE_ID = "e678994da4c5bda013a832a305e3dc48"
CALLER_SPAN = "7a4aaabb0ac09188"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
SLOW_S = 0.5  # the server answers sync_inventory this long after its last progress notification


def _missing() -> str | None:
    if not MCP_PYTHON.exists():
        return "the MCP SDK is not installed (.tools/mcp-2.3.0: scripts/install-tools.sh failed or did not run)"
    probe = subprocess.run([str(MCP_PYTHON), "-c", "import mcp, uvicorn"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        return "the MCP SDK in .tools/mcp-2.3.0 cannot be imported: " + probe.stderr.decode()[-200:]
    return None


MISSING = _missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


class Sidecar:
    """The real app (create_app) under a real uvicorn in a thread, its spans kept in a ListSink."""

    def __init__(self, settings: Settings) -> None:
        self.sink = ListSink()
        self.port = free_port()
        self.app = create_app(settings, pipeline=assemble(settings, extra_sinks=[self.sink]))
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._server.serve(),), daemon=True)
        self._thread.start()
        assert wait_for_port(self.port), "the sidecar did not start"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Shut down as serve does: the proxy traces what it queued, then the bridge closes its runs."""
        self._server.should_exit = True
        self._thread.join(30)
        assert not self._thread.is_alive(), "the sidecar did not stop"
        self._loop.close()


def run_client(url: str, mode: str, traceparent: str | None = None) -> dict[str, Any]:
    args = [str(MCP_PYTHON), str(PRODUCER), "client", url, mode, *([traceparent] if traceparent else [])]
    done = subprocess.run(args, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@dataclass
class Session:
    direct: dict[str, dict[str, Any]]
    proxied: dict[str, dict[str, Any]]
    traces: list[dict[str, Any]]
    record: Path


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    tmp = tmp_path_factory.mktemp("mcp")
    port = free_port()
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(
        [str(MCP_PYTHON), str(PRODUCER), "server", str(port), str(SLOW_S)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        assert wait_for_port(port, timeout=30), "the MCP server did not start"
        upstream = f"http://127.0.0.1:{port}/mcp"
        record = tmp / "exchanges.ndjson"
        sidecar = Sidecar(Settings(mcp=McpSettings(upstream=upstream, record=str(record))))
        runs = {"legacy": (None,), "auto": (None,), "auto-traced": (TRACEPARENT,)}
        direct: dict[str, dict[str, Any]] = {}
        proxied: dict[str, dict[str, Any]] = {}
        try:
            for name, (traceparent,) in runs.items():
                mode = name.split("-")[0]
                direct[name] = run_client(upstream, mode, traceparent)
                proxied[name] = run_client(sidecar.url + "/mcp", mode, traceparent)
        finally:
            sidecar.stop()
        yield Session(direct, proxied, span_trees(sidecar.sink.spans), record)
    finally:
        server.terminate()
        server.wait(10)
        log.close()


# -- the traffic ---------------------------------------------------------------------------------


@pytest.mark.parametrize("run", ["legacy", "auto", "auto-traced"])
def test_the_client_sees_the_same_results_through_the_proxy(session: Session, run: str) -> None:
    direct, proxied = session.direct[run]["seen"], session.proxied[run]["seen"]
    assert json.dumps(proxied) == json.dumps(direct)  # byte for byte, as the client decoded them
    kinds = dict((item[0], item[1:]) for item in proxied)
    assert kinds["protocol"] == (["2025-11-25"] if run == "legacy" else ["2026-07-28"])
    assert kinds["release_hold"][0]["isError"] is True
    assert kinds["prompts/get"][0] == "MCPError"  # a JSON-RPC error reaches the client as one
    assert len(kinds["progress"][0]) == 4
    assert kinds["logs"][0] == [{"level": "info", "data": "RTM-3: 2 discrepancies"}]


@pytest.mark.parametrize("run", ["legacy", "auto"])
def test_streamed_answers_are_not_buffered(session: Session, run: str) -> None:
    """Progress reaches the client through the proxy while the tool still runs, as it does directly."""
    timing = session.proxied[run]["timing"]
    assert timing["result"] - timing["first_progress"] >= SLOW_S * 0.8


# -- the traces ------------------------------------------------------------------------------------


def _roots(session: Session, prefix: str) -> list[dict[str, Any]]:
    return [
        span
        for trace in session.traces
        for span in trace["spans"]
        if str(span["attributes"].get("otel_bridge.run.id", "")).startswith(prefix)
    ]


def _children(root: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {child["name"]: child for child in root.get("children", [])}


EXPECTED_CALLS = [
    "tools/list",
    "execute_tool reorder_quote",
    "execute_tool release_hold",
    "execute_tool no_such_tool",
    "prompts/get no_such_prompt",
    "execute_tool sync_inventory",
]


def _session_root(session: Session) -> dict[str, Any]:
    roots = [r for r in _roots(session, "mcp:") if any(c["name"] == "initialize" for c in r.get("children", []))]
    assert len(roots) == 1, [r["name"] for r in _roots(session, "mcp:")]
    return roots[0]


def test_a_handshake_session_is_one_run_ended_by_its_delete(session: Session) -> None:
    root = _session_root(session)
    assert root["name"] == "invoke_agent warehouse-assistant"  # the client's clientInfo.name
    assert root["attributes"]["otel_bridge.status"] == "session_deleted"
    assert "otel_bridge.close_reason" not in root["attributes"]  # its producer ended it: not closed by a bound
    children = _children(root)
    assert [c["name"] for c in root["children"]] == ["initialize", *EXPECTED_CALLS]
    session_ids = {c["attributes"].get("mcp.session.id") for name, c in children.items() if name != "initialize"}
    assert len(session_ids) == 1
    assert None not in session_ids
    for name, child in children.items():
        attributes = child["attributes"]
        assert child["kind"] == "SERVER", name
        assert attributes["mcp.protocol.version"] == "2025-11-25", name
        assert attributes["network.transport"] == "tcp"
        assert attributes["jsonrpc.request.id"].isdigit()
    assert children["tools/list"]["attributes"]["mcp.method.name"] == "tools/list"
    assert "gen_ai.operation.name" not in children["tools/list"]["attributes"]


@pytest.mark.parametrize("era", ["legacy", "auto-traced"])
def test_tool_calls_errors_progress_and_logs(session: Session, era: str) -> None:
    root = _session_root(session) if era == "legacy" else _traced_root(session)
    children = _children(root)
    ok = children["execute_tool reorder_quote"]
    assert ok["status"] == "UNSET"
    assert ok["attributes"]["gen_ai.operation.name"] == "execute_tool"
    assert ok["attributes"]["gen_ai.tool.name"] == "reorder_quote"
    assert ok["attributes"]["mcp.method.name"] == "tools/call"
    for failed in ("execute_tool release_hold", "execute_tool no_such_tool"):
        span = children[failed]
        assert span["status"] == "ERROR", failed
        assert span["attributes"]["error.type"] == "tool_error", failed
    assert "locked by another operator" in children["execute_tool release_hold"]["status_message"]
    prompt = children["prompts/get no_such_prompt"]
    # The JSON-RPC error's code, whatever the server chose (this SDK: 0 in the handshake era, -32603 after).
    [seen] = [
        item for item in session.proxied["legacy" if era == "legacy" else era]["seen"] if item[0] == "prompts/get"
    ]
    code = str(seen[-1]["code"])
    assert prompt["status"] == "ERROR"
    assert prompt["attributes"]["error.type"] == code
    assert prompt["attributes"]["rpc.response.status_code"] == code
    assert prompt["attributes"]["gen_ai.prompt.name"] == "no_such_prompt"
    events = children["execute_tool sync_inventory"]["events"]
    assert [(e["name"], e["attributes"].get("otel_bridge.status")) for e in events] == [
        ("progress", "1/4"),
        ("progress", "2/4"),
        ("progress", "3/4"),
        ("progress", "4/4"),
        ("notifications/message", "info"),
    ]


def _traced_root(session: Session) -> dict[str, Any]:
    [trace] = [t for t in session.traces if t["trace_id"] == TRACE_ID]
    [root] = trace["spans"]
    return dict(root)


def test_the_callers_traceparent_joins_its_trace(session: Session) -> None:
    """The stateless client with a span context: every request's span is in the caller's trace, under it."""
    root = _traced_root(session)
    assert root["remote_parent_span_id"] == CALLER_SPAN
    assert [c["name"] for c in root["children"]] == ["server/discover", *EXPECTED_CALLS]
    for child in root["children"]:
        assert child["attributes"]["mcp.protocol.version"] == "2026-07-28"
        assert "mcp.session.id" not in child["attributes"]  # stateless: no session


def test_a_stateless_request_without_trace_context_is_a_trace_of_its_own(session: Session) -> None:
    untraced = [
        r for r in _roots(session, "mcp:") if r is not _session_root(session) and "remote_parent_span_id" not in r
    ]
    names = sorted(child["name"] for root in untraced for child in root.get("children", []))
    assert names == sorted(["server/discover", *EXPECTED_CALLS])
    assert all(len(root["children"]) == 1 for root in untraced)


# -- record and replay -----------------------------------------------------------------------------


def _normalised(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the spans came from (the proxy or a replay) and why the last runs closed (shutdown or end of
    input) are all that may differ."""

    def clean(span: dict[str, Any]) -> dict[str, Any]:
        attributes = dict(span["attributes"])
        attributes.pop("otel_bridge.source", None)
        if attributes.get("otel_bridge.close_reason") in ("shutdown", "end_of_input"):
            attributes["otel_bridge.close_reason"] = "closed"
        out = {**span, "attributes": attributes}
        if "children" in span:
            out["children"] = [clean(c) for c in span["children"]]
        return out

    return sorted(({**t, "spans": [clean(s) for s in t["spans"]]} for t in traces), key=lambda t: str(t["trace_id"]))


def test_the_recorded_log_replays_into_the_same_spans(session: Session) -> None:
    replayed = replay_tree(session.record, dialect="mcp")
    assert replayed["rejections"] == []
    assert _normalised(replayed["traces"]) == _normalised(session.traces)


def test_the_log_holds_every_exchange_in_the_samples_form(session: Session) -> None:
    records = [json.loads(line) for line in session.record.read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    for record in records:
        assert {
            "seq",
            "exchange",
            "direction",
            "http_session",
            "http_method",
            "path",
            "headers",
            "body",
            "time",
        } <= set(record)
        assert "authorization" not in record["headers"]
    methods = {(r["http_method"], r["direction"], r.get("status")) for r in records}
    # The handshake era's standalone GET stream and the session's DELETE passed through both ways.
    assert ("GET", "request", None) in methods
    assert ("DELETE", "response", 200) in methods
    assert ("POST", "response", 202) in methods  # notifications/initialized


def test_cli_replay_reads_a_recorded_log(session: Session, tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    done = subprocess.run(
        [sys.executable, "-m", "otel_bridge", "replay", "--dialect", "mcp", str(session.record), "--out", str(out)],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    names = {
        span["name"]
        for rs in json.loads(out.read_text())["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    }
    assert {"initialize", "server/discover", "prompts/get no_such_prompt", "execute_tool sync_inventory"} <= names


def test_every_request_span_was_ended_by_its_response(session: Session) -> None:
    incomplete = [
        span["name"]
        for trace in session.traces
        for root in trace["spans"]
        for span in [root, *root.get("children", [])]
        if span["attributes"].get("error.type") == "incomplete"
    ]
    assert incomplete == []
