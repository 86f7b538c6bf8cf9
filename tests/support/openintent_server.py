"""The real OpenIntent server (``openintent[server]==0.17.0``), started and stopped by tests.

It lives in its own virtual environment (``.tools/openintent``, made by
``scripts/install-tools.sh``) because its pins are not ours. The SDK-driven
agent (the SDK's OpenAI adapter against a fake OpenAI server) runs there too:
``python tests/support/openintent_server.py adapter ...`` with that
environment's interpreter; that part imports only the standard library and
the SDK.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV = REPO / ".tools" / "openintent"
SERVER_BIN = VENV / "bin" / "openintent-server"
PYTHON = VENV / "bin" / "python"
API_KEY = "dev-user-key"


def missing() -> str | None:
    """Why the server cannot run here, or ``None``."""
    if not SERVER_BIN.exists():
        return f"the OpenIntent server is not installed ({SERVER_BIN.relative_to(REPO)}; run scripts/install-tools.sh)"
    return None


class OpenIntentServer:
    """``openintent-server`` on a free port with a sqlite file database. ``kill()`` + ``start()`` keeps the data."""

    def __init__(self, workdir: pathlib.Path) -> None:
        from tests.support.ports import free_port

        self.port = free_port()
        self.db = workdir / "openintent.db"
        self.log_path = workdir / "openintent.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        import httpx

        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            self._proc = subprocess.Popen(
                [
                    str(SERVER_BIN),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--database-url",
                    f"sqlite:///{self.db}",
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"openintent-server exited: {self.log()}")
            try:
                if httpx.get(f"{self.url}/.well-known/openintent.json", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"openintent-server did not become ready: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """A crash: SIGKILL, no graceful shutdown."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)


def run_adapter_agent(server_url: str, intent_id: str, openai_url: str, timeout: float = 60.0) -> str:
    """Run the SDK's OpenAI adapter once (in the server's environment); returns its output."""
    done = subprocess.run(
        [
            str(PYTHON),
            str(pathlib.Path(__file__).resolve()),
            "adapter",
            "--server",
            server_url,
            "--intent",
            intent_id,
            "--openai",
            openai_url,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))},
    )
    if done.returncode != 0:
        raise RuntimeError(f"adapter agent failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    return done.stdout


def _adapter_main(args: argparse.Namespace) -> int:  # pragma: no cover - runs in the server's environment
    from openai import OpenAI
    from openintent import OpenIntentClient
    from openintent.adapters import OpenAIAdapter
    from openintent.adapters.base import AdapterConfig

    client = OpenIntentClient(base_url=args.server, api_key=API_KEY, agent_id="adapter-agent")
    errors: list[str] = []
    config = AdapterConfig(
        log_stream_chunks=True, chunk_log_interval=1, on_error=lambda exc, ctx: errors.append(f"{exc} {ctx}")
    )
    adapter = OpenAIAdapter(OpenAI(base_url=f"{args.openai}/v1", api_key="fake"), client, args.intent, config=config)
    stream = adapter.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Lisbon?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    print(text)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    adapter = sub.add_parser("adapter")
    adapter.add_argument("--server", required=True)
    adapter.add_argument("--intent", required=True)
    adapter.add_argument("--openai", required=True)
    sys.exit(_adapter_main(parser.parse_args()))
