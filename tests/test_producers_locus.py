"""A real Locus agent (locus-sdk, its scripted test model) served over SSE, ingested by the real bridge.

Two wire forms of the same run: the SDK's ``SSEHandler`` frames (with ids and
timestamps) and its ``AgentServer`` ``/stream`` (data-only, usage dropped from
the end). Both must give the same span tree, less what the second drops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from locus import tool
from locus.agent import Agent
from locus.server import AgentServer
from locus.streaming.sse import SSEHandler
from locus.testing import ScriptedModel, text, tool_call

from tests.support.producers import capture, ingest, outline, serve


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18C and raining in {city}"


def weather_agent() -> Agent:
    model = ScriptedModel([tool_call("get_weather", city="Lisbon"), text("It is 18C and raining in Lisbon.")])
    return Agent(model=model, tools=[get_weather])


def sse_handler_app() -> FastAPI:
    """The SDK's documented SSE pattern: every agent event through an SSEHandler, as it happens."""
    app = FastAPI()

    @app.post("/run")
    async def run() -> StreamingResponse:
        async def frames() -> AsyncIterator[str]:
            handler = SSEHandler()
            try:
                async for event in weather_agent().run("Weather in Lisbon?", stream_tokens=True):
                    await handler.on_event(event)
                    for message in handler.pop_messages():
                        yield message.format()
            except Exception as exc:
                await handler.on_error(exc)
            else:
                await handler.on_complete()
            for message in handler.pop_messages():
                yield message.format()

        return StreamingResponse(frames(), media_type="text/event-stream")

    return app


def expected(dialect: str, *, handler_done: bool) -> list[str]:
    """The run: a model call asking for the tool, the tool (linked to it), a model call answering."""
    return [
        "invoke_agent [INTERNAL UNSET] gen_ai.operation.name=invoke_agent gen_ai.usage.input_tokens=20"
        f" gen_ai.usage.output_tokens=40 otel_bridge.dialect={dialect} otel_bridge.source=http"
        " otel_bridge.status=complete",
        "  @thinking otel_bridge.event.type=think",
        "  @thinking otel_bridge.event.type=think",
        *(
            ["  @done otel_bridge.event.type=done otel_bridge.status=complete otel_bridge.step.name=done"]
            * handler_done
        ),
        "  chat [CLIENT UNSET] gen_ai.operation.name=chat gen_ai.request.stream=True"
        " gen_ai.response.finish_reasons=['tool_calls'] gen_ai.usage.input_tokens=10 gen_ai.usage.output_tokens=20"
        f" otel_bridge.call.id=model-1 otel_bridge.dialect={dialect} otel_bridge.inferred=True",
        "    @tool.requested gen_ai.tool.call.id=call_get_weather gen_ai.tool.name=get_weather"
        " otel_bridge.event.type=model_chunk",
        "  execute_tool get_weather [INTERNAL UNSET] -> chat gen_ai.operation.name=execute_tool"
        " gen_ai.tool.call.id=call_get_weather gen_ai.tool.name=get_weather gen_ai.tool.type=function"
        f" otel_bridge.dialect={dialect}",
        "  chat [CLIENT UNSET] gen_ai.operation.name=chat gen_ai.request.stream=True"
        " gen_ai.response.finish_reasons=['end_turn'] gen_ai.usage.input_tokens=10 gen_ai.usage.output_tokens=20"
        f" otel_bridge.call.id=model-2 otel_bridge.chunk_count=3 otel_bridge.dialect={dialect}"
        " otel_bridge.inferred=True",
    ]


async def test_locus_sse_handler_stream_becomes_the_agent_trace() -> None:
    async with serve(sse_handler_app()) as url:
        body = await capture(f"{url}/run")
    assert b"id: 1\n" in body  # the SDK's own framing: counter ids...
    assert b"event: done" in body  # ...and the handler's closing frame
    answer, traces = await ingest(body)
    assert (answer["dialect"], answer["rejected"], len(traces)) == ("locus", 0, 1)
    assert outline(traces) == expected("locus", handler_done=True)


async def test_locus_agentserver_stream_becomes_the_agent_trace() -> None:
    server = AgentServer(agent=weather_agent(), allow_unauthenticated=True)
    async with serve(server.app) as url:
        body = await capture(f"{url}/stream", json={"prompt": "Weather in Lisbon?"})
    assert body.rstrip().endswith(b"data: [DONE]")
    answer, traces = await ingest(body)
    assert (answer["dialect"], answer["rejected"], len(traces)) == ("locus-agentserver", 0, 1)
    assert outline(traces) == expected("locus-agentserver", handler_done=False)
