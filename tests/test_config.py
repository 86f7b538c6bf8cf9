"""Settings: defaults, files, the standard OTEL_* variables, and failing fast."""

from __future__ import annotations

import pathlib

import pytest

from otel_bridge.config import ConfigError, load_settings


def test_defaults_export_nothing_and_keep_the_store() -> None:
    s = load_settings(environ={})
    assert s.otlp.endpoint is None
    assert s.store.enabled is True
    assert s.service_name == "otel-bridge"
    assert s.server.port == 8318


@pytest.mark.parametrize(
    ("env", "endpoint", "protocol"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces", "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces", "http/protobuf"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "http://c:4317",
            "grpc",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/custom"},
            "http://t/custom",
            "http/protobuf",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "http://c/v1/traces",
            "http/json",
        ),
    ],
)
def test_endpoint_resolution_follows_the_spec(env: dict[str, str], endpoint: str, protocol: str) -> None:
    s = load_settings(environ=env)
    assert (s.otlp.endpoint, s.otlp.protocol) == (endpoint, protocol)


def test_headers_timeout_compression_resource() -> None:
    s = load_settings(
        environ={
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, x=1",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x=2",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-resource,deployment.environment=prod",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "http,gen_ai_latest_experimental",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
        }
    )
    assert s.otlp.headers == {"api-key": "a b", "x": "2"}
    assert s.otlp.timeout_s == 2.5
    assert s.otlp.compression == "gzip"
    assert s.service_name == "from-resource"
    assert s.resource_attributes == {"deployment.environment": "prod"}
    assert s.mapping.latest_semconv is True
    assert s.mapping.capture_content is True


def test_service_name_variable_wins_over_resource_attributes() -> None:
    s = load_settings(environ={"OTEL_SERVICE_NAME": "svc", "OTEL_RESOURCE_ATTRIBUTES": "service.name=other"})
    assert s.service_name == "svc"


def test_traces_exporter_none_disables_export() -> None:
    s = load_settings(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_EXPORTER": "none"})
    assert s.otlp.endpoint is None


def test_toml_and_yaml_files_and_precedence(tmp_path: pathlib.Path) -> None:
    toml = tmp_path / "b.toml"
    toml.write_text('service_name = "file"\n[mapping]\nrun_idle_timeout_s = 5\n[server]\nport = 9000\n')
    yaml = tmp_path / "b.yaml"
    yaml.write_text("service_name: file\nmapping:\n  run_idle_timeout_s: 5\n")
    for path in (toml, yaml):
        s = load_settings(path, environ={"OTEL_SERVICE_NAME": "env"}, overrides={"server": {"port": 9100}})
        assert s.service_name == "env"  # env beats file
        assert s.mapping.run_idle_timeout_s == 5
        assert s.server.port == 9100  # CLI beats both


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mapping]\nnope = 1\n", "unknown field `nope`"),
        ("[mapping]\nrun_idle_timeout_s = -1\n", "run_idle_timeout_s must be > 0"),
        ("[otlp]\nprotocol = 'udp'\n", "protocol"),
        ("[server]\nport = 70000\n", "port must be 0..65535"),
        ("not toml = = =", "is not valid"),
    ],
)
def test_bad_settings_fail_fast_naming_the_setting(tmp_path: pathlib.Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ={})


def test_bad_env_values_fail_fast() -> None:
    with pytest.raises(ConfigError, match="milliseconds"):
        load_settings(environ={"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="key=value"):
        load_settings(environ={"OTEL_EXPORTER_OTLP_HEADERS": "novalue"})


def test_missing_or_unsupported_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", environ={})
    ini = tmp_path / "x.ini"
    ini.write_text("a=1")
    with pytest.raises(ConfigError, match=r"use \.toml, \.yaml or \.yml"):
        load_settings(ini, environ={})
