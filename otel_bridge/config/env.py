"""Settings from environment variables: the standard ``OTEL_*`` ones and the bridge's own.

One reader per signal, both built on the same OTLP exporter rows:
:func:`traces_env` and :func:`metrics_env` (``OTEL_EXPORTER_OTLP_{TRACES,METRICS}_X``
wins over ``OTEL_EXPORTER_OTLP_X``), then :func:`bridge_env` for everything
else. Each reader is a table of :class:`EnvVar` rows. Every value goes through
a converter that raises a :class:`ConfigError` naming the variable, so a bad
value stops startup with one clear line instead of a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args
from urllib.parse import unquote

from otel_bridge import semconv as sc
from otel_bridge.config.base import ConfigError
from otel_bridge.config.settings import Compression, OtlpProtocol

log = logging.getLogger(__name__)

Convert = Callable[[str, str], object]
"""``(variable name, its value)`` to the setting's value, or :data:`KEEP`; raises :class:`ConfigError`."""

KEEP: Final = object()
"""What a converter returns for a valid value that sets nothing (``OTEL_METRICS_EXPORTER=otlp``)."""


@dataclass(frozen=True)
class EnvVar:
    """One setting read from the environment."""

    names: tuple[str, ...]
    """The variables that set it; the first one set (and not blank) wins."""
    path: tuple[str, ...]
    """Where its value goes in the settings document; ``()``: the converter returns a piece of the document."""
    convert: Convert


# -- converters ------------------------------------------------------------------


def _text(name: str, value: str) -> object:
    return value


def _bool(name: str, value: str) -> object:
    return value.lower() == "true"  # the spec: anything but "true" is false


def _ms(name: str, value: str) -> object:
    """Milliseconds (the spec's unit for every duration) to seconds."""
    try:
        ms = float(value)
    except ValueError:
        ms = float("nan")
    if not ms > 0:
        raise ConfigError(f"{name} must be milliseconds (a number > 0), got {value!r}")
    return ms / 1000.0


def _count(name: str, value: str) -> object:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count <= 0:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    return count


def _megabytes(name: str, value: str) -> object:
    try:
        mb = float(value)
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        raise ConfigError(f"{name} must be MiB (a number >= 0; 0: no budget), got {value!r}")
    return mb


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name}={value}: supported values are {', '.join(choices)}")
    return value


def _protocol(name: str, value: str) -> object:
    return _one_of(name, value, get_args(OtlpProtocol))


def _compression(name: str, value: str) -> object:
    return _one_of(name, value, get_args(Compression))


def parse_pairs(value: str, what: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` with percent-encoded values (W3C baggage style, as the spec says)."""
    pairs: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(f"{what}: expected key=value, got {item!r}")
        key, _, val = item.partition("=")
        pairs[unquote(key.strip())] = unquote(val.strip())
    return pairs


def _pairs(name: str, value: str) -> object:
    return parse_pairs(value, name)


def _list(name: str, value: str) -> object:
    return [item.strip() for item in value.split(",") if item.strip()]


def _resource(name: str, value: str) -> object:
    """Resource attributes; their ``service.name`` is the service name."""
    attrs = parse_pairs(value, name)
    piece: dict[str, Any] = {}
    if sc.SERVICE_NAME in attrs:
        piece["service_name"] = attrs.pop(sc.SERVICE_NAME)
    piece["resource_attributes"] = attrs
    return piece


def _capture(name: str, value: str) -> object:
    """Content on spans (SPAN_ONLY, SPAN_AND_EVENT), and also as a span event (SPAN_AND_EVENT)."""
    mode = value.upper()
    return {
        "capture_content": mode in ("SPAN_ONLY", "SPAN_AND_EVENT", "TRUE"),
        "content_events": mode == "SPAN_AND_EVENT",
    }


def _latest(name: str, value: str) -> object:
    """The GenAI conventions' opt-in (a comma-separated list; other categories' values are not ours)."""
    unknown = sc.unknown_gen_ai_values(value)
    if unknown:
        # Not an error: the variable is shared with every instrumentation in the process.
        log.warning(
            "%s: %s not understood (the GenAI conventions define only %s); the v%s names stay",
            name,
            ", ".join(unknown),
            sc.OPT_IN_LATEST,
            sc.SEMCONV_VERSION,
        )
    return True if sc.latest_experimental(value) else KEEP


def _traces_exporter(name: str, value: str) -> object:
    return None if value == "none" else KEEP


def _metrics_exporter(name: str, value: str) -> object:
    _one_of(name, value, ("otlp", "prometheus", "none"))
    return KEEP if value == "otlp" else None  # prometheus and none: pull only, GET /metrics stays on


def _temporality(name: str, value: str) -> object:
    if value.lower() != "cumulative":
        raise ConfigError(f"{name}={value}: only cumulative is supported")
    return KEEP


# -- tables ----------------------------------------------------------------------


def _otlp_vars(signal: str, *timeout_fallback: str) -> tuple[EnvVar, ...]:
    """The OTLP exporter rows every signal has (its endpoint is read apart: it depends on the protocol)."""

    def names(suffix: str) -> tuple[str, ...]:
        return (f"OTEL_EXPORTER_OTLP_{signal}_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}")

    return (
        EnvVar(names("PROTOCOL"), ("protocol",), _protocol),
        # Generic headers first, then the signal's own: both apply, the signal's win per key.
        EnvVar(("OTEL_EXPORTER_OTLP_HEADERS",), ("headers",), _pairs),
        EnvVar((f"OTEL_EXPORTER_OTLP_{signal}_HEADERS",), ("headers",), _pairs),
        EnvVar((*names("TIMEOUT"), *timeout_fallback), ("timeout_s",), _ms),
        EnvVar(names("COMPRESSION"), ("compression",), _compression),
        EnvVar(names("INSECURE"), ("insecure",), _bool),
        EnvVar(names("CERTIFICATE"), ("certificate",), _text),
    )


TRACES_VARS: Final = (
    *_otlp_vars("TRACES"),
    EnvVar(("OTEL_BSP_SCHEDULE_DELAY",), ("schedule_delay_s",), _ms),
    EnvVar(("OTEL_BSP_MAX_EXPORT_BATCH_SIZE",), ("max_batch_spans",), _count),
    EnvVar(("OTEL_BSP_MAX_QUEUE_SIZE",), ("max_queue_spans",), _count),
    EnvVar(("OTEL_BRIDGE_QUEUE_DIR",), ("queue_dir",), _text),
    EnvVar(("OTEL_TRACES_EXPORTER",), ("endpoint",), _traces_exporter),  # last: "none" wins over any endpoint
)
"""``Settings.otlp``."""

METRICS_VARS: Final = (
    *_otlp_vars("METRICS", "OTEL_METRIC_EXPORT_TIMEOUT"),
    EnvVar(("OTEL_METRIC_EXPORT_INTERVAL",), ("export_interval_s",), _ms),
    EnvVar(("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",), ("temporality",), _temporality),
    EnvVar(("OTEL_METRICS_EXPORTER",), ("endpoint",), _metrics_exporter),  # last, as for traces
)
"""``Settings.metrics``; the temporality is only checked (it is always cumulative): it sets nothing."""

BRIDGE_VARS: Final = (
    EnvVar(("OTEL_BRIDGE_PRICES_FILE",), ("pricing", "file"), _text),
    EnvVar(("OTEL_RESOURCE_ATTRIBUTES",), (), _resource),
    EnvVar(("OTEL_SERVICE_NAME",), ("service_name",), _text),  # after the resource: wins over its service.name
    EnvVar((sc.OPT_IN_ENV,), ("mapping", "latest_semconv"), _latest),
    EnvVar(("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",), ("mapping",), _capture),
    EnvVar(("OTEL_BRIDGE_OPENINFERENCE",), ("semconv", "openinference"), _bool),
    EnvVar(("OTEL_BRIDGE_PROJECT_NAME",), ("semconv", "project_name"), _text),
    EnvVar(("OTEL_BRIDGE_REDACT_SECRETS",), ("redaction", "secrets"), _bool),
    EnvVar(("OTEL_BRIDGE_REDACT_PII",), ("redaction", "pii"), _bool),
    EnvVar(("OTEL_BRIDGE_REDACT_DENY_KEYS",), ("redaction", "deny_keys"), _list),
    EnvVar(("OTEL_BRIDGE_TOKEN",), ("auth", "token"), _text),
    EnvVar(("OTEL_BRIDGE_MAX_MEMORY_MB",), ("limits", "max_memory_mb"), _megabytes),
    EnvVar(("OTEL_BRIDGE_CORS_ORIGINS",), ("cors", "allow_origins"), _list),
    EnvVar(("OTEL_BRIDGE_FEED_URL",), ("feed", "backend"), _text),
)
"""Everything that is not one signal's exporter."""

ALL_VARS: Final = (*TRACES_VARS, *METRICS_VARS, *BRIDGE_VARS)


# -- readers ---------------------------------------------------------------------


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = environ.get(name)
        if value is not None and value.strip() != "":
            return name, value.strip()
    return None


def _put(doc: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    if not path:
        assert isinstance(value, dict)
        for key, item in value.items():
            _put(doc, (key,), item)
        return
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    leaf = path[-1]
    old = doc.get(leaf)
    doc[leaf] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value


def read_env(
    environ: Mapping[str, str], table: tuple[EnvVar, ...], doc: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The settings document ``table`` reads from ``environ`` (added to ``doc``)."""
    out: dict[str, Any] = {} if doc is None else doc
    for var in table:
        found = _first(environ, var.names)
        if found is None:
            continue
        value = var.convert(*found)
        if value is not KEEP:
            _put(out, var.path, value)
    return out


def _signal_env(environ: Mapping[str, str], signal: str, table: tuple[EnvVar, ...]) -> dict[str, Any]:
    """One signal's exporter: its own endpoint as is (per the spec), else the generic one plus ``/v1/<signal>``."""
    doc: dict[str, Any] = {}
    own = _first(environ, (f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT",))
    generic = _first(environ, ("OTEL_EXPORTER_OTLP_ENDPOINT",))
    if own is not None:
        doc["endpoint"] = own[1]
    elif generic is not None:
        protocol = _first(environ, (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"))
        grpc = protocol is not None and protocol[1] == "grpc"
        doc["endpoint"] = generic[1] if grpc else generic[1].rstrip("/") + f"/v1/{signal.lower()}"
    return read_env(environ, table, doc)


def traces_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``Settings.otlp`` from the environment."""
    return _signal_env(environ, "TRACES", TRACES_VARS)


def metrics_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``Settings.metrics`` from the environment."""
    return _signal_env(environ, "METRICS", METRICS_VARS)


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings document the environment gives: both signals, then the rest."""
    out = read_env(environ, BRIDGE_VARS)
    for key, doc in (("otlp", traces_env(environ)), ("metrics", metrics_env(environ))):
        if doc:
            out[key] = doc
    return out
