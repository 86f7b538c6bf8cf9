"""A LangGraph agent for ``langgraph dev``, and the scripted OpenAI-compatible model it calls.

tests/test_producers_wave2.py writes :data:`GRAPH` and :data:`CONFIG` into a
project folder and runs ``langgraph dev`` there with LangGraph's own virtualenv
(``.tools/langgraph-api-*``, never ours). The graph's chat model is LangChain's
``ChatOpenAI`` pointed (``SCRIPTED_OPENAI_URL``) at :func:`scripted_openai_app`,
served by the test on loopback: the first call asks for two tools (one of them
fails), the second answers; both stream with usage on the last chunk, as
OpenAI's API does. This module runs in our environment (the app) and is read as
text for the graph (it imports nothing of LangGraph).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

GRAPH = '''
import os

from langchain.agents import create_agent
from langchain_core.tools import ToolException, tool
from langchain_openai import ChatOpenAI


@tool
def get_weather(city: str) -> dict:
    """Current weather in a city."""
    return {"city": city, "temp_c": 14, "conditions": "light rain"}


@tool
def get_air_quality(city: str) -> dict:
    """Current air quality in a city."""
    raise ToolException("AQI upstream returned HTTP 502")


get_air_quality.handle_tool_error = True

model = ChatOpenAI(
    model="gpt-4.1",
    base_url=os.environ["SCRIPTED_OPENAI_URL"],
    api_key="scripted",
    stream_usage=True,
    max_retries=0,
)
graph = create_agent(
    model,
    tools=[get_weather, get_air_quality],
    system_prompt="You report current conditions in a city. Use the tools.",
    name="city_conditions",
)
'''

CONFIG = {"dependencies": ["."], "graphs": {"city_conditions": "./graph.py:graph"}}

# A graph with a subgraph: the agent above runs as the `city_conditions` node of `trip_planner`,
# whose `report` node then calls the model itself. tests/fixtures/langgraph/langgraph-trip-planner-
# subgraph-*.sse are its `runs/stream` answers with `stream_subgraphs` (events; messages-tuple + updates).
SUBGRAPH = (
    GRAPH
    + """

from langgraph.graph import END, START, MessagesState, StateGraph


def report(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


parent = StateGraph(MessagesState)
parent.add_node("city_conditions", graph)
parent.add_node("report", report)
parent.add_edge(START, "city_conditions")
parent.add_edge("city_conditions", "report")
parent.add_edge("report", END)
trip_planner = parent.compile(name="trip_planner")
"""
)
SUBGRAPH_CONFIG = {
    "dependencies": ["."],
    "graphs": {"city_conditions": "./graph.py:graph", "trip_planner": "./graph.py:trip_planner"},
}

_MODEL = "gpt-4.1-2025-04-14"


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1796079000,
        "model": _MODEL,
        "choices": [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n"


def _usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _tool_calls() -> list[str]:
    calls = [("call_wxBer01", "get_weather"), ("call_aqBer02", "get_air_quality")]
    out = []
    for index, (ident, name) in enumerate(calls):
        start = {"index": index, "id": ident, "type": "function", "function": {"name": name, "arguments": ""}}
        out.append(_chunk({"role": "assistant", "tool_calls": [start]}))
        out.append(_chunk({"tool_calls": [{"index": index, "function": {"arguments": '{"city": "Berlin"}'}}]}))
    return [*out, _chunk({}, "tool_calls"), _chunk({}, usage=_usage(286, 44, 0))]


def _answer() -> list[str]:
    words = ["Berlin: 14°C ", "with light rain. ", "The air-quality service is down."]
    return [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"content": w}) for w in words),
        _chunk({}, "stop"),
        _chunk({}, usage=_usage(402, 74, 256)),
    ]


def scripted_openai_app() -> Starlette:
    """``POST /chat/completions``: tool calls when the conversation has no tool result yet, else the answer."""

    async def completions(request: Request) -> Response:
        body = await request.json()
        answered = any(m.get("role") == "tool" for m in body.get("messages", []))
        chunks = _answer() if answered else _tool_calls()
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "the scripted model only streams"}}, status_code=400)

        async def stream() -> AsyncIterator[str]:
            for chunk in chunks:
                yield chunk
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/chat/completions", completions, methods=["POST"])])
