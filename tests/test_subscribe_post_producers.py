"""POST subscriptions to the real wave-2 producers: the sidecar opens the stream itself.

The a2a-sdk server (``SendStreamingMessage``, its agent card read first), ADK's FastAPI
app (``run_sse``) and ``langgraph dev`` (``runs/stream``), each started as in
tests/test_producers_wave2.py (same producers, same helpers), are subscribed to by the
sidecar's source manager with a POST body. The trace each subscription gives must be the
one the pushed capture of the same request gives (tests/support/outlines), with the
source's name in place of ``http`` and, for A2A, the agent card's description on the root;
and each subscription ends once its run is over (a POST is not sent again).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.config import Settings, SourceSettings
from otel_bridge.pipeline import ListSink
from otel_bridge.sources.manager import SourceManager
from tests.support.golden import FIXTURES, span_trees
from tests.support.langgraph_producer import SUBGRAPH, SUBGRAPH_CONFIG, scripted_openai_app
from tests.support.producers import ingest, serve
from tests.support.wave2 import (
    A2A_PYTHON,
    ADK_PYTHON,
    LANGGRAPH,
    LANGGRAPH_CLI,
    SUPPORT,
    expected,
    missing,
    producer,
    shape,
)

SUBGRAPH_CAPTURE = FIXTURES / "langgraph" / "langgraph-trip-planner-subgraph-messages.sse"
_RUN_S = 60.0  # bounds a producer that never ends its stream; a run takes a second or two


async def _subscribed(settings: SourceSettings) -> tuple[list[str], dict[str, Any]]:
    """Subscribe until the source is done; ``(the outline of its traces, its /v1/sources entry)``."""
    sink = ListSink()
    bridge = assemble(Settings(), extra_sinks=[sink], pricer=None).bridge
    manager = SourceManager(bridge, [settings])
    source = manager.sources[0]
    await manager.start()
    try:
        async with asyncio.timeout(_RUN_S):
            while not source.snapshot()["done"]:  # noqa: ASYNC110 - a source has no event to wait on
                await asyncio.sleep(0.05)
    finally:
        await manager.shutdown()
    bridge.mapper.close_all(sc.CLOSE_END_OF_INPUT)
    return shape(span_trees(sink.spans)), source.snapshot()


def _as_pushed(lines: list[str], name: str, drop: Callable[[str], str] = lambda line: line) -> list[str]:
    """A subscribed outline in the pushed form: the source is ``http`` there."""
    return [drop(line).replace(f"{sc.BRIDGE_SOURCE}={name}", f"{sc.BRIDGE_SOURCE}=http") for line in lines]


def _done(snap: dict[str, Any]) -> dict[str, Any]:
    keys = ("method", "request", "last_status", "done", "reconnects", "last_error", "rejected")
    return {k: snap[k] for k in keys}


_DONE = {
    "method": "POST",
    "request": "start",
    "last_status": 200,
    "done": True,
    "reconnects": 0,
    "last_error": None,
    "rejected": 0,
}


@pytest.mark.skipif(missing(A2A_PYTHON, "a2a-sdk") is not None, reason=missing(A2A_PYTHON, "a2a-sdk") or "")
async def test_a2a_sdk_server_subscribed_with_send_streaming_message_and_its_agent_card() -> None:
    body = {
        "jsonrpc": "2.0",
        "id": "r1",
        "method": "SendStreamingMessage",
        "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "Where is JD0146?"}]}},
    }
    description = f"{sc.GEN_AI_AGENT_DESCRIPTION}=Tracks parcels. "
    with producer([str(A2A_PYTHON), str(SUPPORT / "a2a_producer.py"), "{port}"], "/.well-known/agent-card.json") as url:
        settings = SourceSettings(
            name="tracker", url=url + "/", method="POST", body=body, headers={"A2A-Version": "1.0"}
        )
        lines, snap = await _subscribed(settings)
    assert description in lines[0]  # the card's description is on the run's root
    assert _as_pushed(lines, "tracker", lambda line: line.replace(description, "")) == expected("a2a-ok")
    assert _done(snap) == _DONE
    assert (snap["dialect"], snap["agent_card"]) == (
        "a2a",
        {"name": "shipment-tracker", "description": "Tracks parcels.", "error": None},
    )


@pytest.mark.skipif(missing(ADK_PYTHON, "google-adk") is not None, reason=missing(ADK_PYTHON, "google-adk") or "")
async def test_adk_run_sse_subscribed_with_a_post_body_from_a_file(tmp_path: Path) -> None:
    body = {
        "app_name": "kitchen",
        "user_id": "u1",
        "session_id": "s-kitchen",
        "streaming": True,
        "new_message": {"role": "user", "parts": [{"text": "What can I cook?"}]},
    }
    body_file = tmp_path / "run.json"
    body_file.write_text(json.dumps(body))
    argv = [str(ADK_PYTHON), str(SUPPORT / "adk_producer.py"), "{port}", str(tmp_path / "agents")]
    with producer(argv, "/list-apps") as url:
        settings = SourceSettings(name="kitchen", url=url + "/run_sse", method="POST", body_file=str(body_file))
        lines, snap = await _subscribed(settings)
    assert _as_pushed(lines, "kitchen") == expected("adk-kitchen")
    assert (snap["dialect"], _done(snap)) == ("adk", _DONE)


@pytest.mark.skipif(missing(LANGGRAPH, "langgraph dev") is not None, reason=missing(LANGGRAPH, "langgraph") or "")
async def test_langgraph_dev_runs_stream_subscribed_with_a_post_body_with_and_without_a_subgraph(
    tmp_path: Path,
) -> None:
    (tmp_path / "graph.py").write_text(SUBGRAPH)  # the agent graph, and a graph that runs it as a subgraph
    (tmp_path / "langgraph.json").write_text(json.dumps(SUBGRAPH_CONFIG))
    question = {"messages": [{"role": "human", "content": "What are conditions in Berlin right now?"}]}
    modes = ["messages-tuple", "updates"]
    run = {"assistant_id": "city_conditions", "input": question, "stream_mode": modes}
    nested = {"assistant_id": "trip_planner", "input": question, "stream_mode": modes, "stream_subgraphs": True}
    async with serve(scripted_openai_app()) as model_url:
        env = {"SCRIPTED_OPENAI_URL": model_url, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}
        argv = [*LANGGRAPH_CLI, "dev", "--port", "{port}", "--no-browser", "--no-reload"]
        with producer(argv, "/info", cwd=tmp_path, env=env) as url:
            lines, snap = await _subscribed(
                SourceSettings(name="graph", url=url + "/runs/stream", method="POST", body=run)
            )
            trip, trip_snap = await _subscribed(
                SourceSettings(name="trip", url=url + "/runs/stream", method="POST", body=nested)
            )
    # The graph runs its two tool calls in parallel: lines are compared as a multiset, as for the push.
    assert sorted(_as_pushed(lines, "graph")) == sorted(expected("langgraph-messages"))
    assert (snap["dialect"], _done(snap)) == ("langgraph", _DONE)
    # The subgraph run gives the trace its stored capture gives (the golden tree's fixture), ids aside.
    _, captured = await ingest(SUBGRAPH_CAPTURE.read_bytes())
    assert sorted(_as_pushed(trip, "trip")) == sorted(shape(captured))
    assert [line.split(" [")[0] for line in trip if not line.lstrip().startswith("@")][:2] == [
        "invoke_agent trip_planner",
        "  invoke_agent city_conditions",
    ]
    assert (trip_snap["dialect"], _done(trip_snap)) == ("langgraph", _DONE)
