"""The real ``otel-bridge serve`` process, started and stopped by a test."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Mapping

from tests.support.ports import free_port, stop_process, wait_http_ready

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
        # Never the real state folder: the durable export queue goes next to the log unless a test names one.
        full_env["OTEL_BRIDGE_QUEUE_DIR"] = str(log_path.with_suffix(".queue"))
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

    def _wait_ready(self) -> None:
        try:
            wait_http_ready(self._proc, self.url + "/v1/health", "otel-bridge", self.log)
        except RuntimeError:
            self.stop()
            raise

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful shutdown that flushes exports), then kill if it hangs."""
        code = stop_process(self._proc, timeout)
        self._log.close()
        return code
