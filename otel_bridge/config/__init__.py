"""Settings with documented defaults, validated once at startup.

Precedence, lowest first: built-in defaults, the ``--config`` file (TOML or
YAML), the environment variables (:mod:`.env`), command-line flags
(``overrides``). A bad value fails fast with a :class:`ConfigError` that names
the setting or the variable. The settings structs are in :mod:`.settings`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from otel_bridge.config.base import ConfigError, redact_url
from otel_bridge.config.env import env_overrides
from otel_bridge.config.feed import MEMORY_FEED, FeedRedisSettings, FeedSettings, LagPolicy
from otel_bridge.config.settings import (
    DEFAULT_PORT,
    MEMORY_QUEUE,
    AuthSettings,
    Compression,
    CorsSettings,
    IngestSettings,
    LimitsSettings,
    MappingSettings,
    McpSettings,
    MetricsSettings,
    OtlpEndpoint,
    OtlpProtocol,
    OtlpSettings,
    PricingSettings,
    RedactionSettings,
    SemconvSettings,
    ServerSettings,
    Settings,
    SourceKind,
    SourceSettings,
    StoreSettings,
)

__all__ = [
    "DEFAULT_PORT",
    "MEMORY_FEED",
    "MEMORY_QUEUE",
    "AuthSettings",
    "Compression",
    "ConfigError",
    "CorsSettings",
    "FeedRedisSettings",
    "FeedSettings",
    "IngestSettings",
    "LagPolicy",
    "LimitsSettings",
    "MappingSettings",
    "McpSettings",
    "MetricsSettings",
    "OtlpEndpoint",
    "OtlpProtocol",
    "OtlpSettings",
    "PricingSettings",
    "RedactionSettings",
    "SemconvSettings",
    "ServerSettings",
    "Settings",
    "SourceKind",
    "SourceSettings",
    "StoreSettings",
    "default_queue_dir",
    "env_overrides",
    "load_settings",
    "read_config_file",
    "redact_url",
]


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) settings file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            data: object = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {path}: use .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config file {path} is not valid: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError, without importing yaml at module load
        raise ConfigError(f"config file {path} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a table/mapping")
    return data


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build validated settings: defaults < file < environment < overrides."""
    data: dict[str, Any] = {}
    if config_file is not None:
        data = read_config_file(config_file)
    data = _merge(data, env_overrides(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, overrides)
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
    if settings.otlp.endpoint and settings.otlp.queue_dir is None:
        queue_dir = str(default_queue_dir(os.environ if environ is None else environ))
        settings.otlp = msgspec.structs.replace(settings.otlp, queue_dir=queue_dir)
    return settings


def default_queue_dir(environ: Mapping[str, str]) -> Path:
    """``otel-bridge/export-queue`` under the XDG state folder (``~/.local/state`` when unset)."""
    state = environ.get("XDG_STATE_HOME", "").strip()
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "otel-bridge" / "export-queue"
