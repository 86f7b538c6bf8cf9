"""The real ``otel-bridge serve`` process, started and stopped by a test."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Mapping

from tests.support.ports import free_port
from tests.support.process import LoggedProcess

REPO = pathlib.Path(__file__).resolve().parents[2]


class BridgeProcess(LoggedProcess):
    what = "otel-bridge"

    def __init__(
        self,
        log_path: pathlib.Path,
        env: Mapping[str, str] | None = None,
        args: list[str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        # Never the real state folder: the durable export queue goes next to the log unless a test names one.
        full_env = {"OTEL_BRIDGE_QUEUE_DIR": str(log_path.with_suffix(".queue")), **(env or {})}
        cmd = [sys.executable, "-m", "otel_bridge", "serve", "--port", str(self.port), "--log-level", "warning"]
        super().__init__(cmd + list(args or []), log_path, self.url + "/v1/health", env=full_env, cwd=REPO)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
