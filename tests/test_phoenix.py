"""A real Arize Phoenix reads the OpenInference output: kinds, models, tokens, cost, messages, tool parameters.

Fixture streams of four dialects (OpenAI chat, Anthropic, Locus, AG-UI) go through a real
bridge with ``semconv.openinference`` on and content captured, exported over OTLP/HTTP to a
real Phoenix (``scripts/install-tools.sh`` installs it in its own virtualenv), and are read
back through Phoenix's REST and GraphQL APIs. One screenshot of Phoenix's trace view, taken
by headless Chromium, is kept in the test's tmp dir as an artefact (never compared).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, OtlpSettings, SemconvSettings, Settings, StoreSettings
from otel_bridge.model import SpanRecord
from otel_bridge.pipeline import ListSink
from otel_bridge.sources.replay import replay_files
from tests.support.golden import FIXTURES
from tests.support.phoenix import Phoenix, phoenix_python

PYTHON = phoenix_python()
pytestmark = pytest.mark.skipif(
    PYTHON is None, reason="arize-phoenix is not installed under .tools (scripts/install-tools.sh installs it)"
)
PROJECT = "otel-bridge-phoenix-test"
CAPTURES = {
    "openai-chat": FIXTURES / "openai-chat" / "tool-call-content.sse",
    "anthropic": FIXTURES / "anthropic" / "tool-use-content.sse",
    "locus": FIXTURES / "locus" / "subagent.sse",
    "ag-ui": FIXTURES / "ag-ui" / "python-encoder.sse",
}
PRICED = ("gpt-4o", "claude-sonnet-4-5")  # in Phoenix's price table and in ours
KIND_BY_OP = {sc.OP_CHAT: "LLM", sc.OP_EXECUTE_TOOL: "TOOL", sc.OP_INVOKE_AGENT: "AGENT"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    assert PYTHON is not None
    server = Phoenix(PYTHON, tmp_path_factory.mktemp("phoenix"))
    try:
        yield server
    finally:
        server.stop()


async def export(phoenix: Phoenix, capture: pathlib.Path) -> list[SpanRecord]:
    """Replay one capture through a real bridge exporting to Phoenix; the spans it sent."""
    settings = Settings(
        store=StoreSettings(enabled=False),
        mapping=MappingSettings(capture_content=True),
        semconv=SemconvSettings(openinference=True, project_name=PROJECT),
        otlp=OtlpSettings(endpoint=phoenix.url + "/v1/traces", protocol="http/protobuf", worker_process=False),
    )
    sink = ListSink()
    pipeline = assemble(settings, extra_sinks=[sink])
    await pipeline.bridge.start()
    try:
        replay_files(pipeline.bridge, [capture])
    finally:
        await pipeline.bridge.shutdown()
    assert pipeline.stats.spans_exported["otlp"] == len(sink.spans) > 0
    return sink.spans


def by_trace(spans: list[SpanRecord]) -> dict[str, list[SpanRecord]]:
    out: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        out[span.trace_id.hex()].append(span)
    return out


def span_cost(phoenix: Phoenix, node_id: str) -> float | None:
    data = phoenix.graphql(f'{{ node(id: "{node_id}") {{ ... on Span {{ costSummary {{ total {{ cost }} }} }} }} }}')
    summary = data["node"]["costSummary"]
    return None if summary is None else summary["total"]["cost"]


@pytest.mark.parametrize("dialect", list(CAPTURES))
async def test_phoenix_reads_llm_tool_and_agent_spans(phoenix: Phoenix, dialect: str) -> None:
    sent = await export(phoenix, CAPTURES[dialect])
    priced_costs: list[float | None] = []
    llm_spans = 0
    for trace_id, spans in by_trace(sent).items():
        stored = {s["context"]["span_id"]: s for s in phoenix.wait_for_spans(PROJECT, trace_id, len(spans))}
        for span in spans:
            got = stored[span.span_id.hex()]
            a: dict[str, Any] = got["attributes"]
            op = span.attributes.get(sc.GEN_AI_OPERATION_NAME)
            assert got["span_kind"] == KIND_BY_OP.get(str(op), "CHAIN"), (span.name, got["span_kind"])
            if op == sc.OP_CHAT:
                llm_spans += 1
                model = a.get(sc.OI_LLM_MODEL_NAME)
                assert model, f"{dialect}: {span.name} has no model name in Phoenix"
                if sc.GEN_AI_USAGE_INPUT_TOKENS in span.attributes:
                    assert a[sc.OI_TOKEN_PROMPT] == span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS]
                    assert a[sc.OI_TOKEN_COMPLETION] == span.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS]
                    assert a[sc.OI_TOKEN_TOTAL] == a[sc.OI_TOKEN_PROMPT] + a[sc.OI_TOKEN_COMPLETION]
                    if str(model).startswith(PRICED):
                        priced_costs.append(span_cost(phoenix, got["id"]))
                if sc.GEN_AI_OUTPUT_MESSAGES in span.attributes:
                    assert a["llm.output_messages.0.message.role"] == "assistant"
                    assert a[sc.OI_OUTPUT_VALUE]
            if op == sc.OP_EXECUTE_TOOL and sc.GEN_AI_TOOL_CALL_ARGUMENTS in span.attributes:
                # Phoenix stores tool.parameters parsed: its keys come back flattened under the name.
                assert any(k == sc.OI_TOOL_PARAMETERS or k.startswith(sc.OI_TOOL_PARAMETERS + ".") for k in a), a
                assert a[sc.OI_INPUT_VALUE] == span.attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert llm_spans > 0
    if dialect != "ag-ui":  # AG-UI reports usage per run, not per call: its calls have no tokens to price
        assert priced_costs
        assert all(c is not None and c > 0 for c in priced_costs), priced_costs


async def test_the_project_comes_from_the_setting_and_the_trace_view_renders(
    phoenix: Phoenix, tmp_path: pathlib.Path
) -> None:
    sent = await export(phoenix, CAPTURES["openai-chat"])
    screenshot(phoenix, sent, tmp_path)


def screenshot(phoenix: Phoenix, sent: list[SpanRecord], tmp_path: pathlib.Path) -> None:
    trace_id = sent[0].trace_id.hex()
    phoenix.wait_for_spans(PROJECT, trace_id, len(sent))
    assert phoenix.spans("default", trace_id) == []  # not in Phoenix's default project
    projects = phoenix.graphql("{ projects { edges { node { id name } } } }")["projects"]["edges"]
    ids = {p["node"]["name"]: p["node"]["id"] for p in projects}
    assert PROJECT in ids
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: the trace-view screenshot (an artefact, not compared) is not taken")
    shot = tmp_path / "phoenix-trace-view.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1600,1000",
            "--virtual-time-budget=20000",
            f"--screenshot={shot}",
            f"{phoenix.url}/projects/{ids[PROJECT]}/traces/{trace_id}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000  # a rendered page, not an empty image
    print(f"Phoenix trace view: {shot}")
