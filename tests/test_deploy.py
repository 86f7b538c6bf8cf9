"""The deploy kit: compose, collector, Tempo, Prometheus and Grafana files agree with each other and with
what the sidecar really serves.

No Docker engine runs here, so the stack itself is not started: each file is parsed, every mounted file
must exist, every endpoint must name a real service on a port that service listens on, every image is
pinned, and every metric a dashboard or data source queries must be one that a real sidecar (under the
demo agent's load) or the collector's spanmetrics connector produces. The dashboard's queries are also
run against a real Prometheus scraping that sidecar, which proves they parse and that they return data.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from otel_bridge.config import DEFAULT_PORT
from otel_bridge.demo import DemoAgent
from otel_bridge.sinks.metric_model import MetricKind
from otel_bridge.sinks.prometheus import metric_name
from tests.support.prometheus import PROMETHEUS_BIN, SKIP_REASON, Prometheus, exposed_names, parse_text
from tests.support.server import BridgeProcess

REPO = pathlib.Path(__file__).resolve().parents[1]
_ENV_DEFAULT = re.compile(r"\$\{env:[A-Z0-9_]+:-([^}]*)\}")


def as_compose_runs_it(path: str) -> Any:
    """A collector-family config with every ``${env:NAME:-default}`` at its default (compose sets none)."""
    text = (REPO / path).read_text()
    assert "${env:" not in _ENV_DEFAULT.sub("", text), f"{path}: an env reference without a compose default"
    return yaml.safe_load(_ENV_DEFAULT.sub(lambda m: m.group(1), text))


COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
COLLECTOR = as_compose_runs_it("collector-config/collector.yaml")
GATEWAY_AGENT = as_compose_runs_it("collector-config/gateway/agent.yaml")
GATEWAY = as_compose_runs_it("collector-config/gateway/gateway.yaml")
JAEGER_CONFIG = as_compose_runs_it("jaeger/config.yaml")
TEMPO = yaml.safe_load((REPO / "tempo/tempo.yaml").read_text())
PROMETHEUS_CONFIG = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
DATASOURCES = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
DASHBOARD_PROVIDERS = yaml.safe_load((REPO / "grafana/provisioning/dashboards/dashboards.yaml").read_text())
DASHBOARD = json.loads((REPO / "grafana/dashboards/genai.json").read_text())


def _jaeger_ports() -> dict[str, int]:
    """The ports jaeger/config.yaml (which compose mounts) listens on."""
    receivers = JAEGER_CONFIG["receivers"]["otlp"]["protocols"]
    extensions = JAEGER_CONFIG["extensions"]
    return {
        "otlp_grpc": int(receivers["grpc"]["endpoint"].rsplit(":", 1)[1]),
        "otlp_http": int(receivers["http"]["endpoint"].rsplit(":", 1)[1]),
        "ui": int(extensions["jaeger_query"]["http"]["endpoint"].rsplit(":", 1)[1]),
        "health": int(extensions["healthcheckv2"]["http"]["endpoint"].rsplit(":", 1)[1]),
    }


JAEGER_PORTS = _jaeger_ports()


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def host_port(endpoint: str) -> tuple[str, int]:
    parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
    assert parsed.hostname is not None, endpoint
    assert parsed.port is not None, endpoint
    return parsed.hostname, parsed.port


def mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        yield source, target


# --- files parse, mounts exist, images pinned ----------------------------------------------------------


def test_every_service_mounts_files_that_exist_in_the_repo() -> None:
    mounted = [(name, source) for name, svc in SERVICES.items() for source, _ in mounts(svc)]
    assert mounted, "the stack mounts its configs"
    for name, source in mounted:
        assert source.startswith("./"), f"{name}: mount {source} is not a repo path"
        assert (REPO / source).exists(), f"{name}: {source} does not exist"
    for svc in SERVICES.values():
        if "build" in svc:
            assert (REPO / svc["build"] / "Dockerfile").is_file()


def test_every_image_is_pinned_to_an_explicit_tag() -> None:
    images = {name: svc["image"] for name, svc in SERVICES.items() if "build" not in svc}
    built = {svc["image"] for svc in SERVICES.values() if "build" in svc}
    for name, image in images.items():
        if image in built:
            continue  # the image compose builds from the Dockerfile
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: {image} has no explicit tag"
        assert not image.endswith(":latest"), f"{name}: {image}"
    # tests/test_collector_config.py checks these against the versions the tests build and run.
    assert images["otel-collector"].startswith("otel/opentelemetry-collector-contrib:0.")
    assert images["jaeger"].startswith("jaegertracing/jaeger:2.")
    assert images["tempo"] == "grafana/tempo:3.0.3"
    assert images["grafana"] == "grafana/grafana:13.1.3"
    assert images["prometheus"] == "prom/prometheus:v3.12.0"
    base = re.findall(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.M)[-1]  # the runtime stage
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base


def test_services_have_health_checks_except_the_shell_less_collector() -> None:
    without = {name for name, svc in SERVICES.items() if "healthcheck" not in svc}
    assert without == {"otel-collector", "demo-agent", "otel-agent", "otel-gateway-1", "otel-gateway-2"}
    assert "health_check" in COLLECTOR["service"]["extensions"]


def test_the_demo_agent_is_a_profile_on_by_default() -> None:
    assert SERVICES["demo-agent"]["profiles"] == ["demo"]
    assert "COMPOSE_PROFILES=demo" in (REPO / ".env").read_text().splitlines()
    assert "DemoAgent('http://otel-bridge:8318')" in SERVICES["demo-agent"]["command"][0]


def test_published_ports_are_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for name, svc in SERVICES.items():
        for mapping in svc.get("ports", []):
            host = mapping.split(":")[0]
            assert f":{host}" in readme or f"localhost:{host}" in readme, f"{name}: port {host} not in README"


def test_the_fleet_profile_runs_the_configuration_the_fleet_tests_run() -> None:
    from otel_bridge.config import load_settings
    from tests.support.fleet import FLEET_CONFIG

    fleet = {name for name, svc in SERVICES.items() if "fleet" in svc.get("profiles", [])}
    assert fleet == {"redis", "sidecar-1", "sidecar-2", "feed"}
    redis = SERVICES["redis"]
    assert "--appendonly" in redis["command"]  # resume ids survive a Redis restart
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    mount = f"./{FLEET_CONFIG.relative_to(REPO)}"
    for name in ("sidecar-1", "sidecar-2", "feed"):
        svc = SERVICES[name]
        (target,) = [t for source, t in mounts(svc) if source == mount]
        assert svc["command"][svc["command"].index("--config") + 1] == target, name
    for name in ("sidecar-1", "sidecar-2"):
        assert SERVICES[name]["command"][0] == "serve"
        host, port = host_port(SERVICES[name]["environment"]["OTEL_BRIDGE_FEED_URL"])
        assert (host, port) == ("redis", 6379), name
    feed = SERVICES["feed"]["command"]
    assert feed[0] == "feed"
    assert host_port(feed[feed.index("--redis") + 1]) == ("redis", 6379)
    # The file the tests run loads as it is, and names the stream the tests read.
    settings = load_settings(FLEET_CONFIG, environ={"OTEL_BRIDGE_FEED_URL": "redis://redis:6379/0"})
    assert settings.feed.redis.stream == "otel-bridge:feed"
    assert 'STREAM = "otel-bridge:feed"' in (REPO / "tests/test_fleet.py").read_text()


# --- endpoints agree across files ------------------------------------------------------------------------


def collector_listen_ports(config: dict[str, Any]) -> set[int]:
    protocols = config["receivers"]["otlp"]["protocols"]
    return {port_of(p["endpoint"]) for p in protocols.values()}


def test_the_sidecar_exports_to_the_collectors_receiver() -> None:
    env = SERVICES["otel-bridge"]["environment"]
    host, port = host_port(env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
    assert host == "otel-collector"
    assert port == port_of(COLLECTOR["receivers"]["otlp"]["protocols"]["http"]["endpoint"])
    assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].endswith("/v1/traces")
    assert SERVICES["otel-bridge"]["command"] == ["serve", "--host", "0.0.0.0"]  # listens on DEFAULT_PORT
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env  # metrics are scraped, not pushed twice


@pytest.mark.parametrize("config", [COLLECTOR, GATEWAY], ids=["collector", "gateway"])
def test_the_collector_sends_to_the_ports_jaeger_and_tempo_listen_on(config: dict[str, Any]) -> None:
    exporters = config["exporters"]
    assert set(exporters) == {"otlp_grpc/jaeger", "otlp_grpc/tempo", "prometheus"}  # the current exporter names
    jaeger_host, jaeger_port = host_port(exporters["otlp_grpc/jaeger"]["endpoint"])
    assert (jaeger_host, jaeger_port) == ("jaeger", JAEGER_PORTS["otlp_grpc"])
    for endpoint in JAEGER_CONFIG["receivers"]["otlp"]["protocols"].values():
        assert endpoint["endpoint"].startswith("0.0.0.0:")  # reachable from the collector's container
    tempo_host, tempo_port = host_port(exporters["otlp_grpc/tempo"]["endpoint"])
    tempo_receivers = TEMPO["distributor"]["receivers"]["otlp"]["protocols"]
    assert tempo_host == "tempo"
    assert tempo_receivers["grpc"]["endpoint"] == f"0.0.0.0:{tempo_port}"  # Tempo binds localhost otherwise


@pytest.mark.parametrize("config", [COLLECTOR, GATEWAY], ids=["collector", "gateway"])
def test_collector_pipelines(config: dict[str, Any]) -> None:
    pipelines = config["service"]["pipelines"]
    for pipeline in pipelines.values():
        assert pipeline["processors"][0] == "memory_limiter"
        assert "batch" in pipeline["processors"]
        for component in (*pipeline["receivers"], *pipeline["processors"], *pipeline["exporters"]):
            section = "processors" if component in pipeline["processors"] else None
            known = set(config.get(section or "receivers", {})) | set(config.get("exporters", {}))
            known |= set(config.get("connectors", {})) | set(config.get("processors", {}))
            assert component in known, component
    assert "span_metrics" in pipelines["traces"]["exporters"]
    assert "span_metrics" in pipelines["metrics"]["receivers"]
    dimensions = [d["name"] for d in config["connectors"]["span_metrics"]["dimensions"]]
    assert dimensions == ["gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model"]
    for endpoint in (p["endpoint"] for p in config["receivers"]["otlp"]["protocols"].values()):
        assert endpoint.startswith("0.0.0.0:")


def test_the_gateway_agent_routes_by_trace_id_to_the_gateway_tier() -> None:
    lb = GATEWAY_AGENT["exporters"]["load_balancing"]
    assert lb["routing_key"] == "traceID"
    gateways = [host_port(h) for h in lb["resolver"]["static"]["hostnames"]]
    assert [host for host, _ in gateways] == ["otel-gateway-1", "otel-gateway-2"]
    assert {host for host, _ in gateways} <= set(SERVICES)
    assert {port for _, port in gateways} <= collector_listen_ports(GATEWAY)
    for host, _ in gateways:
        assert SERVICES[host]["volumes"] == [
            "./collector-config/gateway/gateway.yaml:/etc/otelcol-contrib/config.yaml:ro"
        ]
    assert GATEWAY_AGENT["service"]["pipelines"]["traces"]["exporters"] == ["load_balancing"]


def test_compose_publishes_what_the_configs_listen_on() -> None:
    def published(name: str) -> set[int]:
        return {int(m.split(":")[1]) for m in SERVICES[name].get("ports", [])}

    assert published("otel-collector") == collector_listen_ports(COLLECTOR)
    assert published("jaeger") == {JAEGER_PORTS["ui"]}
    assert published("tempo") == {TEMPO["server"]["http_listen_port"]}
    assert published("otel-bridge") == {DEFAULT_PORT}
    assert published("prometheus") == {9090}
    assert published("grafana") == {3000}


def test_prometheus_scrapes_real_service_names_and_ports() -> None:
    listen = {
        "otel-bridge": {DEFAULT_PORT},
        "otel-collector": {
            port_of(COLLECTOR["exporters"]["prometheus"]["endpoint"]),
            COLLECTOR["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"],
        },
    }
    scraped = set()
    for job in PROMETHEUS_CONFIG["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = host_port(target)
                assert host in SERVICES, target
                assert port in listen[host], target
                scraped.add((host, port))
    assert ("otel-bridge", DEFAULT_PORT) in scraped
    assert {p for h, p in scraped if h == "otel-collector"} == listen["otel-collector"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]
    assert ("./prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml") in set(mounts(SERVICES["prometheus"]))


def test_grafana_datasources_point_at_real_services() -> None:
    expected_ports = {"prometheus": 9090, "tempo": TEMPO["server"]["http_listen_port"], "jaeger": JAEGER_PORTS["ui"]}
    by_type = {ds["type"]: ds for ds in DATASOURCES["datasources"]}
    assert set(by_type) == {"prometheus", "tempo", "jaeger"}
    uids = {ds["uid"] for ds in DATASOURCES["datasources"]}
    for kind, ds in by_type.items():
        host, port = host_port(ds["url"])
        assert host in SERVICES, ds["url"]
        assert port == expected_ports[kind], ds["url"]
        links = ds.get("jsonData", {})
        for key in ("tracesToMetrics", "serviceMap"):
            if key in links:
                assert links[key]["datasourceUid"] in uids
    assert by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] in uids
    assert by_type["tempo"]["jsonData"]["tracesToMetrics"]["queries"]
    assert by_type["jaeger"]["jsonData"]["tracesToMetrics"]["queries"]
    # The dashboards' provider reads the folder compose mounts, and every panel uses a provisioned data source.
    (provider,) = DASHBOARD_PROVIDERS["providers"]
    assert ("./grafana/dashboards", provider["options"]["path"]) in set(mounts(SERVICES["grafana"]))
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"]["uid"] in uids


def test_tempo_keeps_long_prompt_attributes() -> None:
    assert TEMPO["distributor"]["max_attribute_bytes"] >= 65536
    assert "ingester" not in TEMPO
    assert "compactor" not in TEMPO


# --- metric names: every query names a metric something really produces -------------------------------


def spanmetrics_names(config: dict[str, Any]) -> set[str]:
    """What the spanmetrics connector emits, as the collector's Prometheus exporter names it.

    The connector names its metrics ``<namespace>.calls`` (a monotonic sum) and ``<namespace>.duration``
    (a histogram in ``histogram.unit``), see its connector.go ``buildMetricName`` and factory.go
    ``DefaultNamespace = "traces.span.metrics"``; the exporter applies the OTel-to-Prometheus rules that
    ``metric_name`` implements (tested against the otlptranslator's own examples in test_metrics.py).
    """
    connector = config["connectors"]["span_metrics"]
    namespace = connector.get("namespace", "traces.span.metrics")
    unit = connector.get("histogram", {}).get("unit", "ms")
    calls = metric_name(f"{namespace}.calls", "", MetricKind.COUNTER)
    duration = metric_name(f"{namespace}.duration", unit, MetricKind.HISTOGRAM)
    return {calls, duration + "_bucket", duration + "_sum", duration + "_count"}


def test_spanmetrics_names_are_the_ones_documented() -> None:
    assert spanmetrics_names(COLLECTOR) == {
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_milliseconds_bucket",
        "traces_span_metrics_duration_milliseconds_sum",
        "traces_span_metrics_duration_milliseconds_count",
    }
    assert spanmetrics_names(GATEWAY) == spanmetrics_names(COLLECTOR)
    readme = (REPO / "collector-config/README.md").read_text()
    assert "traces_span_metrics_calls_total" in readme
    assert "traces_span_metrics_duration_milliseconds_bucket" in readme


_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def substitute(expr: str) -> str:
    """Grafana's variables, as a panel would send them."""
    expr = expr.replace("{$__tags}", "").replace("{$$__tags}", "")
    return expr.replace("$__rate_interval", "1m").replace("$__range", "5m").replace("$job", "otel-bridge")


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = _GROUPING.sub("", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group(0) in _KEYWORDS:
            continue  # a function or an operator
        names.add(match.group(0))
    return names


def label_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = {label.strip() for group in _GROUPING.findall(expr) for label in group[1].split(",") if label.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    return labels


def dashboard_queries() -> list[tuple[str, str]]:
    return [(p["title"], substitute(t["expr"])) for p in DASHBOARD["panels"] for t in p["targets"]]


def datasource_queries() -> list[tuple[str, str]]:
    out = []
    for ds in DATASOURCES["datasources"]:
        for q in ds.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
            out.append((f"{ds['name']}: {q['name']}", substitute(q["query"])))
    return out


def test_the_name_extractor_finds_metrics_not_functions_labels_or_keywords() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, m) (rate(a_bucket{job=~"x", e!=""}[1m]))) '
        "/ ignoring(e) group_left sum(b_total) or vector(0)"
    )
    assert metric_names(expr) == {"a_bucket", "b_total"}
    assert label_names(expr) == {"le", "m", "job", "e"}


def test_the_dashboard_covers_what_the_issue_asks() -> None:
    exprs = " ".join(e for _, e in dashboard_queries())
    for needle in (
        "gen_ai_client_token_usage_sum",  # tokens by model
        "gen_ai_client_cost_USD_total",  # cost over time
        "gen_ai_client_operation_duration_seconds_bucket",  # latency per model
        "gen_ai_execute_tool_duration_seconds_bucket",  # latency per tool
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        'error_type!=""',  # error rate
        "otel_bridge_events_received_total",  # events per second
    ):
        assert needle in exprs, needle
    assert "0.50" in exprs
    assert "0.95" in exprs


DEMO_CONFIG = """
[mapping]
run_end_grace_s = 0
sweep_interval_s = 0.05
"""


@pytest.fixture
def loaded_sidecar(bridge_server: Callable[..., BridgeProcess], tmp_path: pathlib.Path) -> tuple[BridgeProcess, str]:
    """A real sidecar after the demo agent's load (fixed seed, fast pace) and one rejected frame."""
    config = tmp_path / "bridge.toml"
    config.write_text(DEMO_CONFIG)
    bridge = bridge_server(args=["--config", str(config)])

    async def load() -> None:
        agent = DemoAgent(bridge.url, seed=7, pace=0.01)
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(12):
                await agent.one_run(client)

    asyncio.run(load())
    bad_frame = (
        b'data: {"kind": "run.started", "run_id": "r-bad"\n\ndata: {"kind": "run.started", "run_id": "r-ok"}\n\n'
    )
    response = httpx.post(
        bridge.url + "/v1/events", content=bad_frame, headers={"Content-Type": "text/event-stream"}, timeout=5
    )
    assert response.status_code == 202, response.text
    text = ""
    for _ in range(100):  # the last run span closes on the sweeper's next tick
        text = httpx.get(bridge.url + "/metrics", timeout=5).text
        if "gen_ai_invoke_agent_duration_seconds_count" in text:
            break
        asyncio.run(asyncio.sleep(0.05))
    return bridge, text


def test_every_dashboard_and_datasource_query_names_a_metric_that_is_really_produced(
    loaded_sidecar: tuple[BridgeProcess, str],
) -> None:
    _, text = loaded_sidecar
    produced = exposed_names(text) | spanmetrics_names(COLLECTOR)
    _, samples = parse_text(text)
    bridge_labels = {k for _, labels, _ in samples for k, _ in labels}
    # Labels the spanmetrics connector adds, and the ones Prometheus attaches to every target.
    known_labels = bridge_labels | {"le", "job", "instance", "service_name", "span_name", "span_kind", "status_code"}
    queries = dashboard_queries() + datasource_queries()
    assert len(queries) >= 20
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= produced, f"{title}: {sorted(names - produced)} not produced"
        assert label_names(expr) <= known_labels, f"{title}: {sorted(label_names(expr) - known_labels)}"
    # The demo load really exercised what the dashboard shows (not just declared families).
    sample_names = {name for name, _, _ in samples}
    for name in (
        "gen_ai_client_token_usage_sum",
        "gen_ai_client_cost_USD_total",
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        "gen_ai_execute_tool_duration_seconds_bucket",
        "gen_ai_invoke_agent_duration_seconds_bucket",
        "otel_bridge_events_rejected_total",
    ):
        assert name in sample_names, name


@pytest.mark.skipif(PROMETHEUS_BIN is None, reason=SKIP_REASON)
def test_every_dashboard_query_runs_on_a_real_prometheus_scraping_the_loaded_sidecar(
    loaded_sidecar: tuple[BridgeProcess, str], tmp_path: pathlib.Path
) -> None:
    bridge, _ = loaded_sidecar
    prometheus = Prometheus(tmp_path / "prometheus", {"otel-bridge": (f"127.0.0.1:{bridge.port}", "/metrics")})
    try:
        # rate() over 1m needs two scrapes.
        prometheus.wait_for("count(count_over_time(otel_bridge_events_received_total[1m]) >= 2)", bool)
        spanmetrics = spanmetrics_names(COLLECTOR)
        may_be_empty = {"Export queue"}  # 0 spans queued: a sample, but the panel may still say 0
        for title, expr in dashboard_queries():
            result = prometheus.query(expr)["result"]  # raises on a query Prometheus rejects
            if metric_names(expr) & spanmetrics or title in may_be_empty:
                continue  # no collector here: parsed and run, but no data expected
            if "dropped" in expr or "export_failed" in expr or "otel_bridge_spans_exported" in expr:
                continue  # nothing dropped or exported under this load
            if 'error_type!=""' in expr and "or vector(0)" not in expr:
                continue  # per-model error ratios exist only once a call failed
            assert result, f"{title}: no data for {expr}"
    finally:
        prometheus.stop()
