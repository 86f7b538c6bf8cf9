"""The real AG-UI Python encoder and agent-event-stream's own FastAPI helper, served by uvicorn, ingested."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ag_ui.core import (
    EventType,
    ReasoningEndEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunErrorEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StateDeltaEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder
from agent_stream import AgentStreamEmitter
from agent_stream.fastapi import agent_stream_response
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from tests.support.producers import capture, ingest, outline, serve


def agui_app() -> FastAPI:
    app = FastAPI()
    events = [
        RunStartedEvent(thread_id="thread_1", run_id="run_agui_1"),
        StepStartedEvent(step_name="plan"),
        ReasoningStartEvent(message_id="r1"),
        ReasoningMessageStartEvent(message_id="r1", role="reasoning"),
        ReasoningMessageContentEvent(message_id="r1", delta="Need the weather."),
        ReasoningMessageEndEvent(message_id="r1"),
        ReasoningEndEvent(message_id="r1"),
        TextMessageStartEvent(message_id="m1", role="assistant"),
        TextMessageContentEvent(message_id="m1", delta="Let me "),
        TextMessageContentEvent(message_id="m1", delta="check."),
        TextMessageEndEvent(message_id="m1"),
        ToolCallStartEvent(tool_call_id="c1", tool_call_name="get_weather", parent_message_id="m1"),
        ToolCallArgsEvent(tool_call_id="c1", delta='{"city":"Lisbon"}'),
        ToolCallEndEvent(tool_call_id="c1"),
        ToolCallResultEvent(message_id="t1", tool_call_id="c1", content="18C"),
        StepFinishedEvent(step_name="plan"),
        StateDeltaEvent(delta=[{"op": "add", "path": "/weather", "value": "18C"}]),
        RunFinishedEvent(
            thread_id="thread_1",
            run_id="run_agui_1",
            usage=[TokenUsage(provider="openai", model="gpt-4o", input_tokens=120, output_tokens=30, total_tokens=150)],
        ),
        RunStartedEvent(thread_id="thread_1", run_id="run_agui_2"),
        RunErrorEvent(message="upstream timeout", code="TIMEOUT"),
    ]
    encoder = EventEncoder()

    @app.post("/agent")
    async def agent() -> StreamingResponse:
        async def frames() -> AsyncIterator[str]:
            for event in events:
                yield encoder.encode(event)

        return StreamingResponse(frames(), media_type=encoder.get_content_type())

    return app


async def test_agui_encoder_stream_becomes_two_runs() -> None:
    async with serve(agui_app()) as url:
        body = await capture(f"{url}/agent")
    assert body.startswith(b'data: {"type":"' + EventType.RUN_STARTED.value.encode())
    answer, traces = await ingest(body, capture_content=True)
    assert (answer["dialect"], answer["rejected"]) == ("ag-ui", 0)
    assert [r["run_id"] for r in answer["runs"]] == ["run_agui_1", "run_agui_2"]
    assert outline(traces) == [
        "invoke_agent [INTERNAL UNSET] gen_ai.conversation.id=thread_1 gen_ai.operation.name=invoke_agent"
        " gen_ai.provider.name=openai gen_ai.request.model=gpt-4o gen_ai.usage.input_tokens=120"
        " gen_ai.usage.output_tokens=30 otel_bridge.dialect=ag-ui otel_bridge.source=http",
        "  @state.changed otel_bridge.event.type=STATE_DELTA",
        "  step plan [INTERNAL UNSET] otel_bridge.dialect=ag-ui otel_bridge.step.name=plan",
        "    @thinking otel_bridge.event.type=REASONING_MESSAGE_END",
        # the run names its model only at its end (RUN_FINISHED usage): the chat span waited for it
        "    chat gpt-4o [CLIENT UNSET] gen_ai.operation.name=chat"
        ' gen_ai.output.messages=[{"role":"assistant","parts":[{"type":"text","content":"Let me check."}]}]'
        " gen_ai.provider.name=openai gen_ai.request.model=gpt-4o"
        " gen_ai.request.stream=True otel_bridge.call.id=m1 otel_bridge.chunk_count=2 otel_bridge.dialect=ag-ui"
        " otel_bridge.inferred=True",
        "    execute_tool get_weather [INTERNAL UNSET] -> chat gpt-4o gen_ai.operation.name=execute_tool"
        ' gen_ai.tool.call.arguments={"city":"Lisbon"} gen_ai.tool.call.id=c1 gen_ai.tool.call.result=18C'
        " gen_ai.tool.name=get_weather gen_ai.tool.type=function otel_bridge.dialect=ag-ui",
        "invoke_agent [INTERNAL ERROR] error.type=TIMEOUT gen_ai.conversation.id=thread_1"
        " gen_ai.operation.name=invoke_agent otel_bridge.dialect=ag-ui otel_bridge.source=http",
    ]


def aes_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/chat")
    async def chat() -> StreamingResponse:
        async def generate() -> AsyncIterator[str]:
            emitter = AgentStreamEmitter()
            yield emitter.thinking("User wants the weather.")
            yield emitter.tool_use("get_weather", "tu_1", "city=Lisbon")
            yield emitter.tool_result("get_weather", "tu_1", "18C", 120)
            yield emitter.token("It is ")
            yield emitter.token("18C.")
            yield emitter.done(message_id="msg_1", num_turns=1, tool_count=1)

        return agent_stream_response(generate())

    return app


async def test_agent_event_stream_fastapi_helper_stream_becomes_a_run() -> None:
    async with serve(aes_app()) as url:
        body = await capture(f"{url}/api/chat")
    answer, traces = await ingest(body, run_id="aes-run-1")
    assert (answer["dialect"], answer["rejected"], answer["runs"][0]["run_id"]) == (
        "agent-event-stream",
        0,
        "aes-run-1",
    )
    assert outline(traces) == [
        # The helper's done() reports a cost of 0.0 unless told otherwise.
        "invoke_agent [INTERNAL UNSET] gen_ai.operation.name=invoke_agent otel_bridge.dialect=agent-event-stream"
        " otel_bridge.reported_cost_usd=0.0 otel_bridge.source=http",
        "  @thinking otel_bridge.event.type=thinking",
        "  execute_tool get_weather [INTERNAL UNSET] gen_ai.operation.name=execute_tool gen_ai.tool.call.id=tu_1"
        " gen_ai.tool.name=get_weather gen_ai.tool.type=function otel_bridge.dialect=agent-event-stream",
        "  chat [CLIENT UNSET] gen_ai.operation.name=chat gen_ai.request.stream=True otel_bridge.call.id=generation-1"
        " otel_bridge.chunk_count=2 otel_bridge.dialect=agent-event-stream otel_bridge.inferred=True",
    ]
