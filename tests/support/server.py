"""The real ``otel-bridge serve`` process, started and stopped by a test."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

import httpx

from tests.support.ports import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]


class BridgeProcess:
    def __init__(
        self,
        log_path: pathlib.Path,
        env: Mapping[str, str] | None = None,
        args: list[str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        full_env.update(env or {})
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "otel_bridge", "serve", "--port", str(self.port), "--log-level", "warning"]
        self._proc = subprocess.Popen(
            cmd + list(args or []), env=full_env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"otel-bridge exited: {self.log()}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"otel-bridge did not become ready: {self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful shutdown that flushes exports), then kill if it hangs."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        return int(self._proc.returncode)
