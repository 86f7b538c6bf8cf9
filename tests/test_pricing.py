"""The price table, model-name matching, cost arithmetic, and cost on spans through the real mapper."""

from __future__ import annotations

import json
import pathlib
import tomllib

import pytest

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.config import ConfigError, PricingSettings, load_settings
from otel_bridge.mapping.pricing import (
    ModelPrice,
    TablePricer,
    builtin_table,
    candidate_names,
    load_table,
    pricer_from_settings,
)
from otel_bridge.model import AgentEvent, EventKind, TokenUsage
from otel_bridge.pipeline import ListSink

SHIPPED = pathlib.Path(__file__).resolve().parents[1] / "otel_bridge" / "data" / "prices.toml"
T0 = 1_800_000_000_000_000_000


def shipped(model: str) -> dict[str, float]:
    entry: dict[str, float] = tomllib.loads(SHIPPED.read_text())["models"][model]
    return entry


def test_shipped_table_has_a_date_sources_and_the_demo_models() -> None:
    data = tomllib.loads(SHIPPED.read_text())
    assert data["as_of"] == builtin_table().as_of
    assert set(data["sources"]) == {"openai", "anthropic", "google"}
    table = builtin_table()
    for model in ("gpt-4o-mini", "claude-sonnet-4-5", "gpt-4.1"):  # what `otel-bridge demo` uses
        assert table.lookup(None, model) is not None


@pytest.mark.parametrize(
    ("given", "priced_as"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4.5", "claude-sonnet-4-5"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
    ],
)
def test_model_names_match_exactly_then_without_prefix_and_snapshot(given: str, priced_as: str) -> None:
    table = builtin_table()
    assert table.lookup(None, given) == table.lookup(None, priced_as)
    assert table.lookup(None, given) is not None


@pytest.mark.parametrize("model", ["gpt-4o-audio-preview", "llama-3-70b", "claude", "", "gpt-4o-realtime"])
def test_models_without_a_price_are_not_guessed(model: str) -> None:
    assert builtin_table().lookup("openai", model) is None


def test_candidate_names_go_from_most_to_least_specific() -> None:
    assert list(candidate_names("us.anthropic.claude-sonnet-4-5-20250929-v1:0")) == [
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-5",
    ]


def test_cached_input_is_priced_at_its_own_rate_and_not_counted_twice() -> None:
    price = ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    # input 10_000 includes 6_000 read from cache and 1_000 written to it: 3_000 uncached.
    usage = TokenUsage(input=10_000, output=2_000, cache_read=6_000, cache_creation=1_000)
    assert price.cost(usage) == pytest.approx((3_000 * 3.0 + 6_000 * 0.3 + 1_000 * 3.75 + 2_000 * 15.0) / 1e6)


def test_reasoning_tokens_are_inside_output_and_cost_nothing_extra() -> None:
    price = ModelPrice(input=1.1, output=4.4, cache_read=0.275, cache_write=1.1)
    plain = TokenUsage(input=1_000, output=5_000)
    assert price.cost(TokenUsage(input=1_000, output=5_000, reasoning=4_000)) == price.cost(plain)


def test_zero_tokens_cost_zero_and_no_tokens_cost_nothing() -> None:
    price = ModelPrice(input=1.0, output=2.0, cache_read=0.1, cache_write=1.0)
    assert price.cost(TokenUsage(input=0, output=0)) == 0.0
    assert price.cost(TokenUsage()) is None


def test_a_producer_that_reports_cache_apart_from_input_is_not_charged_negative() -> None:
    price = ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    assert price.cost(TokenUsage(input=100, output=0, cache_read=5_000)) == pytest.approx(5_000 * 0.3 / 1e6)


def test_pricer_returns_none_without_a_model_or_a_price() -> None:
    pricer = TablePricer(builtin_table())
    assert pricer("openai", None, TokenUsage(input=1, output=1)) is None
    assert pricer("acme", "acme-llm-9", TokenUsage(input=1, output=1)) is None
    assert pricer("openai", "gpt-4o", TokenUsage(input=1_000_000, output=0)) == 2.50


def test_user_file_extends_and_overrides_the_shipped_table(tmp_path: pathlib.Path) -> None:
    user = tmp_path / "prices.toml"
    user.write_text(
        'as_of = "2026-05-01"\n'
        '[models."gpt-4o"]\ninput = 2.0\noutput = 8.0\n'
        '[models."acme-llm-9"]\ninput = 0.5\noutput = 1.5\ncache_read = 0.05\naliases = ["acme-9"]\n'
        '[models."azure.ai.openai/gpt-4.1"]\ninput = 2.2\noutput = 8.8\n'
    )
    table = load_table(PricingSettings(file=str(user)))
    assert table.as_of == "2026-05-01"
    assert table.lookup(None, "gpt-4o") == ModelPrice(2.0, 8.0, 2.0, 2.0)  # cache rates default to input
    assert table.lookup(None, "acme-9-2026-01-01") == ModelPrice(0.5, 1.5, 0.05, 0.5)
    assert table.lookup("azure.ai.openai", "gpt-4.1") == ModelPrice(2.2, 8.8, 2.2, 2.2)
    assert table.lookup("openai", "gpt-4.1") == builtin_table().lookup(None, "gpt-4.1")
    assert table.lookup(None, "claude-haiku-4-5") is not None  # the shipped ones are still there


def test_user_json_file_alone(tmp_path: pathlib.Path) -> None:
    user = tmp_path / "prices.json"
    user.write_text(json.dumps({"models": {"mine": {"input": 1, "output": 2}}}))
    table = load_table(PricingSettings(builtin=False, file=str(user)))
    assert dict(table.prices) == {"mine": ModelPrice(1.0, 2.0, 1.0, 1.0)}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[models."x"]\ninput = 1\n', "model 'x': output must be a number"),
        ('[models."x"]\ninput = -1\noutput = 1\n', "model 'x': input must be >= 0"),
        ('[models."x"]\ninput = 1\noutput = 1\ncache_reed = 1\n', "model 'x': unknown keys ['cache_reed']"),
        ('[models."x"]\ninput = "1"\noutput = 1\n', "model 'x': input must be a number"),
        ("models = 3\n", "expected a [models"),
        ("[models\n", "is not valid"),
    ],
)
def test_a_bad_user_file_fails_startup_naming_what_is_wrong(tmp_path: pathlib.Path, body: str, message: str) -> None:
    user = tmp_path / "prices.toml"
    user.write_text(body)
    with pytest.raises(ConfigError) as info:
        pricer_from_settings(PricingSettings(file=str(user)))
    assert message in str(info.value)


def test_missing_user_file_and_pricing_off(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="cannot read price file"):
        pricer_from_settings(PricingSettings(file=str(tmp_path / "nope.toml")))
    assert pricer_from_settings(PricingSettings(enabled=False)) is None


def test_prices_file_from_the_environment(tmp_path: pathlib.Path) -> None:
    settings = load_settings(environ={"OTEL_BRIDGE_PRICES_FILE": str(tmp_path / "p.toml")})
    assert settings.pricing == PricingSettings(file=str(tmp_path / "p.toml"))


# --- through the real mapper -------------------------------------------------------------------------


def _event(kind: EventKind, offset_ms: int, **fields: object) -> AgentEvent:
    return AgentEvent(
        kind=kind,
        run_id="run-cost",
        timestamp_ns=T0 + offset_ms * 1_000_000,
        dialect="generic",
        original_type="t",
        **fields,  # type: ignore[arg-type]
    )


def _run(llm_calls: list[tuple[str, TokenUsage]]) -> list[dict[str, object]]:
    settings = load_settings(environ={})
    settings.store.enabled = False
    sink = ListSink()
    bridge = assemble(settings, clock=lambda: 0.0, extra_sinks=[sink]).bridge  # priced as the settings say
    events = [_event(EventKind.RUN_STARTED, 0, agent="a")]
    for i, (model, usage) in enumerate(llm_calls):
        events.append(_event(EventKind.LLM_STARTED, 10 + i * 100, call_id=f"c{i}", model=model))
        events.append(_event(EventKind.LLM_COMPLETED, 60 + i * 100, call_id=f"c{i}", model=model, usage=usage))
    events.append(_event(EventKind.RUN_FINISHED, 1_000))
    bridge.submit(events)
    bridge.mapper.close_all()
    return [dict(span.attributes) for span in sink.spans]


def test_cost_on_each_llm_span_is_the_table_price_to_the_cent_and_the_run_span_sums_it() -> None:
    sonnet, mini = shipped("claude-sonnet-4-5"), shipped("gpt-4o-mini")
    sonnet_usage = TokenUsage(input=120_000, output=40_000, cache_read=80_000, cache_creation=10_000)
    mini_usage = TokenUsage(input=2_000_000, output=500_000, cache_read=800_000, reasoning=100_000)
    spans = _run([("claude-sonnet-4-5-20250929", sonnet_usage), ("gpt-4o-mini", mini_usage)])
    chat_sonnet, chat_mini, run = spans
    # Written out by hand from the table: uncached input, cache read, cache write, output.
    expected_sonnet = (
        30_000 * sonnet["input"] + 80_000 * sonnet["cache_read"] + 10_000 * sonnet["cache_write"]
    ) / 1e6 + 40_000 * sonnet["output"] / 1e6
    expected_mini = (1_200_000 * mini["input"] + 800_000 * mini["cache_read"] + 500_000 * mini["output"]) / 1e6
    assert round(expected_sonnet, 2) == 0.75  # 0.09 + 0.024 + 0.0375 + 0.60
    assert round(expected_mini, 2) == 0.54  # 0.18 + 0.06 + 0.30
    assert round(float(chat_sonnet[sc.GEN_AI_USAGE_COST]), 2) == 0.75  # type: ignore[arg-type]
    assert chat_sonnet[sc.GEN_AI_USAGE_COST] == pytest.approx(expected_sonnet, abs=1e-9)
    assert chat_mini[sc.GEN_AI_USAGE_COST] == pytest.approx(expected_mini, abs=1e-9)
    assert run[sc.GEN_AI_OPERATION_NAME] == sc.OP_INVOKE_AGENT
    assert run[sc.GEN_AI_USAGE_COST] == pytest.approx(expected_sonnet + expected_mini, abs=1e-9)


def test_an_unknown_model_gets_no_cost_attribute_not_zero() -> None:
    spans = _run([("acme-llm-9", TokenUsage(input=1_000, output=1_000)), ("gpt-4o", TokenUsage(input=0, output=0))])
    unknown, free, run = spans
    assert sc.GEN_AI_USAGE_COST not in unknown
    assert unknown[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1_000  # the tokens are still there
    assert free[sc.GEN_AI_USAGE_COST] == 0.0  # a priced model with zero tokens: zero is data
    assert run[sc.GEN_AI_USAGE_COST] == 0.0


def test_a_run_whose_only_model_is_unknown_has_no_cost() -> None:
    unknown, run = _run([("acme-llm-9", TokenUsage(input=1_000, output=1_000))])
    assert sc.GEN_AI_USAGE_COST not in unknown
    assert sc.GEN_AI_USAGE_COST not in run
