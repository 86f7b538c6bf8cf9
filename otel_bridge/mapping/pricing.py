"""What an LLM call cost: the :data:`Pricer` the mapper calls, a price table per model, and a pricer over it.

The table ships as ``otel_bridge/data/prices.toml`` (USD per million tokens,
with the date the prices were read); a user file in the same format (TOML or
JSON) extends it or overrides models of the same name. It is read and checked
once at startup: a bad file is a :class:`ConfigError` naming the model.

Cost follows the GenAI conventions' token accounting: ``input`` *includes*
cached tokens, so the cache-read and cache-write parts are taken out of it and
priced at their own rates (never counted twice); reasoning tokens are inside
``output``. A model with no price has no cost (``None``), never zero.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from otel_bridge.config import ConfigError, PricingSettings
from otel_bridge.model import TokenUsage

Pricer = Callable[[str | None, str | None, TokenUsage], float | None]
"""``(provider, model, usage) -> cost in USD``, or ``None`` when the model has no price."""

_PER_TOKENS = 1_000_000
# A routing prefix before the model name: Bedrock's `anthropic.` (optionally after a region
# such as `us.`), and `vendor/` as routers and gateways write it.
_VENDOR_PREFIX = re.compile(r"^(?:[a-z]{2,4}\.)?(?:anthropic|meta|mistral|cohere|amazon|ai21|deepseek|openai)\.")
# Snapshot and version suffixes, tried one after another from the end of the name.
_SUFFIXES = (
    re.compile(r"-v\d+(?::\d+)?$"),  # Bedrock: -v1:0
    re.compile(r"@\d{8}$"),  # Vertex: @20240620
    re.compile(r"@latest$"),
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # OpenAI: -2024-08-06
    re.compile(r"-\d{8}$"),  # Anthropic: -20250929
    re.compile(r"-\d{4}$"),  # older OpenAI: -0125
    re.compile(r"-latest$"),
    re.compile(r"-\d{3}$"),  # Gemini: -001
)
_MEMO_LIMIT = 4096  # distinct (provider, model) names remembered; models are few, but names come from input


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def cost(self, usage: TokenUsage) -> float | None:
        """The cost of one call, or ``None`` when the usage carries no token count at all."""
        if usage.is_empty():
            return None
        cache_read = usage.cache_read or 0
        cache_write = usage.cache_creation or 0
        total_input = usage.input if usage.input is not None else cache_read + cache_write
        # input includes the cached parts; a producer that reports them apart (so the
        # difference is negative) still pays nothing twice.
        uncached = max(0, total_input - cache_read - cache_write)
        output = usage.output or 0
        dollars = (
            uncached * self.input + cache_read * self.cache_read + cache_write * self.cache_write + output * self.output
        ) / _PER_TOKENS
        return round(dollars, 12)  # drop float noise (0.1 + 0.2), far below a cent


@dataclass(frozen=True)
class PriceTable:
    """Model name (lowercase) -> price; ``provider/model`` keys price one provider's offer apart."""

    prices: Mapping[str, ModelPrice]
    as_of: str | None = None

    def lookup(self, provider: str | None, model: str) -> ModelPrice | None:
        """The price of ``model``: exact name, then without routing prefix, then without snapshot suffixes."""
        for name in candidate_names(model):
            if provider:
                found = self.prices.get(f"{provider.lower()}/{name}")
                if found is not None:
                    return found
            found = self.prices.get(name)
            if found is not None:
                return found
        return None


def candidate_names(model: str) -> Iterator[str]:
    """The names a model may be priced under, most specific first."""
    name = model.strip().lower()
    yield name
    if "/" in name:
        name = name.rsplit("/", 1)[1]
        yield name
    stripped = _VENDOR_PREFIX.sub("", name)
    if stripped != name:
        name = stripped
        yield name
    for suffix in _SUFFIXES:
        shorter = suffix.sub("", name)
        if shorter != name and shorter:
            name = shorter
            yield name


def _price(model: str, entry: object, where: str) -> ModelPrice:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: model {model!r} must be a table")

    def rate(key: str, default: float | None) -> float:
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: model {model!r}: {key} must be a number (USD per 1M tokens)")
        if value < 0:
            raise ConfigError(f"{where}: model {model!r}: {key} must be >= 0, got {value}")
        return float(value)

    unknown = set(entry) - {"provider", "input", "output", "cache_read", "cache_write", "aliases", "note"}
    if unknown:
        raise ConfigError(f"{where}: model {model!r}: unknown keys {sorted(unknown)}")
    price_in = rate("input", None)
    return ModelPrice(
        input=price_in,
        output=rate("output", None),
        cache_read=rate("cache_read", price_in),
        cache_write=rate("cache_write", price_in),
    )


def parse_table(data: Mapping[str, Any], where: str) -> PriceTable:
    """Check a decoded price file and index it by every name and alias of each model."""
    models = data.get("models")
    if not isinstance(models, Mapping):
        raise ConfigError(f'{where}: expected a [models."<name>"] table per model')
    prices: dict[str, ModelPrice] = {}
    for model, entry in models.items():
        price = _price(model, entry, where)
        prices[model.lower()] = price
        aliases = entry.get("aliases", []) if isinstance(entry, Mapping) else []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ConfigError(f"{where}: model {model!r}: aliases must be a list of names")
        for alias in aliases:
            prices[alias.lower()] = price
    as_of = data.get("as_of")
    return PriceTable(prices, str(as_of) if as_of is not None else None)


def read_table_file(path: str | Path) -> PriceTable:
    """A user price file: ``.toml`` or ``.json``, in the shipped table's format."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read price file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".json":
            data: object = json.loads(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError(f"price file {path}: use .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"price file {path} is not valid: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"price file {path}: the top level must be a table/object")
    return parse_table(data, f"price file {path}")


def builtin_table() -> PriceTable:
    """The table shipped with the package."""
    text = resources.files("otel_bridge").joinpath("data", "prices.toml").read_text(encoding="utf-8")
    return parse_table(tomllib.loads(text), "otel_bridge/data/prices.toml")


def load_table(settings: PricingSettings) -> PriceTable:
    """The shipped table (unless ``builtin = false``) with the user's file laid over it."""
    prices: dict[str, ModelPrice] = {}
    as_of: str | None = None
    if settings.builtin:
        shipped = builtin_table()
        prices.update(shipped.prices)
        as_of = shipped.as_of
    if settings.file:
        user = read_table_file(settings.file)
        prices.update(user.prices)
        as_of = user.as_of or as_of
    return PriceTable(prices, as_of)


class TablePricer:
    """A :data:`Pricer`: ``(provider, model, usage) -> USD`` or ``None`` for a model with no price."""

    def __init__(self, table: PriceTable) -> None:
        self.table = table
        self._memo: dict[tuple[str | None, str], ModelPrice | None] = {}

    def price_for(self, provider: str | None, model: str) -> ModelPrice | None:
        key = (provider, model)
        if key in self._memo:
            return self._memo[key]
        price = self.table.lookup(provider, model)
        if len(self._memo) < _MEMO_LIMIT:
            self._memo[key] = price
        return price

    def __call__(self, provider: str | None, model: str | None, usage: TokenUsage) -> float | None:
        if not model:
            return None
        price = self.price_for(provider, model)
        return price.cost(usage) if price is not None else None


def pricer_from_settings(settings: PricingSettings) -> Pricer | None:
    """The pricer the bridge uses, or ``None`` when pricing is off. Raises :class:`ConfigError`."""
    if not settings.enabled:
        return None
    return TablePricer(load_table(settings))
