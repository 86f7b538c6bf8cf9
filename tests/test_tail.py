"""``otel-bridge tail`` in a real pseudo-terminal (pexpect), against the real server, across a restart."""

from __future__ import annotations

import contextlib
import io
import pathlib
import signal
import sys
from collections.abc import Iterator

import pexpect
import pytest
from rich.console import Console

from otel_bridge.tail import render, render_notice, stream_url
from tests.support.live import post
from tests.support.ports import free_port
from tests.support.server import REPO, BridgeProcess

RUN = [
    {"kind": "run.started", "run_id": "run-a", "agent": "planner"},
    {
        "kind": "llm.completed",
        "run_id": "run-a",
        "model": "local-llm",
        "usage": {"input": 7, "output": 3},
        "cost_usd": 0.00042,
        "duration_ms": 1500,
    },
    {"kind": "tool.failed", "run_id": "run-a", "tool_name": "fetch", "call_id": "t1", "error": "timeout"},
    {"kind": "run.finished", "run_id": "run-a"},
]


@pytest.fixture
def tail_env(tmp_path: pathlib.Path) -> Iterator[tuple[int, list[BridgeProcess]]]:
    port = free_port()
    servers: list[BridgeProcess] = []
    try:
        yield port, servers
    finally:
        for server in servers:
            server.stop()


def spawn_tail(url: str, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "otel_bridge", "tail", url, *args],
        cwd=str(REPO),
        env={
            "PATH": "/usr/bin:/bin",
            "TERM": "xterm-256color",
            "COLUMNS": "160",
            "LINES": "40",
            "PYTHONFAULTHANDLER": "1",
        },
        encoding="utf-8",
        dimensions=(40, 160),
        timeout=15,
    )
    child.logfile_read = io.StringIO()  # everything the terminal showed, for the failure message
    return child


def screen(child: pexpect.spawn) -> str:
    log = child.logfile_read
    return log.getvalue() if isinstance(log, io.StringIO) else ""


def test_tail_renders_a_run_and_survives_a_server_restart(
    tmp_path: pathlib.Path, tail_env: tuple[int, list[BridgeProcess]]
) -> None:
    port, servers = tail_env
    servers.append(BridgeProcess(tmp_path / "one.log", port=port))
    url = servers[0].url
    child = spawn_tail(url)
    try:
        _run_and_restart(child, url, servers, port, tmp_path)
    except pexpect.TIMEOUT as exc:
        raise AssertionError(f"tail never showed the expected line; it showed:\n{screen(child)}") from exc
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def _run_and_restart(
    child: pexpect.spawn, url: str, servers: list[BridgeProcess], port: int, tmp_path: pathlib.Path
) -> None:
    # pexpect matches with DOTALL: patterns are lazy, or one greedy .* would swallow the
    # later lines whenever they arrive in the same read (it did, under load).
    child.expect("connected to")
    assert post(url, RUN).status_code == 202
    child.expect(r"run-a.*?run\.started.*?planner")
    child.expect(r"run-a.*?llm\.completed.*?local-llm.*?1\.50s.*?7→3 tok.*?\$0\.000420")
    child.expect(r"\x1b\[1;31mtool\.failed.*?fetch.*?✗ timeout")  # failures in bold red
    child.expect(r"run-a.*?run\.finished")

    servers[0].stop()
    child.expect("disconnected|the stream ended")
    servers.append(BridgeProcess(tmp_path / "two.log", port=port))
    child.expect("connected to", timeout=20)
    # Its Last-Event-ID came from the old server: it is told, not silently given a gap.
    child.expect("the server restarted: events after id [0-9]+ on the previous server are gone")
    assert post(url, [{**e, "run_id": "run-b"} for e in RUN]).status_code == 202
    child.expect(r"run-b.*?run\.started.*?planner")
    child.expect(r"run-b.*?run\.finished")
    child.sendintr()
    exits_on_interrupt(child)


def exits_on_interrupt(child: pexpect.spawn) -> None:
    """Ctrl-C ends it; if it does not within the timeout, the failure shows where it was stuck."""
    try:
        child.expect(pexpect.EOF)
    except pexpect.TIMEOUT:
        # PYTHONFAULTHANDLER is set: SIGABRT makes it print every thread's stack to the terminal.
        child.kill(signal.SIGABRT)
        with contextlib.suppress(pexpect.TIMEOUT, pexpect.EOF):
            child.expect(pexpect.EOF, timeout=5)
        raise AssertionError(
            f"tail did not exit within {child.timeout} s of Ctrl-C; it showed:\n{screen(child)}"
        ) from None


def test_tail_stops_with_a_clear_message_on_a_bad_filter(
    tmp_path: pathlib.Path, tail_env: tuple[int, list[BridgeProcess]]
) -> None:
    port, servers = tail_env
    servers.append(BridgeProcess(tmp_path / "one.log", port=port))
    child = spawn_tail(servers[0].url, "--kind", "nope")
    child.expect(r"✗ .*/v1/stream\?kind=nope: 400 kind 'nope' matches no event kind")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def plain(text: object) -> str:
    console = Console(width=200, color_system=None)
    with console.capture() as capture:
        console.print(text)
    return capture.get().rstrip("\n")


def test_one_line_per_event_with_every_column() -> None:
    line = plain(
        render(
            {
                "kind": "llm.completed",
                "run_id": "r1",
                "timestamp_ns": None,
                "model": "gpt-4o",
                "duration_ms": 12.34,
                "usage": {"input": 10, "output": 2},
                "cost_usd": 0.5,
            }
        )
    )
    assert (
        line
        == "--:--:--  r1                llm.completed     gpt-4o                        12.3ms  10→2 tok  $0.500000"
    )
    assert plain(render_notice("missed", {"missed": 4, "reason": "evicted"})) == (
        "⚠ missed 4 events (they left the server's ring)"
    )
    assert plain(render_notice("lagged", {"lost": 2, "recovered": 5})) == "⚠ fell behind: lost 2 events, 5 recovered"


def test_the_stream_url_carries_the_filters() -> None:
    assert stream_url("http://h:1/", {"kind": ["llm.*", "tool"], "run_id": None}) == (
        "http://h:1/v1/stream?kind=llm.%2A&kind=tool"
    )
    assert stream_url("http://h:1/v1/stream", {}) == "http://h:1/v1/stream"
