"""A real ``redis-server`` the test starts on a free loopback port (never a system service).

Debian's package, installed by ``scripts/install-tools.sh``. Each instance has its
own folder; ``appendonly=True`` keeps the data in an AOF there, so a restart (same
port, same folder) comes back with the stream, as a persistent production Redis does.
"""

from __future__ import annotations

import pathlib
import shutil
import signal
import subprocess
import time

import redis

from tests.support.ports import free_port, stop_process

REDIS_BIN = shutil.which("redis-server")
SKIP_REASON = "redis-server is not installed (scripts/install-tools.sh installs Debian's redis-server package)"


class RedisServer:
    def __init__(self, folder: pathlib.Path, *, appendonly: bool = False, node_entries: int = 100) -> None:
        assert REDIS_BIN is not None, SKIP_REASON
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.node_entries = node_entries  # stream-node-max-entries: how coarse approximate trimming is
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_BIN is not None
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        # fmt: off
        self._proc = subprocess.Popen(
            [
                REDIS_BIN,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--stream-node-max-entries",
                str(self.node_entries),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        # fmt: on
        log.close()
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(self.folder / 'redis.log').read_text()[-2000:]}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown (the AOF is flushed); SIGKILL: a crash."""
        if self._proc is not None:
            stop_process(self._proc, 10, sig)
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)
