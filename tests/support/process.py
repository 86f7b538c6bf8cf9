"""A real program started by a test: its own log file, a readiness URL, a graceful stop.

Every server the tests start (the sidecar, Prometheus, the collector, Jaeger) is one
of these: the command, the environment without the caller's ``OTEL*`` variables
(a developer's shell must not redirect a test's exports), a log file that a failure
quotes, and a stop that sends SIGTERM and kills only if the program hangs.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Mapping, Sequence

from tests.support.ports import stop_process, wait_http_ready


class LoggedProcess:
    what = "process"
    log_tail = 4000

    def __init__(
        self,
        cmd: Sequence[str],
        log_path: pathlib.Path,
        ready_url: str,
        env: Mapping[str, str] | None = None,
        cwd: pathlib.Path | None = None,
        ready_timeout: float = 20.0,
        new_session: bool = False,
    ) -> None:
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL")}
        full_env.update(env or {})
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                list(cmd), env=full_env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session
            )
        try:
            wait_http_ready(self.proc, ready_url, self.what, self.log, timeout=ready_timeout)
        except RuntimeError:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-self.log_tail :]

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful shutdown that flushes), then kill if it hangs; the exit code."""
        return stop_process(self.proc, timeout)
