"""The GenAI conventions' opt-in (``gen_ai_latest_experimental``): semantic-conventions-genai v0.1.0 names
on spans, metrics (OTLP and Prometheus) and the live feed, and v1.41.0 names by default.

Every dialect's golden case is replayed with the opt-in too: its tree must be the stored
latest golden (``tests/goldens_latest/``, only where it differs) and must differ from the
default golden exactly as the rename tables of :mod:`otel_bridge.semconv_latest` say.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from otel_bridge import semconv as sc
from otel_bridge import semconv_latest as sl
from otel_bridge.assembly import SCOPE, assemble
from otel_bridge.config import MappingSettings, MetricsSettings, Settings, StoreSettings, load_settings
from otel_bridge.mapping import attributes as attrs
from otel_bridge.model import (
    AgentEvent,
    AttributeValue,
    EventKind,
    Placement,
    SpanKind,
    SpanRecord,
    StatusCode,
    TokenUsage,
)
from otel_bridge.pipeline import ListSink
from otel_bridge.sinks.feed.record import encode, enrich
from otel_bridge.sinks.metric_model import MetricFamily
from otel_bridge.sinks.metrics import GenAiMetrics
from otel_bridge.sinks.otlp_metrics import request_json
from otel_bridge.sinks.prometheus import render
from otel_bridge.sources.replay import replay_files
from otel_bridge.stats import Stats
from tests.support.golden import (
    FIXTURES,
    LATEST_GOLDENS,
    cases,
    fixed_clock_ns,
    golden_tree,
    latest_path,
    load_expected,
    load_expected_latest,
)

CASES = cases()
IDS = [str(p.relative_to(FIXTURES)) for p in CASES]
T0 = 1_800_000_000_000_000_000
S = 1_000_000_000


# --- the names, spelled out as the v0.1.0 registry and changelog spell them ------------------


def test_the_latest_names_are_those_of_semantic_conventions_genai_0_1_0() -> None:
    # Spelled out here, not imported: a typo in semconv_latest must fail this test.
    assert sl.LATEST.version == "0.1.0"
    assert sl.LATEST.usage_cache_write == "gen_ai.usage.cache_write.input_tokens"
    assert sl.LATEST.metric_duration == "gen_ai.client.inference.duration"
    assert sl.LATEST.metric_time_to_first_chunk == "gen_ai.client.inference.time_to_first_chunk"
    assert sl.METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK == "gen_ai.client.inference.time_per_output_chunk"
    assert sl.LATEST.metric_input_tokens == "gen_ai.client.inference.operation.input_tokens"
    assert sl.LATEST.metric_output_tokens == "gen_ai.client.inference.operation.output_tokens"
    assert sl.LATEST.feed_usage_cache_write == "cache_write"
    assert (sl.LATEST.token_type_attribute, sl.LATEST.token_error_type, sl.LATEST.run_span_cache_tokens) == (
        False,
        True,
        False,
    )


def test_the_default_names_are_those_of_semantic_conventions_1_41_0() -> None:
    assert sc.V1_41.version == "1.41.0"
    assert sc.V1_41.usage_cache_write == "gen_ai.usage.cache_creation.input_tokens"
    assert sc.V1_41.metric_duration == "gen_ai.client.operation.duration"
    assert sc.V1_41.metric_time_to_first_chunk == "gen_ai.client.operation.time_to_first_chunk"
    assert sc.V1_41.metric_input_tokens == sc.V1_41.metric_output_tokens == "gen_ai.client.token.usage"
    assert sc.V1_41.feed_usage_cache_write == "cache_creation"
    assert (sc.V1_41.token_type_attribute, sc.V1_41.token_error_type, sc.V1_41.run_span_cache_tokens) == (
        True,
        False,
        True,
    )


def test_the_rename_tables_are_the_difference_between_the_two_namings() -> None:
    old, new = sc.V1_41, sl.LATEST
    assert dict(sl.SPAN_ATTRIBUTE_RENAMES) == {old.usage_cache_write: new.usage_cache_write}
    assert sl.METRIC_RENAMES[(old.metric_duration, None)] == new.metric_duration
    assert sl.METRIC_RENAMES[(old.metric_time_to_first_chunk, None)] == new.metric_time_to_first_chunk
    assert sl.METRIC_RENAMES[(old.metric_input_tokens, sc.TOKEN_TYPE_INPUT)] == new.metric_input_tokens
    assert sl.METRIC_RENAMES[(old.metric_output_tokens, sc.TOKEN_TYPE_OUTPUT)] == new.metric_output_tokens
    assert dict(sl.FEED_USAGE_RENAMES) == {old.feed_usage_cache_write: new.feed_usage_cache_write}
    assert sl.naming(False) is old
    assert sl.naming(True) is new


# --- the opt-in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "latest"),
    [
        ("gen_ai_latest_experimental", True),
        ("http, gen_ai_latest_experimental ,database/dup", True),  # a comma-separated list, blanks ignored
        ("http,database/dup", False),  # other categories' values are not ours
        ("", False),
        # The GenAI conventions define no /dup (both versions at once): it does not opt in.
        ("gen_ai_latest_experimental/dup", False),
        ("GEN_AI_LATEST_EXPERIMENTAL", False),  # values are case-sensitive, as the spec writes them
    ],
)
def test_the_opt_in_is_read_as_the_conventions_transition_plan_defines_it(value: str, latest: bool) -> None:
    assert load_settings(environ={sc.OPT_IN_ENV: value}).mapping.latest_semconv is latest


def test_an_unknown_gen_ai_opt_in_value_is_warned_about_and_other_categories_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_bridge.config.env"):
        load_settings(environ={sc.OPT_IN_ENV: "http/dup,gen_ai_latest_experimental/dup"})
    [record] = caplog.records
    assert "gen_ai_latest_experimental/dup not understood" in record.getMessage()
    assert "http/dup" not in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_bridge.config.env"):
        load_settings(environ={sc.OPT_IN_ENV: "http,gen_ai_latest_experimental"})
    assert caplog.records == []


# --- spans: every golden case under both namings ----------------------------------------------


def to_latest(document: dict[str, Any]) -> dict[str, Any]:
    """A default golden tree as the rename tables say it reads under the opt-in."""

    def attributes(values: dict[str, Any]) -> dict[str, Any]:
        return {sl.SPAN_ATTRIBUTE_RENAMES.get(k, k): v for k, v in values.items()}

    def span(node: dict[str, Any]) -> dict[str, Any]:
        out = dict(node)
        out["attributes"] = attributes(node["attributes"])
        if out["kind"] == "INTERNAL" and out["attributes"].get(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT:
            out["attributes"] = {k: v for k, v in out["attributes"].items() if k not in sl.RUN_SPAN_REMOVED}
        if "events" in node:
            out["events"] = [{**e, "attributes": attributes(e["attributes"])} for e in node["events"]]
        if "children" in node:
            out["children"] = [span(child) for child in node["children"]]
        return out

    return {**document, "traces": [{**t, "spans": [span(s) for s in t["spans"]]} for t in document["traces"]]}


@pytest.mark.parametrize("capture", CASES, ids=IDS)
def test_latest_golden_span_tree(capture: Path) -> None:
    assert golden_tree(capture, latest=True) == load_expected_latest(capture)


@pytest.mark.parametrize("capture", CASES, ids=IDS)
def test_the_latest_golden_differs_from_the_default_exactly_by_the_rename_tables(capture: Path) -> None:
    assert to_latest(load_expected(capture)) == load_expected_latest(capture)


def test_the_latest_goldens_belong_to_cases_and_each_differs_from_its_default() -> None:
    owned = {latest_path(p): p for p in CASES}
    stored = sorted(LATEST_GOLDENS.rglob("*.json"))
    assert [p for p in stored if p not in owned] == []
    assert [p for p in stored if load_expected_latest(owned[p]) == load_expected(owned[p])] == []
    # The opt-in is not a no-op on the suite: cache counts appear in many captures.
    assert len(stored) >= 10


def test_usage_attributes_name_the_cache_write_count_by_the_version_and_keep_the_run_span_free_of_cache_counts() -> (
    None
):
    usage = TokenUsage(input=10, output=2, cache_read=4, cache_creation=3, reasoning=1)
    default_call = attrs.usage_attributes(usage, latest=False)
    latest_call = attrs.usage_attributes(usage, latest=True)
    assert latest_call == {sl.SPAN_ATTRIBUTE_RENAMES.get(k, k): v for k, v in default_call.items()}
    assert latest_call[sl.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 3
    assert attrs.usage_attributes(usage, latest=False, run=True) == default_call
    run_latest = attrs.run_finish_attributes(close_reason=None, usage=usage, cost=None, latest=True)
    assert run_latest == {
        sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 2,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 1,
    }
    # zero is data under both namings
    zero = attrs.usage_attributes(TokenUsage(cache_creation=0), latest=True)
    assert zero == {sl.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 0}


# --- metrics ------------------------------------------------------------------------------


def chat_span(*, error: bool = False, sid: int = 1) -> SpanRecord:
    attributes: dict[str, AttributeValue] = {
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_PROVIDER_NAME: "anthropic",
        sc.GEN_AI_REQUEST_MODEL: "claude-sonnet-4",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 472,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
        sc.GEN_AI_USAGE_COST: 0.01,
    }
    if error:
        attributes[sc.ERROR_TYPE] = "overloaded_error"
    return SpanRecord(
        trace_id=b"\x01" * 16,
        span_id=sid.to_bytes(8, "big"),
        parent_span_id=None,
        name="chat claude-sonnet-4",
        kind=SpanKind.CLIENT,
        start_ns=T0,
        end_ns=T0 + 2 * S,
        attributes=attributes,
        status_code=StatusCode.ERROR if error else StatusCode.UNSET,
    )


def by_name(families: list[MetricFamily]) -> dict[str, MetricFamily]:
    return {f.name: f for f in families}


def renamed_families(families: list[MetricFamily]) -> dict[str, list[tuple[Any, ...]]]:
    """Default metric families as the metric rename table says they read under the opt-in:
    (name, attributes, value) of every series, the token metric split by its token type."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for f in families:
        for series in f.series:
            token_type = dict(series.attributes).get(sc.GEN_AI_TOKEN_TYPE)
            name = sl.METRIC_RENAMES.get((f.name, token_type if isinstance(token_type, str) else None), f.name)
            key = tuple(kv for kv in series.attributes if kv[0] != sc.GEN_AI_TOKEN_TYPE)
            out.setdefault(name, []).append((key, series.value, f.unit, f.kind))
    return out


def test_metrics_differ_exactly_by_the_metric_rename_table() -> None:
    default = GenAiMetrics(MetricsSettings(), Stats(), time_ns=lambda: T0)
    latest = GenAiMetrics(MetricsSettings(), Stats(), names=sl.LATEST, time_ns=lambda: T0)
    for metrics in (default, latest):
        metrics.consume([chat_span(sid=1), chat_span(sid=2)])
    assert renamed_families(default.families()) == renamed_families(latest.families())
    names = set(by_name(latest.families()))
    assert sl.METRIC_INFERENCE_INPUT_TOKENS in names
    assert sl.METRIC_INFERENCE_DURATION in names
    assert not names & {sc.METRIC_TOKEN_USAGE, sc.METRIC_OPERATION_DURATION, sc.METRIC_TIME_TO_FIRST_CHUNK}
    assert not set(by_name(default.families())) & set(sl.METRIC_RENAMES.values())


def test_latest_token_histograms_carry_error_type_on_a_failed_call_and_no_token_type() -> None:
    metrics = GenAiMetrics(MetricsSettings(), Stats(), names=sl.LATEST, time_ns=lambda: T0)
    metrics.consume([chat_span(error=True)])
    got = by_name(metrics.families())
    for name in (sl.METRIC_INFERENCE_INPUT_TOKENS, sl.METRIC_INFERENCE_OUTPUT_TOKENS, sl.METRIC_INFERENCE_DURATION):
        [series] = got[name].series
        assert dict(series.attributes)[sc.ERROR_TYPE] == "overloaded_error"
        assert sc.GEN_AI_TOKEN_TYPE not in dict(series.attributes)
    assert got[sl.METRIC_INFERENCE_INPUT_TOKENS].unit == sc.UNIT_TOKEN
    [output] = got[sl.METRIC_INFERENCE_OUTPUT_TOKENS].series
    assert output.value.count == 1  # type: ignore[union-attr]  # zero output tokens is data
    # v1.41's token histogram has no error.type
    default = GenAiMetrics(MetricsSettings(), Stats(), time_ns=lambda: T0)
    default.consume([chat_span(error=True)])
    for series in by_name(default.families())[sc.METRIC_TOKEN_USAGE].series:
        assert sc.ERROR_TYPE not in dict(series.attributes)


# --- the whole sidecar: spans, metrics (OTLP, Prometheus) and feed from one setting ----------


async def first_frames(chunks: AsyncIterator[bytes]) -> list[dict[str, Any]]:
    chunk = await anext(chunks)
    out = []
    for block in chunk.decode().split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(json.loads(line[len("data: ") :]))
    return out


@pytest.mark.parametrize("latest", [False, True], ids=["default", "gen_ai_latest_experimental"])
async def test_one_setting_names_spans_metrics_and_feed_alike(latest: bool) -> None:
    settings = Settings(store=StoreSettings(enabled=False), mapping=MappingSettings(latest_semconv=latest))
    sink = ListSink()
    pipeline = assemble(settings, clock=lambda: 0.0, extra_sinks=[sink], pricer=None)
    replay_files(pipeline.bridge, [FIXTURES / "anthropic" / "tool-use.sse"], clock_ns=fixed_clock_ns())
    names, other = (sl.LATEST, sc.V1_41) if latest else (sc.V1_41, sl.LATEST)

    span_keys = {k for span in sink.spans for k in span.attributes}
    assert names.usage_cache_write in span_keys
    assert other.usage_cache_write not in span_keys

    snapshot = pipeline.metrics_snapshot()
    families = {f.name for f in snapshot.families if f.series}
    expected = {names.metric_duration, names.metric_input_tokens, names.metric_output_tokens}
    assert expected <= families
    assert not families & {other.metric_duration, other.metric_input_tokens, other.metric_output_tokens}
    otlp = {m["name"] for m in request_json(snapshot, {}, SCOPE)["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]}
    assert expected <= otlp
    prometheus = render(snapshot.families).decode()
    assert f"# TYPE {names.metric_duration.replace('.', '_')}_seconds histogram" in prometheus
    assert f"# TYPE {names.metric_input_tokens.replace('.', '_')} histogram" in prometheus
    assert f"{other.metric_duration.replace('.', '_')}_seconds" not in prometheus

    records = await first_frames(pipeline.feed.subscribe(last_event_id=pipeline.feed.first_seq - 1).chunks())
    usages = [r["usage"] for r in records if "usage" in r]
    assert usages, "the capture reports usage"
    assert all(names.feed_usage_cache_write in u and other.feed_usage_cache_write not in u for u in usages)


def test_feed_records_differ_exactly_by_the_feed_rename_table() -> None:
    event = AgentEvent(
        kind=EventKind.LLM_COMPLETED,
        run_id="r1",
        timestamp_ns=T0,
        dialect="generic",
        original_type="llm.completed",
        source="http",
        usage=TokenUsage(input=5, output=0, cache_read=1, cache_creation=0, reasoning=0),
    )
    placement = Placement(b"\x01" * 16, b"\x02" * 8, None)

    def record(names: sc.Naming) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(
            encode(enrich(event, placement, 1, agent=None, trace_url_template=None, content=False, names=names))
        )
        return out

    default, latest = record(sc.V1_41), record(sl.LATEST)
    renamed = {**default, "usage": {sl.FEED_USAGE_RENAMES.get(k, k): v for k, v in default["usage"].items()}}
    assert latest == renamed
    assert list(latest["usage"]) == ["input", "output", "cache_read", "cache_write", "reasoning"]  # zero is data
    assert default["usage"]["cache_creation"] == 0
