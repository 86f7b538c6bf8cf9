"""Free loopback ports for the servers tests start."""

from __future__ import annotations

import pathlib
import random
import signal
import socket
import subprocess
from collections.abc import Callable

_CHOOSE_FROM = (20_000, 32_767)
"""Below Linux's default range for client ports (32768-60999)."""
_handed: set[int] = set()
_rng = random.Random()


def ephemeral_range() -> tuple[int, int]:
    """The range the kernel takes client (and port-0) ports from."""
    try:
        low, high = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return (32_768, 60_999)
    return int(low), int(high)


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test is about to start.

    Chosen outside the kernel's range for client ports: a port the kernel hands out for port 0 can be
    taken, between this check and the server's bind, as the local end of any outgoing connection on
    the machine (it was, once in a full run: the collector's "address already in use"). One port is
    handed out once per test process. Where the client range leaves nothing to choose from, the
    kernel's choice.
    """
    low, high = _CHOOSE_FROM
    client_low, client_high = ephemeral_range()
    for _ in range(500):
        port = _rng.randint(low, high)
        if port in _handed or client_low <= port <= client_high:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # in use (or lingering): another
                continue
        _handed.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


def wait_http_ready(
    proc: subprocess.Popen[bytes], url: str, what: str, log: Callable[[], str], timeout: float = 20.0
) -> None:
    """Poll ``url`` until it answers 200; fail with the process's log if it exits or never does."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log()}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready: {log()}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float, sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` (SIGTERM: a graceful stop), wait ``timeout`` seconds, then kill; the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)
