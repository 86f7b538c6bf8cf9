"""A fleet on one real Redis: ``otel-bridge serve`` sidecars and ``otel-bridge feed`` processes, and a subscriber.

Every process reads ``fleet/otel-bridge.toml``, the file docker-compose's ``fleet`` profile mounts.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
from dataclasses import dataclass

import httpx
from httpx_sse import connect_sse

from tests.support.ports import free_port, stop_process, wait_http_ready

REPO = pathlib.Path(__file__).resolve().parents[2]
FLEET_CONFIG = REPO / "fleet" / "otel-bridge.toml"


class FleetProcess:
    """``otel-bridge serve`` (a sidecar) or ``otel-bridge feed`` (feed only) on the fleet's Redis."""

    def __init__(self, command: str, redis_url: str, log_path: pathlib.Path, *, wait: bool = True) -> None:
        """``wait=False``: launched, not yet ready (start several at once, then :meth:`wait_ready` each)."""
        self.command, self.redis_url, self.log_path = command, redis_url, log_path
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self.start(wait=wait)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_BRIDGE_QUEUE_DIR"] = "memory"
        cmd = [sys.executable, "-m", "otel_bridge", self.command, "--port", str(self.port), "--log-level", "warning"]
        cmd += ["--config", str(FLEET_CONFIG)]
        if self.command == "feed":
            cmd += ["--redis", self.redis_url]
        else:
            env["OTEL_BRIDGE_FEED_URL"] = self.redis_url
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        assert self._proc is not None
        wait_http_ready(self._proc, self.url + "/v1/health", f"otel-bridge {self.command}", self.log, timeout=60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def health(self) -> dict[str, object]:
        body: dict[str, object] = httpx.get(self.url + "/v1/health", timeout=5).json()
        return body

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, 15)
            self._proc = None


@dataclass(frozen=True)
class Received:
    id: str | None
    event: str
    data: dict[str, object]


class Subscriber(threading.Thread):
    """Reads ``/v1/stream`` in a thread until ``until`` events (notices not counted) have arrived."""

    def __init__(self, url: str, until: int, last_event_id: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.last_event_id, self.until = url, last_event_id, until
        self.received: list[Received] = []
        self.connected = threading.Event()
        self.error: BaseException | None = None

    @property
    def events(self) -> list[Received]:
        return [r for r in list(self.received) if r.event not in ("missed", "lagged")]

    @property
    def notices(self) -> list[Received]:
        return [r for r in list(self.received) if r.event in ("missed", "lagged")]

    def run(self) -> None:
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id is not None else {}
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)) as client,
                connect_sse(client, "GET", self.url + "/v1/stream", headers=headers) as source,
            ):
                source.response.raise_for_status()
                self.connected.set()
                for event in source.iter_sse():
                    if not event.data:
                        continue
                    self.received.append(Received(event.id or None, event.event, json.loads(event.data)))
                    if len(self.events) >= self.until:
                        return
        except BaseException as exc:
            self.error = exc
            self.connected.set()

    def result(self, timeout: float = 60.0) -> list[Received]:
        """Wait for the thread; its events, or the error it stopped on."""
        self.join(timeout)
        assert not self.is_alive(), f"the subscriber got {len(self.events)} of {self.until} events"
        if self.error is not None:
            raise AssertionError(f"the subscriber failed after {len(self.events)} events") from self.error
        return self.events
