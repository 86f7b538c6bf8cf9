"""The core dialects' goldens (openintent, agent-event-stream) exist and pin what the issue asks for.

The trees themselves are compared whole by test_dialect_golden.py; here the
properties the core issue names are asserted on those trees, so that a
regenerated golden cannot silently lose them.
"""

from __future__ import annotations

from typing import Any

from tests.support.golden import FIXTURES, golden_tree


def _spans(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        out.append(node)
        for child in node.get("children", []):
            walk(child)

    for trace in doc["traces"]:
        for root in trace["spans"]:
            walk(root)
    return out


def test_openintent_adapter_stream_pairs_with_its_llm_call() -> None:
    doc = golden_tree(FIXTURES / "openintent" / "adapter-events.json")
    assert doc["dialect"] == "openintent"
    (trace,) = doc["traces"]
    (root,) = trace["spans"]
    assert root["name"] == "invoke_agent adapter-agent"
    streamed = next(s for s in _spans(doc) if s["attributes"].get("otel_bridge.stream.id"))
    assert streamed["kind"] == "CLIENT"
    assert streamed["attributes"]["gen_ai.request.stream"] is True
    # first logged chunk (04:17:18.991080) minus the call's start (04:17:18.963549)
    assert streamed["attributes"]["gen_ai.response.time_to_first_chunk"] == 0.027531
    failed = next(s for s in _spans(doc) if s["name"] == "chat fail-model")
    assert (failed["status"], failed["attributes"]["error.type"]) == ("ERROR", "RateLimitError")
    assert "gen_ai.response.model" not in failed["attributes"]
    # the adapter never logs tool completion: those spans end as incomplete errors
    tools = [s for s in _spans(doc) if s["name"] == "execute_tool search"]
    assert [t["attributes"]["error.type"] for t in tools] == ["incomplete", "incomplete"]


def test_openintent_sse_frames_and_event_log_give_the_same_spans() -> None:
    sse = golden_tree(FIXTURES / "openintent" / "intent-sse.sse")
    log = golden_tree(FIXTURES / "openintent" / "event-log.json")

    def key(s: dict[str, Any]) -> tuple[str, str, str]:
        return (s["name"], s["span_id"], s["status"])

    assert sorted(map(key, _spans(sse))) == sorted(map(key, _spans(log)))
    assert sse["traces"][0]["trace_id"] == log["traces"][0]["trace_id"]


def test_agent_event_stream_run_tools_and_inferred_generation() -> None:
    doc = golden_tree(FIXTURES / "agent-event-stream" / "weather.sse")
    assert doc["dialect"] == "agent-event-stream"
    spans = {s["name"]: s for s in _spans(doc)}
    # The chat span names no model; the run names it at its end, and the held chat span takes it.
    assert set(spans) == {
        "invoke_agent",
        "execute_tool get_weather",
        "execute_tool save_note",
        "chat claude-sonnet-4-5",
    }
    root = spans["invoke_agent"]
    assert root["attributes"]["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert root["attributes"]["otel_bridge.reported_cost_usd"] == 0.0123
    assert root["duration_ms"] >= 1834  # done.duration_ms widens the run
    assert spans["execute_tool get_weather"]["duration_ms"] == 120.0
    assert spans["execute_tool save_note"]["status"] == "ERROR"
    chat = spans["chat claude-sonnet-4-5"]
    assert chat["attributes"]["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert chat["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert chat["attributes"]["otel_bridge.inferred"] is True
    assert chat["attributes"]["otel_bridge.chunk_count"] == 3
    assert "gen_ai.response.time_to_first_chunk" not in chat["attributes"]
