"""The wave-2 protocols from their real producers: the a2a-sdk server, ADK's FastAPI app, the AI SDK, ``langgraph dev``.

Each producer is the library's own server code, run in its own virtualenv or node
folder under ``.tools/`` (``scripts/install-tools.sh``; their pins never touch ours)
on a loopback port, with a scripted model or executor (no network). The test reads
the raw stream as a client does, POSTs those bytes to the real bridge app, and
compares the whole span forest (times and generated ids left out).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.langgraph_producer import CONFIG, GRAPH, scripted_openai_app
from tests.support.producers import ingest, serve
from tests.support.wave2 import (
    A2A_PYTHON,
    ADK_PYTHON,
    AI_SDK,
    LANGGRAPH,
    LANGGRAPH_CLI,
    NODE,
    SUPPORT,
    expected,
    missing,
    producer,
    shape,
)


def _post_stream(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[bytes, httpx.Headers]:
    with httpx.Client(timeout=30.0) as client:
        response = client.post(url, json=body, headers={"Accept": "text/event-stream", **(headers or {})})
        response.raise_for_status()
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.content, response.headers


def _get_json(url: str) -> Any:
    return httpx.get(url, timeout=10.0).json()


async def _mapped(body: bytes) -> tuple[str, list[str]]:
    answer, traces = await ingest(body)
    assert answer["rejected"] == 0, answer
    lines = shape(traces)
    if os.environ.get("WRITE_OUTLINES"):  # review a producer's outline by eye, then keep it as the expectation
        _append(Path(os.environ["WRITE_OUTLINES"]), "\n".join(lines) + "\n\n")
    return str(answer["dialect"]), lines


def _append(path: Path, text: str) -> None:
    with path.open("a") as out:
        out.write(text)


# -- A2A: the a2a-sdk server with an executor that answers as ADK's bridge does ----------------


@pytest.mark.skipif(missing(A2A_PYTHON, "a2a-sdk") is not None, reason=missing(A2A_PYTHON, "a2a-sdk") or "")
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
    with producer([str(A2A_PYTHON), str(SUPPORT / "a2a_producer.py"), "{port}"], "/.well-known/agent-card.json") as url:
        card = _get_json(url + "/.well-known/agent-card.json")
        ok, _ = _post_stream(url + "/", v1, {"A2A-Version": "1.0"})
        failed, _ = _post_stream(url + "/", v03)
    assert card["name"] == "shipment-tracker"
    assert (await _mapped(ok), await _mapped(failed)) == (
        ("a2a", expected("a2a-ok")),
        ("a2a", expected("a2a-failed")),
    )


# -- ADK: agents on ADK's FastAPI app with a scripted model ------------------------------------


@pytest.mark.skipif(missing(ADK_PYTHON, "google-adk") is not None, reason=missing(ADK_PYTHON, "google-adk") or "")
async def test_adk_run_sse_maps_transfer_nesting_streamed_calls_and_an_aborted_run(tmp_path: Path) -> None:
    argv = [str(ADK_PYTHON), str(SUPPORT / "adk_producer.py"), "{port}", str(tmp_path / "agents")]
    with producer(argv, "/list-apps") as url:
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
    assert mapped == [("adk", expected("adk-kitchen")), ("adk", expected("adk-stock"))]


# -- Vercel AI SDK: streamText with the SDK's mock model, on Node 22 ---------------------------


@pytest.mark.skipif(missing(NODE, "Node 22 and the AI SDK") is not None, reason=missing(NODE, "Node 22") or "")
async def test_ai_sdk_ui_message_stream_maps_steps_tools_and_per_step_metadata(tmp_path: Path) -> None:
    # ES modules resolve packages from the script's own folder: run a copy beside the SDK's node_modules.
    script = tmp_path / "ai_sdk_producer.mjs"
    script.write_bytes((SUPPORT / "ai_sdk_producer.mjs").read_bytes())
    (tmp_path / "node_modules").symlink_to(AI_SDK / "node_modules", target_is_directory=True)
    with producer([str(NODE), str(script), "{port}"], "/") as url:
        body, headers = _post_stream(url + "/chat", {"messages": []})
    assert headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert await _mapped(body) == ("vercel-ai", expected("ai-sdk"))


# -- LangGraph: `langgraph dev` with a chat model on a scripted OpenAI-compatible server ------


@pytest.mark.skipif(missing(LANGGRAPH, "langgraph dev") is not None, reason=missing(LANGGRAPH, "langgraph") or "")
async def test_langgraph_dev_run_streams_map_in_the_events_and_the_messages_updates_modes(tmp_path: Path) -> None:
    (tmp_path / "graph.py").write_text(GRAPH)
    (tmp_path / "langgraph.json").write_text(json.dumps(CONFIG))
    question = {"messages": [{"role": "human", "content": "What are conditions in Berlin right now?"}]}
    async with serve(scripted_openai_app()) as model_url:
        env = {"SCRIPTED_OPENAI_URL": model_url, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}
        argv = [*LANGGRAPH_CLI, "dev", "--port", "{port}", "--no-browser", "--no-reload"]
        with producer(argv, "/info", cwd=tmp_path, env=env) as url:
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
        ("langgraph", sorted(expected("langgraph-events"))),
        ("langgraph", sorted(expected("langgraph-messages"))),
    ]
