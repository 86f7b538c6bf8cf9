"""A metrics snapshot as Prometheus text exposition format 0.0.4 (what ``GET /metrics`` serves).

Names follow the OpenTelemetry-to-Prometheus compatibility rules exactly as the
Collector's Prometheus exporter applies them (``prometheus/otlptranslator``,
strategy ``UnderscoreEscapingWithSuffixes``), so a metric has the same name
whether Prometheus scrapes the bridge or a collector that received it over OTLP:

* characters outside ``[a-zA-Z0-9:]`` split the name into words joined by ``_``
  (``gen_ai.client.token.usage`` -> ``gen_ai_client_token_usage``);
* the unit is appended unless the name already has it: ``s`` -> ``seconds``,
  ``ms`` -> ``milliseconds``, ``By`` -> ``bytes``; annotations in braces
  (``{token}``) and ``1`` add nothing; any other unit is kept (``USD``);
* counters end in ``_total``; gauges with unit ``1`` end in ``_ratio``;
* attribute keys become label names the same way (``gen_ai.request.model`` ->
  ``gen_ai_request_model``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from otel_bridge.model import AttributeValue
from otel_bridge.sinks.metric_model import Histogram, MetricFamily, MetricKind

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SPLIT = re.compile(r"[^a-zA-Z0-9:]+")
_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


def _unit_words(unit: str) -> tuple[str, str]:
    main, _, per = unit.partition("/")
    main, per = main.strip(), per.strip()
    main_word = "" if not main or "{" in main or "}" in main else _UNITS.get(main, main)
    per_word = "" if not per or "{" in per or "}" in per else _PER_UNITS.get(per, per)
    return _words(main_word), ("per_" + _words(per_word)) if per_word else ""


def _words(text: str) -> str:
    return "_".join(w for w in _SPLIT.split(text) if w)


def metric_name(name: str, unit: str, kind: MetricKind) -> str:
    """The Prometheus name of an OpenTelemetry metric (see the module docstring)."""
    tokens = [t for t in _SPLIT.split(name) if t]
    main, per = _unit_words(unit)
    if main and main not in tokens:
        tokens.append(main)
    if per and per not in tokens:
        tokens.append(per)
    if kind is MetricKind.COUNTER:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind is MetricKind.GAUGE:
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    out = "_".join(tokens)
    return "_" + out if out[:1].isdigit() else out


def label_name(key: str) -> str:
    """An attribute key as a Prometheus label name."""
    out = _LABEL_INVALID.sub("_", key)
    if out[:1].isdigit():
        out = "key_" + out
    elif out.startswith("__"):
        out = "key" + out  # `__` is reserved for Prometheus itself
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_value(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ",".join(_label_value(v) for v in value) + "]"
    return str(value)


def format_value(value: float) -> str:
    """A sample value or ``le`` bound: shortest exact form, no needless ``.0``, Go's spellings of the specials."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    body = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + body + "}" if body else ""


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render(families: Iterable[MetricFamily]) -> bytes:
    """The exposition text of every family (families with no series still declare HELP and TYPE)."""
    lines: list[str] = []
    for family in families:
        name = metric_name(family.name, family.unit, family.kind)
        lines.append(f"# HELP {name} {_help(family.description)}")
        lines.append(f"# TYPE {name} {family.kind.value}")
        for series in family.series:
            labels = [(label_name(k), _label_value(v)) for k, v in series.attributes]
            value = series.value
            if isinstance(value, Histogram):
                cumulative = 0
                for bound, count in zip((*value.bounds, math.inf), value.counts, strict=True):
                    cumulative += count
                    le = _labels([*labels, ("le", format_value(bound))])
                    lines.append(f"{name}_bucket{le} {cumulative}")
                lines.append(f"{name}_sum{_labels(labels)} {format_value(value.total)}")
                lines.append(f"{name}_count{_labels(labels)} {value.count}")
            else:
                lines.append(f"{name}{_labels(labels)} {format_value(value)}")
    lines.append("")
    return "\n".join(lines).encode()
