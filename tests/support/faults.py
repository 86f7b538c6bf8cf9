"""The fault drill's parts: a rotel collector that can go down and come back on the same ports,
a sidecar in its own process group (so a test can signal the whole group), and a load of runs
whose every span id is known in advance.

Used by tests/test_faults.py (bounded) and bench/bench_faults.py (the long outage).
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.ports import free_port, wait_for_port
from tests.support.process import LoggedProcess
from tests.support.rotel import ROTEL_BIN
from tests.support.server import REPO

MS = 1_000_000
T0 = 1_767_225_600_000 * MS  # a fixed start, 2026-01-01: the span ids depend only on the run ids
SPANS_PER_RUN = 3  # invoke_agent, chat, execute_tool


class RestartableRotel:
    """A real rotel collector on fixed loopback ports, forwarding to one in-process receiver that outlives it."""

    def __init__(self, log_path: pathlib.Path) -> None:
        self.receiver = OtlpReceiver().start()
        self.grpc_port = free_port()
        self.http_port = free_port()
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        args = [
            str(ROTEL_BIN), "start",
            "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
            "--otlp-receiver-logs-disabled", "--otlp-receiver-metrics-disabled",
            "--exporter", "otlp",
            "--otlp-exporter-endpoint", self.receiver.url,
            "--otlp-exporter-protocol", "http",
            "--traces-batch-timeout", "50ms",
        ]  # fmt: skip
        log = open(self._log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if not (wait_for_port(self.grpc_port) and wait_for_port(self.http_port)) or self._proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"rotel did not start: {self._log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        """Down hard (SIGKILL): a collector that vanishes, not one that drains."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def arrived(self) -> Counter[str]:
        """How many times each span id reached the receiver (through the collector)."""
        return Counter(span.span_id.hex() for _, span in self.receiver.spans())

    def close(self) -> None:
        self.stop()
        self.receiver.stop()


class GroupSidecar(LoggedProcess):
    """``otel-bridge serve`` as the leader of its own process group, as a service manager starts it."""

    what = "otel-bridge"

    def __init__(self, log_path: pathlib.Path, env: Mapping[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        cmd = [sys.executable, "-m", "otel_bridge", "serve", "--port", str(self.port), "--log-level", "warning"]
        super().__init__(cmd, log_path, self.url + "/v1/health", env=env, cwd=REPO, new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.url + "/v1/health", timeout=5).json()
        return body

    def worker_pid(self) -> int:
        """The export worker: the sidecar's one child process (it has a session of its own)."""
        children = pathlib.Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        assert len(children) == 1, f"expected one export worker, found {children}"
        return int(children[0])

    def signal_group(self, sig: int, timeout: float = 60.0) -> int:
        """``sig`` to the whole process group (systemd's stop, a terminal's Ctrl-C); the exit code."""
        os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise

    def kill_group(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def run_events(run_id: str, t0: int) -> list[dict[str, Any]]:
    """One complete run: an LLM call and a tool call under the agent span (three spans)."""
    return [
        {"kind": "run.started", "run_id": run_id, "agent": "drill", "timestamp": t0},
        {"kind": "llm.started", "run_id": run_id, "call_id": "c1", "model": "gpt-4o", "timestamp": t0 + MS},
        {"kind": "llm.completed", "run_id": run_id, "call_id": "c1", "model": "gpt-4o",
         "usage": {"input": 10, "output": 5}, "timestamp": t0 + 20 * MS},
        {"kind": "tool.started", "run_id": run_id, "call_id": "t1", "tool": "lookup", "timestamp": t0 + 21 * MS},
        {"kind": "tool.completed", "run_id": run_id, "call_id": "t1", "tool": "lookup", "timestamp": t0 + 30 * MS},
        {"kind": "run.finished", "run_id": run_id, "timestamp": t0 + 31 * MS},
    ]  # fmt: skip


class Load:
    """Posts complete runs (each makes ``SPANS_PER_RUN`` spans with ids derived from its run id)."""

    def __init__(self) -> None:
        self.runs = 0

    def post(self, sidecar: GroupSidecar, prefix: str, count: int) -> None:
        for _ in range(count):
            i = self.runs
            self.runs += 1
            response = httpx.post(
                f"{sidecar.url}/v1/events", json=run_events(f"{prefix}-{i}", T0 + i * 100 * MS), timeout=10
            )
            assert response.status_code == 202, response.text

    def post_for(self, sidecar: GroupSidecar, prefix: str, seconds: float, runs_per_s: float) -> None:
        """Steady load: ``runs_per_s`` runs a second for ``seconds``."""
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            self.post(sidecar, prefix, 1)
            time.sleep(max(0.0, 1 / runs_per_s - (time.monotonic() - now)))

    @property
    def expected_spans(self) -> int:
        return self.runs * SPANS_PER_RUN


def wait_all_arrived(collector: RestartableRotel, expected: int, timeout: float) -> tuple[Counter[str], float]:
    """Until ``expected`` distinct span ids have arrived (or ``timeout``); what arrived and when it was complete."""
    start = time.monotonic()
    while True:
        arrived = collector.arrived()
        if len(arrived) >= expected or time.monotonic() - start > timeout:
            return arrived, time.monotonic() - start
        time.sleep(0.1)
