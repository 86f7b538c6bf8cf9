"""`otel-bridge demo`: the Quick start's first command shows traces at once."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
import subprocess
import sys
import time

import httpx
import pytest

from otel_bridge import demo
from tests.support.ports import free_port
from tests.support.server import REPO


def test_demo_serves_and_its_agent_produces_traces(tmp_path: pathlib.Path) -> None:
    port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_bridge", "demo", "--port", str(port), "--pace", "0.05", "--log-level", "warning"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        traces: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            try:
                listed = httpx.get(f"http://127.0.0.1:{port}/v1/traces").json()["traces"]
                traces = [t for t in listed if t["name"]]  # runs whose root span has finished
            except httpx.HTTPError:
                traces = []
            if len(traces) >= 2:
                break
            time.sleep(0.2)
        assert len(traces) >= 2, (tmp_path / "demo.log").read_text()
        names = {t["name"] for t in traces}
        assert names <= {"invoke_agent research-agent", "invoke_agent writer-agent", "invoke_agent support-agent"}
        trace = httpx.get(f"http://127.0.0.1:{port}/v1/traces/{traces[0]['trace_id']}").json()
        spans = trace["resourceSpans"][0]["scopeSpans"][0]["spans"]
        assert any(s["name"].startswith("chat ") for s in spans)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log.close()
    # The agent starts with the app, before the server listens: it waits for it instead of warning.
    assert "cannot reach the bridge" not in (tmp_path / "demo.log").read_text()


async def test_an_outage_is_told_once_and_only_past_a_quiet_spell(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(demo, "OUTAGE_QUIET_S", 0.3)
    agent = demo.DemoAgent(f"http://127.0.0.1:{free_port()}", pace=0.01, startup_wait_s=0.1)  # nothing listens
    task = asyncio.create_task(agent.run_forever())
    await asyncio.sleep(0.2)
    assert "cannot reach the bridge" not in caplog.text  # a moment's outage is not told
    await asyncio.sleep(1.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert caplog.text.count("cannot reach the bridge") == 1
