"""LangGraph nested graphs: a subgraph is a nested agent span under the graph that ran it, in every mode.

The real captures (tests/fixtures/langgraph/langgraph-trip-planner-subgraph-*.sse, from
``langgraph dev`` with ``stream_subgraphs``) have golden trees; these tests pin what the
trees must show whatever the goldens say: the same tree in the ``events`` and the
``messages-tuple`` + ``updates`` modes, usage counted once, and the ends a subgraph can
have (an error, a parent frame in the ``messages`` mode alone, nesting two deep).
"""

from __future__ import annotations

import json
from typing import Any

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.config import Settings
from otel_bridge.dialects._langgraph_nesting import AgentChange, NestedGraphs
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame, parse_sse
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.model import SpanRecord, StatusCode
from otel_bridge.pipeline import ListSink
from tests.support.golden import FIXTURES

CAPTURES = FIXTURES / "langgraph"


def _spans(frames: list[Frame]) -> list[SpanRecord]:
    sink = ListSink()
    bridge = assemble(Settings(), extra_sinks=[sink], pricer=None).bridge
    decoder = StreamDecoder(StreamContext(source="test", stream_key="s"))
    events = decoder.feed(frames) + decoder.close()
    assert decoder.rejections == []
    bridge.submit(events)
    bridge.mapper.close_all(sc.CLOSE_END_OF_INPUT)
    return sink.spans


def _tree(spans: list[SpanRecord]) -> list[tuple[str, str | None]]:
    """Each span as (name, its parent's name), sorted: the shape of the tree without ids or times."""
    names = {s.span_id: s.name for s in spans}
    return sorted((s.name, names.get(s.parent_span_id) if s.parent_span_id else None) for s in spans)


def _parent(spans: list[SpanRecord], span: SpanRecord) -> str | None:
    """The name of a span's parent."""
    return next((s.name for s in spans if s.span_id == span.parent_span_id), None)


def _op(spans: list[SpanRecord], op: str) -> list[SpanRecord]:
    return [s for s in spans if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == op]


def test_both_modes_nest_the_subgraph_agent_under_the_root_graph_and_count_usage_once() -> None:
    trees = {}
    for mode in ("events", "messages"):
        spans = _spans(parse_sse((CAPTURES / f"langgraph-trip-planner-subgraph-{mode}.sse").read_text()))
        [root] = [s for s in spans if s.parent_span_id is None]
        [nested] = [s for s in _op(spans, sc.OP_INVOKE_AGENT) if s is not root]
        chats = _op(spans, sc.OP_CHAT)
        assert root.attributes[sc.GEN_AI_AGENT_NAME] == "trip_planner"  # the run is the root graph's
        assert nested.attributes[sc.GEN_AI_AGENT_NAME] == "city_conditions"
        assert nested.parent_span_id == root.span_id
        # The subgraph's two model calls and two tools under it; the report node's call under the root.
        assert sorted(str(_parent(spans, s)) for s in chats) == [
            "invoke_agent city_conditions",
            "invoke_agent city_conditions",
            "invoke_agent trip_planner",
        ]
        assert {_parent(spans, s) for s in _op(spans, sc.OP_EXECUTE_TOOL)} == {"invoke_agent city_conditions"}
        # 286 + 402 + 402 input tokens: each call once, though the parent's updates repeat the subgraph's.
        usage = [s.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for s in chats]
        assert sorted(usage, key=str) == [286, 402, 402]
        assert root.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 286 + 402 + 402
        assert nested.start_ns <= min(s.start_ns for s in chats if s.parent_span_id == nested.span_id)
        trees[mode] = _tree(spans)
    assert trees["events"] == trees["messages"]


def _event(event: str, name: str, run_id: str, parents: list[str], ns: str | None, **data: Any) -> Frame:
    metadata: dict[str, Any] = {"graph_id": "outer"}
    if ns is not None:
        metadata.update(langgraph_checkpoint_ns=ns, lc_agent_name=ns.split(":")[0] if "|" in ns else None)
    body = {"event": event, "name": name, "run_id": run_id, "parent_ids": parents, "metadata": metadata, "data": data}
    return Frame("events", json.dumps(body).encode())


def test_a_subgraph_that_fails_in_the_events_mode_fails_its_agent_span() -> None:
    frames = [
        _event("on_chain_start", "outer", "r0", [], None),
        _event("on_chat_model_start", "ChatOpenAI", "c1", ["r0", "n1"], "inner:1|model:2"),
        _event("on_chat_model_end", "ChatOpenAI", "c1", ["r0", "n1"], "inner:1|model:2", output={"content": "hi"}),
        _event("on_chain_error", "inner", "n1", ["r0"], "inner:1", error={"error": "ValueError", "message": "boom"}),
        _event("on_chain_end", "outer", "r0", [], None),
    ]
    spans = _spans(frames)
    [agent] = [s for s in _op(spans, sc.OP_INVOKE_AGENT) if s.parent_span_id is not None]
    [chat] = _op(spans, sc.OP_CHAT)
    assert (agent.name, agent.status_code, agent.status_message) == ("invoke_agent inner", StatusCode.ERROR, "boom")
    assert agent.attributes[sc.ERROR_TYPE] == "ValueError"
    assert chat.parent_span_id == agent.span_id


def _message(text: str, message_id: str, namespace: str) -> Frame:
    chunk = {"type": "AIMessageChunk", "id": message_id, "content": text, "chunk_position": "last"}
    metadata = {"langgraph_node": "model", "langgraph_checkpoint_ns": namespace, "graph_id": "outer"}
    return Frame("messages", json.dumps([chunk, metadata]).encode())


def test_nested_two_deep_in_the_messages_mode_alone_ends_when_the_parent_graph_speaks_again() -> None:
    frames = [
        Frame("metadata", b'{"run_id": "run-1", "attempt": 1}'),
        _message("deep", "m1", "a:1|b:2|model:3"),
        _message("top", "m2", "report:4"),
    ]
    spans = _spans(frames)
    chains = {s.attributes.get(sc.GEN_AI_AGENT_NAME): _parent(spans, s) for s in _op(spans, sc.OP_INVOKE_AGENT)}
    assert chains == {"outer": None, "a": "invoke_agent outer", "b": "invoke_agent a"}
    deep, top = sorted(_op(spans, sc.OP_CHAT), key=lambda s: s.start_ns)
    assert _parent(spans, deep) == "invoke_agent b"
    assert _parent(spans, top) == "invoke_agent outer"  # a and b ended when the root graph spoke


def test_nested_graphs_open_each_path_once_and_end_innermost_first() -> None:
    graphs = NestedGraphs()
    assert graphs.enter(("a:1", "b:2"), "agent_b") == [
        AgentChange(True, "a:1", "a", "a"),
        AgentChange(True, "a:1|b:2", "b", "agent_b"),
    ]
    assert graphs.enter(("a:1",), None) == []
    assert graphs.node_done((), "other") == []
    assert graphs.node_done((), "a") == [
        AgentChange(False, "a:1|b:2", "b", "agent_b"),
        AgentChange(False, "a:1", "a", "a"),
    ]
    assert graphs.enter(("a:1", "b:2"), None) == []  # a late frame of an ended subgraph opens no second span
    assert graphs.enter(("a:5",), None) == [AgentChange(True, "a:5", "a", "a")]  # the node ran it again
    assert graphs.leave("a:5") == [AgentChange(False, "a:5", "a", "a")]
    assert graphs.leave_all() == []
