"""Raw LLM streams built from the provider SDKs' own types, served locally, read back by the SDK clients, ingested.

Each payload is validated by the SDK's pydantic model, served as SSE by uvicorn,
consumed by the SDK's own streaming client (so the wire form is one the SDK
accepts), then the same bytes are POSTed to the bridge: one run holding one
``chat {model}`` span.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import msgspec
import openai
from anthropic.types import RawMessageStreamEvent
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from otel_bridge.dialects.framing import parse_sse
from tests.support.golden import FIXTURES
from tests.support.producers import capture, ingest, outline, serve


def sse_app(path: str, events: list[BaseModel], *, named: bool, done: bool) -> FastAPI:
    """Serve ``events`` as the provider does: ``event: <type>`` when ``named``, ``data: [DONE]`` when ``done``."""
    app = FastAPI()

    @app.post(path)
    async def stream() -> StreamingResponse:
        async def frames() -> AsyncIterator[str]:
            for event in events:
                name = f"event: {event.type}\n" if named else ""
                yield f"{name}data: {event.model_dump_json(exclude_unset=True)}\n\n"
            if done:
                yield "data: [DONE]\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")

    return app


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, Any] | None = None) -> BaseModel:
    body: dict[str, Any] = {
        "id": "chatcmpl-P1",
        "object": "chat.completion.chunk",
        "created": 1763700000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return ChatCompletionChunk.model_validate(body)


CHAT_CHUNKS = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Checking"}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather"}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Lisbon"}'}}]}),
    _chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time"}}]}),
    _chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
    _chunk({}, finish="tool_calls"),
    _chunk(
        None,
        usage={
            "prompt_tokens": 900,
            "completion_tokens": 40,
            "total_tokens": 940,
            "prompt_tokens_details": {"cached_tokens": 512},
            "completion_tokens_details": {"reasoning_tokens": 16},
        },
    ),
]


async def test_openai_chat_stream_becomes_one_chat_span() -> None:
    async with serve(sse_app("/v1/chat/completions", CHAT_CHUNKS, named=False, done=True)) as url:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            received = [chunk async for chunk in stream]
        body = await capture(f"{url}/v1/chat/completions", json={})
    assert [c.id for c in received] == ["chatcmpl-P1"] * len(CHAT_CHUNKS)
    assert received[-1].usage is not None
    assert received[-1].usage.prompt_tokens == 900
    answer, traces = await ingest(body, capture_content=True)
    assert (answer["dialect"], answer["rejected"]) == ("openai-chat", 0)
    assert outline(traces) == [
        "invoke_agent [INTERNAL UNSET] gen_ai.operation.name=invoke_agent gen_ai.provider.name=openai"
        " gen_ai.usage.cache_read.input_tokens=512 gen_ai.usage.input_tokens=900 gen_ai.usage.output_tokens=40"
        " gen_ai.usage.reasoning.output_tokens=16 otel_bridge.dialect=openai-chat otel_bridge.source=http",
        "  chat gpt-4o-mini-2024-07-18 [CLIENT UNSET] gen_ai.operation.name=chat"
        ' gen_ai.output.messages=[{"role":"assistant","parts":[{"type":"text","content":"Checking"},'
        '{"type":"tool_call","id":"call_1","name":"get_weather","arguments":{"city":"Lisbon"}},'
        '{"type":"tool_call","id":"call_2","name":"get_time","arguments":{}}],"finish_reason":"tool_calls"}]'
        " gen_ai.provider.name=openai gen_ai.request.stream=True gen_ai.response.finish_reasons=['tool_calls']"
        " gen_ai.response.id=chatcmpl-P1"
        " gen_ai.response.model=gpt-4o-mini-2024-07-18 gen_ai.usage.cache_read.input_tokens=512"
        " gen_ai.usage.input_tokens=900 gen_ai.usage.output_tokens=40 gen_ai.usage.reasoning.output_tokens=16"
        " otel_bridge.call.id=chatcmpl-P1 otel_bridge.chunk_count=5 otel_bridge.dialect=openai-chat",
        '    @tool.requested gen_ai.tool.call.arguments={"city":"Lisbon"} gen_ai.tool.call.id=call_1'
        " gen_ai.tool.name=get_weather otel_bridge.event.type=tool_calls",
        "    @tool.requested gen_ai.tool.call.arguments={} gen_ai.tool.call.id=call_2 gen_ai.tool.name=get_time"
        " otel_bridge.event.type=tool_calls",
    ]
    chat = traces[0]["spans"][0]["children"][0]
    assert chat["attributes"]["gen_ai.response.time_to_first_chunk"] > 0


def _fixture_events(path: Path, adapter: TypeAdapter[Any]) -> list[BaseModel]:
    """A captured stream's payloads, each validated by the SDK's event union."""
    payloads = [msgspec.json.decode(f.data) for f in parse_sse(path.read_text())]
    # Anthropic's ping heartbeat is not a message event: the SDK's union has no type for it.
    return [adapter.validate_python(p) for p in payloads if p.get("type") != "ping"]


async def test_openai_responses_stream_becomes_one_chat_span() -> None:
    events = _fixture_events(FIXTURES / "openai-responses" / "tool-call.sse", TypeAdapter(ResponseStreamEvent))
    async with serve(sse_app("/v1/responses", events, named=True, done=False)) as url:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0) as client:
            stream = await client.responses.create(model="gpt-4.1", input="hi", stream=True)
            received = [event async for event in stream]
        body = await capture(f"{url}/v1/responses", json={})
    assert [e.type for e in received] == [e.type for e in events]
    answer, traces = await ingest(body)
    assert (answer["dialect"], answer["rejected"]) == ("openai-responses", 0)
    assert outline(traces) == [
        "invoke_agent [INTERNAL UNSET] gen_ai.operation.name=invoke_agent gen_ai.provider.name=openai"
        " gen_ai.usage.cache_creation.input_tokens=0 gen_ai.usage.cache_read.input_tokens=0"
        " gen_ai.usage.input_tokens=75 gen_ai.usage.output_tokens=23 gen_ai.usage.reasoning.output_tokens=0"
        " otel_bridge.dialect=openai-responses otel_bridge.source=http",
        "  chat gpt-4.1-2025-04-14 [CLIENT UNSET] gen_ai.operation.name=chat gen_ai.provider.name=openai"
        " gen_ai.request.stream=True gen_ai.request.temperature=1.0 gen_ai.request.top_p=1.0"
        " gen_ai.response.finish_reasons=['tool_calls'] gen_ai.response.id=resp_68a1"
        " gen_ai.response.model=gpt-4.1-2025-04-14 gen_ai.usage.cache_creation.input_tokens=0"
        " gen_ai.usage.cache_read.input_tokens=0 gen_ai.usage.input_tokens=75 gen_ai.usage.output_tokens=23"
        " gen_ai.usage.reasoning.output_tokens=0 otel_bridge.call.id=resp_68a1 otel_bridge.chunk_count=4"
        " otel_bridge.dialect=openai-responses",
        "    @tool.requested gen_ai.tool.call.id=call_Ab9 gen_ai.tool.name=get_weather"
        " otel_bridge.event.type=response.output_item.done",
    ]


async def test_anthropic_stream_becomes_one_chat_span() -> None:
    events = _fixture_events(FIXTURES / "anthropic" / "tool-use.sse", TypeAdapter(RawMessageStreamEvent))
    assert len(events) == 15
    async with serve(sse_app("/v1/messages", events, named=True, done=False)) as url:
        async with anthropic.AsyncAnthropic(base_url=url, api_key="test", max_retries=0) as client:
            stream = await client.messages.create(
                model="claude-sonnet-5", max_tokens=256, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            received = [event async for event in stream]
        body = await capture(f"{url}/v1/messages", json={})
    assert [e.type for e in received] == [e.type for e in events]
    answer, traces = await ingest(body)
    assert (answer["dialect"], answer["rejected"]) == ("anthropic", 0)
    assert outline(traces) == [
        "invoke_agent [INTERNAL UNSET] gen_ai.operation.name=invoke_agent gen_ai.provider.name=anthropic"
        " gen_ai.usage.cache_creation.input_tokens=0 gen_ai.usage.cache_read.input_tokens=0"
        " gen_ai.usage.input_tokens=472 gen_ai.usage.output_tokens=89 otel_bridge.dialect=anthropic"
        " otel_bridge.source=http",
        "  chat claude-sonnet-4-5-20250929 [CLIENT UNSET] gen_ai.operation.name=chat"
        " gen_ai.provider.name=anthropic gen_ai.request.stream=True gen_ai.response.finish_reasons=['tool_use']"
        " gen_ai.response.id=msg_01XFDUDYJgAACzvnptvVoYEL gen_ai.response.model=claude-sonnet-4-5-20250929"
        " gen_ai.usage.cache_creation.input_tokens=0 gen_ai.usage.cache_read.input_tokens=0"
        " gen_ai.usage.input_tokens=472 gen_ai.usage.output_tokens=89 otel_bridge.call.id=msg_01XFDUDYJgAACzvnptvVoYEL"
        " otel_bridge.chunk_count=4 otel_bridge.dialect=anthropic",
        "    @tool.requested gen_ai.tool.call.id=toolu_01T1x1fJ34qAmk2tNTrN7Up6 gen_ai.tool.name=get_weather"
        " otel_bridge.event.type=content_block_stop",
    ]
