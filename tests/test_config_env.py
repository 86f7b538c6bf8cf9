"""Environment variables: every one the readers' tables list fails fast, naming itself, on a bad value."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from otel_bridge.config import ConfigError, env, load_settings

# A value each converter rejects. A new converter must be added here or to ACCEPTS_ANY_TEXT,
# so every variable a table lists is covered the moment it is listed.
BAD_VALUE: dict[env.Convert, str] = {
    env._ms: "soon",
    env._count: "many",
    env._megabytes: "lots",
    env._pairs: "novalue",
    env._resource: "novalue",
    env._protocol: "carrier-pigeon",
    env._compression: "zip",
    env._metrics_exporter: "console",
    env._temporality: "delta",
}
ACCEPTS_ANY_TEXT: set[env.Convert] = {
    env._text,
    env._bool,  # the spec: anything but "true" is false
    env._list,
    env._capture,
    env._latest,
    env._traces_exporter,
}

CASES = [(name, BAD_VALUE[var.convert]) for var in env.ALL_VARS if var.convert in BAD_VALUE for name in var.names]


def test_every_converter_has_a_bad_value_or_takes_any_text() -> None:
    assert {var.convert for var in env.ALL_VARS} <= BAD_VALUE.keys() | ACCEPTS_ANY_TEXT
    assert not BAD_VALUE.keys() & ACCEPTS_ANY_TEXT


def test_the_tables_name_every_variable_once_per_signal() -> None:
    for table in (env.TRACES_VARS, env.METRICS_VARS, env.BRIDGE_VARS):
        names = [name for var in table for name in var.names]
        assert len(names) == len(set(names))
    assert len(CASES) >= 20


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v}" for n, v in CASES])
def test_a_bad_value_is_a_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(name)):
        load_settings(environ={name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [("OTEL_BSP_MAX_QUEUE_SIZE", "0"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-3"), ("OTEL_BSP_SCHEDULE_DELAY", "0")],
)
def test_out_of_range_numbers_name_the_variable_too(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(name)):
        load_settings(environ={name: value})


def test_the_signal_variable_wins_over_the_generic_one_and_headers_merge() -> None:
    s = load_settings(
        environ={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=3",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "500",
            "OTEL_METRIC_EXPORT_TIMEOUT": "9000",
        }
    )
    assert (s.otlp.endpoint, s.otlp.protocol) == ("http://c:4318/v1/traces", "http/protobuf")
    assert (s.metrics.endpoint, s.metrics.protocol) == ("http://c:4318/", "grpc")
    assert s.otlp.headers == {"a": "1", "b": "3"}
    assert s.metrics.headers == {"a": "1", "b": "2"}
    assert (s.otlp.timeout_s, s.metrics.timeout_s) == (0.5, 2.0)


def test_serve_with_a_bad_variable_prints_one_line_and_exits_2_without_a_traceback() -> None:
    environ = {**os.environ, "OTEL_BSP_MAX_QUEUE_SIZE": "lots"}
    proc = subprocess.run(
        [sys.executable, "-m", "otel_bridge", "serve", "--port", "0"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "otel-bridge: OTEL_BSP_MAX_QUEUE_SIZE must be a positive whole number, got 'lots'\n"
