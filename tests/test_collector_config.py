"""The repository's collector and Jaeger configuration, checked by the real programs.

``otelcol-bridge validate`` (the distribution built from
``collector-config/builder.yaml``) must accept every file in
``collector-config/``, both with the compose defaults and with the loopback
addresses the tests use; the distribution must hold exactly the components the
files name; and ``docker-compose.yml`` must run the versions that are tested.
"""

from __future__ import annotations

import pathlib
import subprocess

import httpx
import pytest
import yaml

from tests.support.otelcol import (
    COLLECTOR_MISSING,
    COLLECTOR_VERSION,
    JAEGER_MISSING,
    JAEGER_VERSION,
    REPO,
    Jaeger,
    collector_binary,
    jaeger_binary,
    validate,
)

CONFIGS = sorted(
    str(p.relative_to(REPO / "collector-config"))
    for p in (REPO / "collector-config").rglob("*.yaml")
    if p.name != "builder.yaml"
)
needs_collector = pytest.mark.skipif(collector_binary() is None, reason=COLLECTOR_MISSING)


def test_there_are_configs_to_check() -> None:
    assert {"collector.yaml", "gateway/agent.yaml", "gateway/gateway.yaml"} <= set(CONFIGS)


@needs_collector
@pytest.mark.parametrize("config", CONFIGS)
def test_collector_validates_every_file_with_compose_defaults(config: str) -> None:
    result = validate(config)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_collector
def test_validate_rejects_a_broken_file(tmp_path: pathlib.Path) -> None:
    """The check above can fail: an unknown exporter in a copy of collector.yaml is refused."""
    broken = yaml.safe_load((REPO / "collector-config/collector.yaml").read_text())
    broken["service"]["pipelines"]["traces"]["exporters"].append("zipkin")
    path = REPO / "collector-config" / f".broken-{tmp_path.name}.yaml"
    path.write_text(yaml.safe_dump(broken))
    try:
        result = validate(path.name)
    finally:
        path.unlink()
    assert result.returncode != 0
    assert "zipkin" in result.stdout + result.stderr


def _component_types(config: dict[str, object]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for section in ("receivers", "processors", "exporters", "connectors", "extensions"):
        names = config.get(section) or {}
        assert isinstance(names, dict)
        out[section] = {name.split("/")[0] for name in names}
    return out


@needs_collector
def test_the_distribution_has_every_component_the_files_use() -> None:
    listed = subprocess.run([str(collector_binary()), "components"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    available = yaml.safe_load(listed.stdout)
    sections = ("receivers", "processors", "exporters", "connectors", "extensions")
    have = {section: {c["name"] for c in available.get(section) or []} for section in sections}
    for config in CONFIGS:
        used = _component_types(yaml.safe_load((REPO / "collector-config" / config).read_text()))
        for section, names in used.items():
            assert names <= have.get(section, set()), (config, section, names - have.get(section, set()))


def test_compose_runs_the_tested_versions() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    images = {name: service.get("image", "") for name, service in compose["services"].items()}
    assert images["otel-collector"] == f"otel/opentelemetry-collector-contrib:{COLLECTOR_VERSION}"
    assert images["jaeger"] == f"jaegertracing/jaeger:{JAEGER_VERSION}"
    manifest = (REPO / "collector-config/builder.yaml").read_text()
    components = yaml.safe_load(manifest)
    versions = {
        entry["gomod"].split()[1]
        for section in ("receivers", "processors", "exporters", "connectors", "extensions")
        for entry in components[section]
    }
    assert versions == {f"v{COLLECTOR_VERSION}"}, versions  # every collector module at one release
    assert components["dist"]["version"] == COLLECTOR_VERSION
    # Compose mounts the same files the tests run.
    mounts = " ".join(v for s in compose["services"].values() for v in s.get("volumes", []))
    for path in ("./collector-config/collector.yaml", "./jaeger/config.yaml"):
        assert path in mounts


@pytest.mark.skipif(jaeger_binary() is None, reason=JAEGER_MISSING)
def test_jaeger_starts_with_the_compose_config(tmp_path: pathlib.Path) -> None:
    """jaeger/config.yaml (compose mounts it) starts the built Jaeger; its query API answers.

    Built from source, Jaeger serves a placeholder page instead of its UI (the UI's assets are
    built separately and embedded only in release images); the query API is the same.
    """
    jaeger = Jaeger(tmp_path / "jaeger.log")
    try:
        services = httpx.get(f"{jaeger.query_url}/api/v3/services", timeout=5)
        assert services.status_code == 200
        assert services.json().get("services", []) == []  # memory storage starts empty
        assert jaeger.trace("0123456789abcdef0123456789abcdef") is None
    finally:
        jaeger.stop()
