"""`otel-bridge replay`: offline capture -> OTLP/JSON that opentelemetry-proto parses."""

from __future__ import annotations

import base64
import pathlib
import subprocess
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.golden import FIXTURES, load_expected
from tests.support.server import REPO

FILES = [
    FIXTURES / "openintent" / "intent-sse.sse",
    FIXTURES / "openintent" / "adapter-events.json",
    FIXTURES / "agent-event-stream" / "weather.sse",
]


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_bridge", "replay", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_replay_out_parses_into_an_export_request(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "trace.json"
    proc = replay(*map(str, FILES), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    request = json_format.Parse(out.read_text(), ExportTraceServiceRequest())
    spans = request.resource_spans[0].scope_spans[0].spans
    assert sorted(s.name for s in spans) == sorted(
        [
            "invoke_agent otel-probe-agent", "chat gpt-4o", "chat gpt-4o", "execute_tool search", "execute_tool fetch",
            "invoke_agent adapter-agent", "chat gpt-4o", "chat gpt-4o", "chat fail-model", "execute_tool search",
            "execute_tool search",
            "invoke_agent", "chat claude-sonnet-4-5", "execute_tool get_weather", "execute_tool save_note",
        ]
    )  # fmt: skip
    raw = out.read_text()
    assert '"startTimeUnixNano":"' in raw  # int64 as strings, camelCase, per the OTLP JSON mapping
    # Ids are hex in OTLP/JSON (json_format read them as base64), and the same as the golden trees'.
    hex_ids = {base64.b64encode(s.trace_id).decode() for s in spans}
    assert hex_ids == {trace["trace_id"] for f in FILES for trace in load_expected(f)["traces"]}
    assert "dialect=openintent" in proc.stderr
    assert "dialect=agent-event-stream" in proc.stderr


def test_replay_is_deterministic(tmp_path: pathlib.Path) -> None:
    outputs = []
    for i in range(2):
        out = tmp_path / f"t{i}.json"
        assert replay(str(FILES[2]), "--out", str(out)).returncode == 0
        request = json_format.Parse(out.read_text(), ExportTraceServiceRequest())
        outputs.append(sorted((s.trace_id, s.span_id, s.name) for s in request.resource_spans[0].scope_spans[0].spans))
    assert outputs[0] == outputs[1]


def test_replay_errors_are_clear(tmp_path: pathlib.Path) -> None:
    missing = replay(str(tmp_path / "nope.sse"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    bad = replay(str(FILES[0]), "--dialect", "klingon")
    assert bad.returncode == 2
    assert "unknown dialect 'klingon'" in bad.stderr
    no_endpoint = replay(str(FILES[0]), "--export")
    assert no_endpoint.returncode == 2
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in no_endpoint.stderr


def test_replay_prices_llm_calls_like_the_server(tmp_path: pathlib.Path) -> None:
    capture = tmp_path / "priced.ndjson"
    capture.write_text(
        '{"kind":"llm.completed","run_id":"p1","provider":"openai","model":"gpt-4o",'
        '"usage":{"input":1000000,"output":0},"timestamp":1800000000000000000}\n'
        '{"kind":"llm.completed","run_id":"p2","model":"no-such-model","usage":{"input":5},'
        '"timestamp":1800000000000000000}\n'
    )
    out = tmp_path / "priced.json"
    assert replay(str(capture), "--out", str(out)).returncode == 0
    request = json_format.Parse(out.read_text(), ExportTraceServiceRequest())
    costs = {
        s.name: {kv.key: kv.value.double_value for kv in s.attributes}.get("gen_ai.usage.cost")
        for s in request.resource_spans[0].scope_spans[0].spans
        if s.name.startswith("chat")
    }
    # The shipped table prices gpt-4o input at 2.50 per million tokens; an unknown model gets no cost, not 0.
    assert costs == {"chat gpt-4o": 2.50, "chat no-such-model": None}


def test_replay_salt_gives_new_trace_ids_and_keeps_the_tree(tmp_path: pathlib.Path) -> None:
    def spans(*extra: str) -> list[tuple[bytes, bytes, str, bytes]]:
        out = tmp_path / "t.json"
        assert replay(str(FILES[2]), "--out", str(out), *extra).returncode == 0
        request = json_format.Parse(out.read_text(), ExportTraceServiceRequest())
        return sorted(
            (s.trace_id, s.span_id, s.name, s.parent_span_id) for s in request.resource_spans[0].scope_spans[0].spans
        )

    plain, salted, again = spans(), spans("--salt", "retest-2"), spans("--salt", "retest-2")
    assert salted == again  # a salt is deterministic too
    assert {t for t, *_ in salted}.isdisjoint({t for t, *_ in plain})
    assert sorted(name for _, _, name, _ in salted) == sorted(name for _, _, name, _ in plain)
