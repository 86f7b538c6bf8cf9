"""A real Arize Phoenix server for tests, from its own virtualenv under ``.tools/phoenix-<version>``.

Started with its HTTP server on loopback and a private working directory. Phoenix binds
its OTLP/gRPC receiver on every interface whatever ``PHOENIX_HOST`` says; the launcher below
rewrites that one bind to loopback (the tests send OTLP/HTTP; nothing here listens beyond
this machine). Read back through its REST API (``/v1/projects/{project}/spans``) and its
GraphQL API (costs, which it computes from its own price table).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import time
from typing import Any

import httpx

from tests.support.ports import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]

# grpc.aio.server(...).add_insecure_port("[::]:P") -> "127.0.0.1:P", then Phoenix's own main().
_LAUNCHER = """
import sys, grpc.aio
_server = grpc.aio.server
def _loopback_server(*a, **k):
    s = _server(*a, **k)
    add = s.add_insecure_port
    s.add_insecure_port = lambda address: add("127.0.0.1:" + address.rsplit(":", 1)[1])
    return s
grpc.aio.server = _loopback_server
from phoenix.server.main import main
sys.argv = ["phoenix", "serve"]
sys.exit(main())
"""


def phoenix_python() -> pathlib.Path | None:
    """The Python of the Phoenix virtualenv ``scripts/install-tools.sh`` made, if it exists."""
    for venv in sorted((ROOT / ".tools").glob("phoenix-*"), reverse=True):
        python = venv / "bin" / "python"
        if python.exists():
            return python
    return None


class Phoenix:
    """``phoenix serve`` on free loopback ports; :meth:`stop` ends it (and only it)."""

    def __init__(self, python: pathlib.Path, workdir: pathlib.Path, ready_timeout_s: float = 120.0) -> None:
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "phoenix.log"
        env = {
            **os.environ,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_WORKING_DIR": str(workdir),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(python), "-c", _LAUNCHER], env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"phoenix exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"phoenix not ready after {ready_timeout_s} s; see {self.log_path}")

    def spans(self, project: str, trace_id: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.url}/v1/projects/{project}/spans", params={"trace_id": trace_id, "limit": 1000}, timeout=10
        )
        if response.status_code == 404:
            return []
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def wait_for_spans(self, project: str, trace_id: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Ingest is asynchronous (a 200 only queues): poll until ``count`` spans of the trace are stored."""
        deadline = time.monotonic() + timeout
        spans: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            spans = self.spans(project, trace_id)
            if len(spans) >= count:
                return spans
            time.sleep(0.5)
        raise AssertionError(f"phoenix has {len(spans)} of {count} spans of trace {trace_id} in {project}")

    def graphql(self, query: str) -> dict[str, Any]:
        response = httpx.post(self.url + "/graphql", json={"query": query}, timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
