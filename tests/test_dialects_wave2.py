"""A2A, ADK, Vercel AI SDK and LangGraph: what their golden captures do not show.

The golden trees (test_dialect_golden.py) pin each capture whole; these pin the
protocol rules the samples do not exercise: a resubscription joining its run,
the other wire variants, errors, and detection from a response header.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, Settings, SourceSettings, StoreSettings
from otel_bridge.dialects import registry
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame, sniff_text_frames
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.model import AgentEvent, EventKind, SpanRecord, StatusCode
from otel_bridge.pipeline import ListSink
from otel_bridge.sources.replay import replay_files
from otel_bridge.sources.upstream import UpstreamSource
from tests.support.golden import FIXTURES, fixed_clock_ns
from tests.support.sse_server import ThreadedServer
from tests.test_upstream_sources import eventually


def _decode(dialect: str, frames: list[tuple[str | None, Any]]) -> list[AgentEvent]:
    counter = itertools.count()
    ctx = StreamContext(source="test", stream_key="k", clock_ns=lambda: 1_800_000_000_000_000_000 + next(counter))
    decoder = StreamDecoder(ctx, registry.get(dialect))
    events = decoder.feed(Frame(name, msgspec.json.encode(obj)) for name, obj in frames) + decoder.close()
    assert decoder.rejections == []
    return events


def _spans(events: list[AgentEvent]) -> list[SpanRecord]:
    sink = ListSink()
    settings = Settings(store=StoreSettings(enabled=False), mapping=MappingSettings())
    bridge = assemble(settings, clock=lambda: 0.0, extra_sinks=[sink], pricer=None).bridge
    bridge.submit(events)
    bridge.close_all(sc.CLOSE_END_OF_INPUT)
    return sink.spans


def _replay(*names: str) -> list[SpanRecord]:
    sink = ListSink()
    settings = Settings(store=StoreSettings(enabled=False), mapping=MappingSettings())
    bridge = assemble(settings, clock=lambda: 0.0, extra_sinks=[sink], pricer=None).bridge
    replay_files(bridge, [FIXTURES / name for name in names], clock_ns=fixed_clock_ns())
    return sink.spans


# -- a2a -----------------------------------------------------------------------------


def test_a2a_resubscription_joins_the_run_of_its_task_and_maps_repeated_updates_once() -> None:
    alone = _replay("a2a/a2a-shipment-tracker-1-send.sse")
    both = _replay("a2a/a2a-shipment-tracker-1-send.sse", "a2a/a2a-shipment-tracker-2-subscribe.sse")
    assert len({s.trace_id for s in both}) == 1
    names = sorted(s.name for s in both)
    # The second stream is one more span (its method) under the same root; its repeated updates add nothing.
    assert names == sorted([*(s.name for s in alone), sc.A2A_METHOD_SUBSCRIBE])
    [subscribe] = [s for s in both if s.name == sc.A2A_METHOD_SUBSCRIBE]
    [root] = [s for s in both if s.parent_span_id is None]
    assert subscribe.parent_span_id == root.span_id
    assert root.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 512 + 1348


def test_generic_does_not_take_a_json_rpc_id_for_an_event_id() -> None:
    frame = {"jsonrpc": "2.0", "id": "req-1", "result": {"value": 1}}
    events = _decode("generic", [(None, frame), (None, frame)])
    assert [e.event_id for e in events] == [None, None]
    assert len(_spans(events)[0].events) == 2  # both frames kept, none dropped as a duplicate
    plain = _decode("generic", [(None, {"id": "e-1", "type": "tick"})])
    assert plain[0].event_id == "e-1"


def _v03(result: dict[str, Any]) -> tuple[None, dict[str, Any]]:
    return None, {"jsonrpc": "2.0", "id": 7, "result": result}


def test_a2a_v03_failed_task_fails_the_run_and_its_open_tool_with_the_adk_error_code() -> None:
    call = {
        "kind": "data",
        "data": {"id": "c1", "name": "lookup", "args": {}},
        "metadata": {"adk_type": "function_call"},
    }
    events = _decode(
        "a2a",
        [
            _v03({"kind": "task", "id": "t1", "contextId": "ctx", "status": {"state": "submitted"}}),
            _v03(
                {
                    "kind": "status-update",
                    "taskId": "t1",
                    "contextId": "ctx",
                    "final": False,
                    "status": {
                        "state": "working",
                        "message": {"kind": "message", "messageId": "m1", "role": "agent", "parts": [call]},
                    },
                }
            ),
            _v03(
                {
                    "kind": "status-update",
                    "taskId": "t1",
                    "contextId": "ctx",
                    "final": False,
                    "metadata": {"adk_error_code": "TimeoutError"},
                    "status": {
                        "state": "working",
                        "message": {"kind": "message", "messageId": "m2", "role": "agent", "parts": []},
                    },
                }
            ),
            _v03(
                {
                    "kind": "status-update",
                    "taskId": "t1",
                    "contextId": "ctx",
                    "final": True,
                    "status": {"state": "failed"},
                }
            ),
        ],
    )
    spans = {s.name: s for s in _spans(events)}
    assert spans["execute_tool lookup"].status_code is StatusCode.ERROR
    assert spans["execute_tool lookup"].attributes[sc.ERROR_TYPE] == "TimeoutError"
    assert spans["invoke_agent"].status_code is StatusCode.ERROR
    assert spans["invoke_agent"].attributes[sc.ERROR_TYPE] == "TimeoutError"
    assert spans[sc.A2A_METHOD_STREAM_V03].attributes[sc.A2A_TASK_STATE] == "failed"


def test_a2a_error_frame_fails_the_task_of_its_stream_and_input_required_keeps_the_run_open() -> None:
    snapshot = {"task": {"id": "t2", "contextId": "c", "status": {"state": "TASK_STATE_SUBMITTED"}}}
    paused = {"statusUpdate": {"taskId": "t2", "contextId": "c", "status": {"state": "TASK_STATE_INPUT_REQUIRED"}}}
    events = _decode(
        "a2a",
        [
            (None, {"jsonrpc": "2.0", "id": 1, "result": snapshot}),
            (None, {"jsonrpc": "2.0", "id": 1, "result": paused}),
        ],
    )
    assert [e.kind for e in events][-1] is EventKind.STEP_FINISHED  # the task waits: no run end
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "internal error"}}
    events = _decode("a2a", [(None, {"jsonrpc": "2.0", "id": 1, "result": snapshot}), ("error", error)])
    failed = [e for e in events if e.kind is EventKind.RUN_FAILED]
    assert [(e.run_id, e.error, e.error_type) for e in failed] == [("t2", "internal error", "-32603")]


def test_a2a_does_not_claim_an_mcp_result() -> None:
    mcp = {"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": "ok"}], "isError": False}}
    tools = {"jsonrpc": "2.0", "id": 4, "result": {"tools": []}}
    assert not registry.get("a2a").sniff(Frame(None, b"{}"), mcp)
    assert not registry.get("a2a").sniff(Frame(None, b"{}"), tools)


# -- adk -----------------------------------------------------------------------------


def _adk(author: str, ts: float, **rest: Any) -> tuple[None, dict[str, Any]]:
    return None, {"invocationId": "inv-1", "author": author, "timestamp": ts, "id": f"{author}-{ts}", **rest}


def test_adk_without_node_paths_nests_a_transferred_to_agent_under_the_agent_that_transferred() -> None:
    call = {"functionCall": {"id": "tr", "name": "transfer_to_agent", "args": {"agent_name": "b"}}}
    back = {"functionCall": {"id": "tr2", "name": "transfer_to_agent", "args": {"agent_name": "a"}}}
    events = _decode(
        "adk",
        [
            _adk("root", 1.0, content={"role": "model", "parts": [call]}, modelVersion="m"),
            _adk(
                "root",
                1.1,
                content={
                    "role": "user",
                    "parts": [{"functionResponse": {"id": "tr", "name": "transfer_to_agent", "response": {}}}],
                },
                actions={"transferToAgent": "b"},
            ),
            _adk("b", 1.2, content={"role": "model", "parts": [back]}, modelVersion="m"),
            _adk(
                "b",
                1.3,
                content={
                    "role": "user",
                    "parts": [{"functionResponse": {"id": "tr2", "name": "transfer_to_agent", "response": {}}}],
                },
                actions={"transferToAgent": "a"},
            ),
            _adk("a", 1.4, content={"role": "model", "parts": [{"text": "done"}]}, modelVersion="m"),
            _adk("root", 1.5, content={"role": "model", "parts": [{"text": "bye"}]}, modelVersion="m"),
        ],
    )
    spans = {s.name: s for s in _spans(events)}
    assert spans["invoke_agent b"].parent_span_id == spans["invoke_agent root"].span_id
    assert spans["invoke_agent a"].parent_span_id == spans["invoke_agent b"].span_id
    # The root speaking again closed the sub-agents: its last answer is its own.
    last = max((s for s in spans.values() if s.name == "chat m"), key=lambda s: s.start_ns)
    assert last.parent_span_id == spans["invoke_agent root"].span_id


def test_adk_partial_events_are_chunks_and_only_the_final_event_ends_the_call() -> None:
    text = {"role": "model", "parts": [{"text": "he"}]}
    events = _decode(
        "adk",
        [
            _adk("a", 1.0, content=text, partial=True, modelVersion="gemini-2.5-flash", id="e1"),
            _adk("a", 1.1, content=text, partial=True, modelVersion="gemini-2.5-flash", id="e1"),
            _adk(
                "a",
                1.2,
                content={"role": "model", "parts": [{"text": "hehe"}]},
                modelVersion="gemini-2.5-flash",
                id="e1",
                usageMetadata={"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 3},
            ),
        ],
    )
    kinds = [e.kind for e in events if e.call_id == "e1"]
    assert kinds == [EventKind.LLM_STARTED, EventKind.LLM_CHUNK, EventKind.LLM_CHUNK, EventKind.LLM_COMPLETED]
    [chat] = [s for s in _spans(events) if s.name.startswith("chat")]
    assert chat.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 5  # thoughts are inside the output
    assert chat.attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    assert chat.attributes[sc.BRIDGE_CHUNK_COUNT] == 2


# -- vercel-ai ---------------------------------------------------------------------


def test_vercel_ai_abort_ends_the_run_and_fails_the_open_step() -> None:
    events = _decode(
        "vercel-ai",
        [
            (None, {"type": "start"}),
            (None, {"type": "start-step"}),
            (None, {"type": "text-delta", "id": "t", "delta": "x"}),
            (None, {"type": "abort"}),
        ],
    )
    spans = {s.name: s for s in _spans(events)}
    assert spans["chat"].status_code is StatusCode.ERROR
    assert spans["chat"].attributes[sc.ERROR_TYPE] == "aborted"
    assert spans["invoke_agent"].attributes[sc.BRIDGE_STATUS] == "aborted"


def test_vercel_ai_a_run_total_stays_on_the_run() -> None:
    usage = {"inputTokens": 10, "outputTokens": 4}
    events = _decode(
        "vercel-ai",
        [
            (None, {"type": "start"}),
            (None, {"type": "start-step"}),
            (None, {"type": "finish-step"}),
            (None, {"type": "start-step"}),
            (None, {"type": "finish-step"}),
            (None, {"type": "finish", "messageMetadata": {"totalUsage": usage}}),
        ],
    )
    spans = _spans(events)
    assert all(sc.GEN_AI_USAGE_INPUT_TOKENS not in s.attributes for s in spans if s.name == "chat")
    [root] = [s for s in spans if s.parent_span_id is None]
    assert (root.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS], root.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (10, 4)


async def test_vercel_ai_is_detected_from_its_response_header_before_any_frame_claims_it() -> None:
    """``start`` and ``finish`` alone claim nothing; the header names the protocol."""

    def app(header: bool) -> Starlette:
        async def stream(_: Any) -> StreamingResponse:
            async def body() -> Any:
                yield b'data: {"type":"start","messageId":"m1"}\n\n'
                yield b'data: {"type":"finish"}\n\ndata: [DONE]\n\n'
                await asyncio.sleep(30)

            headers = {"x-vercel-ai-ui-message-stream": "v1"} if header else {}
            return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

        return Starlette(routes=[Route("/chat", stream)])

    for header, dialect in ((True, "vercel-ai"), (False, "generic")):
        server = ThreadedServer(app(header))
        bridge = assemble(Settings(), pricer=None).bridge
        seen: list[AgentEvent] = []
        bridge.add_observer(lambda events, _, seen=seen: seen.extend(events))
        source = UpstreamSource(bridge, SourceSettings(name="ui", url=server.url + "/chat"), None)
        task = asyncio.create_task(source.run())
        try:
            await eventually(lambda seen=seen: len(seen) >= 2, within=5, what="the stream's events")
            assert {e.dialect for e in seen} == {dialect}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            server.stop()
    assert [e.kind for e in seen] == [EventKind.CUSTOM, EventKind.CUSTOM]  # generic: kept, not understood


# -- langgraph -----------------------------------------------------------------------


def _lg(event: str, run_id: str, name: str, parents: list[str], **data: Any) -> tuple[str, dict[str, Any]]:
    metadata = {"ls_model_name": "claude-haiku-4-5", "ls_provider": "anthropic", "langgraph_node": "n"}
    return "events", {
        "event": event,
        "run_id": run_id,
        "name": name,
        "parent_ids": parents,
        "metadata": metadata,
        "data": data,
    }


def test_langgraph_events_tool_spans_take_the_models_call_ids_and_usage_is_counted_once() -> None:
    usage = {"input_tokens": 10, "output_tokens": 3}
    ai = {
        "type": "ai",
        "content": "",
        "usage_metadata": usage,
        "tool_calls": [
            {"id": "call_1", "name": "add", "args": {"a": 1}},
            {"id": "call_2", "name": "add", "args": {"a": 2}},
        ],
    }
    events = _decode(
        "langgraph",
        [
            _lg("on_chain_start", "root", "graph", []),
            _lg("on_chat_model_start", "llm", "Chat", ["root"]),
            _lg("on_chat_model_stream", "llm", "Chat", ["root"], chunk={"content": "", "usage_metadata": usage}),
            _lg("on_chat_model_end", "llm", "Chat", ["root"], output=ai),
            _lg("on_tool_start", "t2", "add", ["root"], input={"a": 2}),
            _lg("on_tool_start", "t1", "add", ["root"], input={"a": 1}),
            _lg("on_tool_end", "t1", "add", ["root"], output={"type": "tool", "content": "2", "status": "success"}),
            _lg("on_tool_end", "t2", "add", ["root"], output={"type": "tool", "content": "no", "status": "error"}),
            _lg("on_chain_end", "root", "graph", []),
        ],
    )
    spans = _spans(events)
    tools = {s.attributes[sc.GEN_AI_TOOL_CALL_ID]: s for s in spans if s.name == "execute_tool add"}
    assert (tools["call_1"].status_code, tools["call_2"].status_code) == (StatusCode.UNSET, StatusCode.ERROR)
    [root] = [s for s in spans if s.parent_span_id is None]
    assert (root.name, root.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS]) == ("invoke_agent graph", 10)
    [chat] = [s for s in spans if s.name.startswith("chat")]
    assert chat.attributes[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert all(s.parent_span_id == root.span_id for s in spans if s is not root)  # node chains open no span


def test_langgraph_updates_mode_alone_makes_a_chat_span_and_its_tools() -> None:
    ai = {
        "type": "ai",
        "id": "m1",
        "content": "",
        "usage_metadata": {"input_tokens": 4, "output_tokens": 1},
        "response_metadata": {"model_name": "gpt-4.1-mini", "finish_reason": "tool_calls"},
        "tool_calls": [{"id": "c1", "name": "lookup", "args": {}}],
    }
    tool = {"type": "tool", "tool_call_id": "c1", "name": "lookup", "content": "ok", "status": "success"}
    events = _decode(
        "langgraph",
        [
            ("metadata", {"run_id": "r1", "attempt": 1}),
            ("updates", {"model": {"messages": [ai]}}),
            ("updates", {"tools": {"messages": [tool]}}),
        ],
    )
    names = sorted(s.name for s in _spans(events))
    assert names == ["chat gpt-4.1-mini", "execute_tool lookup", "invoke_agent"]


def test_a_resubscription_after_its_task_finished_continues_the_trace_with_new_span_ids() -> None:
    """The run had ended and its grace passed: the repeated updates become a continuation, never reused ids."""
    now = [0.0]
    sink = ListSink()
    settings = Settings(store=StoreSettings(enabled=False), mapping=MappingSettings())
    pipeline = assemble(settings, clock=lambda: now[0], extra_sinks=[sink], pricer=None)
    for name in ("a2a-v03-shipment-tracker-1-stream.sse", "a2a-v03-shipment-tracker-2-resubscribe.sse"):
        decoder = StreamDecoder(StreamContext(source="test", stream_key=name, clock_ns=fixed_clock_ns()))
        text = (FIXTURES / "a2a" / name).read_text()
        pipeline.bridge.submit(decoder.feed(sniff_text_frames(text)) + decoder.close())
        now[0] += 3600.0
        pipeline.mapper.sweep()
    pipeline.bridge.close_all(sc.CLOSE_END_OF_INPUT)
    ids = [s.span_id for s in sink.spans]
    assert len(ids) == len(set(ids))
    assert len({s.trace_id for s in sink.spans}) == 1
    assert sum(s.name == sc.A2A_METHOD_RESUBSCRIBE_V03 for s in sink.spans) == 1
