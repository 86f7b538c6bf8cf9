"""The real OpenTelemetry Collector and Jaeger v2, built by scripts/install-tools.sh, started per test.

Both run the repository's own configuration files (``collector-config/*.yaml``,
``jaeger/config.yaml``) unchanged: every address in those files is an
environment variable whose default is the docker-compose value, and the tests
set those variables to free loopback ports. What runs here is what users run.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import time
from collections.abc import Mapping
from typing import Any

import httpx
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.support.otlp_read import spans_from_otlp_json
from tests.support.ports import free_port
from tests.support.process import LoggedProcess

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools"


def _version(script_var: str) -> str:
    """A version pinned in scripts/install-tools.sh (one place for the build and the tests)."""
    text = (REPO / "scripts" / "install-tools.sh").read_text()
    match = re.search(rf"^{script_var}=(\S+)$", text, re.MULTILINE)
    assert match is not None, f"{script_var} is not set in scripts/install-tools.sh"
    return match.group(1)


JAEGER_VERSION = _version("JAEGER_VERSION")
COLLECTOR_VERSION = _version("COLLECTOR_VERSION")


def collector_binary() -> pathlib.Path | None:
    """The collector built from collector-config/builder.yaml (any manifest hash of this version)."""
    found = sorted(TOOLS.glob(f"otelcol-{COLLECTOR_VERSION}-*/otelcol-bridge"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def jaeger_binary() -> pathlib.Path | None:
    path = TOOLS / f"jaeger-{JAEGER_VERSION}" / "jaeger"
    return path if path.exists() else None


COLLECTOR_MISSING = (
    f"the OpenTelemetry Collector {COLLECTOR_VERSION} is not built (scripts/install-tools.sh builds it with Go)"
)
JAEGER_MISSING = f"Jaeger {JAEGER_VERSION} is not built (scripts/install-tools.sh builds it with Go)"


class _GoProcess(LoggedProcess):
    """A Go program from the collector family: a config file, env for its addresses, a health URL."""

    def __init__(
        self,
        binary: pathlib.Path,
        config: pathlib.Path,
        env: Mapping[str, str],
        health_url: str,
        log_path: pathlib.Path,
    ) -> None:
        super().__init__([str(binary), "--config", str(config)], log_path, health_url, env=env, ready_timeout=30)

    def stop(self, timeout: float = 10.0) -> int:
        return super().stop(timeout)


class Collector(_GoProcess):
    """``otelcol-bridge --config collector-config/<file>`` on loopback ports.

    ``exporters`` sets the variables that name where it sends (``JAEGER_OTLP_ENDPOINT``,
    ``TEMPO_OTLP_ENDPOINT``, ``GATEWAY_1_ENDPOINT``...); the listening addresses are
    chosen here.
    """

    what = "otel collector"

    def __init__(
        self,
        config: str,
        log_path: pathlib.Path,
        exporters: Mapping[str, str] | None = None,
        spanmetrics_flush: str = "1s",
        grpc_port: int | None = None,
    ) -> None:
        """``grpc_port``: a fixed OTLP/gRPC port (a collector restarted where others expect it)."""
        binary = collector_binary()
        assert binary is not None, COLLECTOR_MISSING
        self.grpc_port = grpc_port or free_port()
        self.http_port = free_port()
        self.health_port = free_port()
        self.prometheus_port = free_port()
        self.telemetry_port = free_port()
        env = {
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{self.prometheus_port}",
            "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
            "OTELCOL_TELEMETRY_PORT": str(self.telemetry_port),
            "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": spanmetrics_flush,
            **(exporters or {}),
        }
        super().__init__(
            binary, REPO / "collector-config" / config, env, f"http://127.0.0.1:{self.health_port}/", log_path
        )

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def telemetry(self) -> str:
        """The collector's own metrics (Prometheus text): accepted, sent, failed spans per component."""
        return httpx.get(f"http://127.0.0.1:{self.telemetry_port}/metrics", timeout=5).text


def validate(config: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``otelcol-bridge validate --config collector-config/<file>``."""
    binary = collector_binary()
    assert binary is not None, COLLECTOR_MISSING
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL")}
    full_env.update(env or {})
    return subprocess.run(
        [str(binary), "validate", "--config", str(REPO / "collector-config" / config)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Jaeger(_GoProcess):
    """Jaeger v2 with the repository's ``jaeger/config.yaml`` (memory storage) on loopback ports."""

    what = "jaeger"

    def __init__(self, log_path: pathlib.Path) -> None:
        binary = jaeger_binary()
        assert binary is not None, JAEGER_MISSING
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.query_port = free_port()
        self.health_port = free_port()
        self.telemetry_port = free_port()
        env = {
            "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{self.query_port}",
            "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
            "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "JAEGER_TELEMETRY_HOST": "127.0.0.1",
            "JAEGER_TELEMETRY_PORT": str(self.telemetry_port),
        }
        super().__init__(
            binary, REPO / "jaeger" / "config.yaml", env, f"http://127.0.0.1:{self.health_port}/status", log_path
        )

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def stored_spans(self) -> int:
        """Spans Jaeger has written to its storage so far (its own telemetry)."""
        text = httpx.get(f"http://127.0.0.1:{self.telemetry_port}/metrics", timeout=5).text
        sent = re.findall(r"^otelcol_exporter_sent_spans_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
        return int(sum(float(v) for v in sent))

    def wait_stored(self, spans: int, timeout: float = 30.0) -> None:
        """Until Jaeger has stored ``spans`` spans in all. Read a trace only then: Jaeger's memory storage
        keeps the warnings its read-time adjusters add, so a trace read before its parent spans arrive
        keeps "parent span ID ... is not in the trace" on its children for good."""
        deadline = time.monotonic() + timeout
        while (stored := self.stored_spans()) < spans:
            assert time.monotonic() < deadline, f"Jaeger stored {stored} of {spans} spans"
            time.sleep(0.1)

    def trace(self, trace_id: str, *, raw: bool = False) -> dict[str, Any] | None:
        """``GET /api/v3/traces/{id}``: the trace as OTLP/JSON (``{"result": {"resourceSpans": ...}}``), or None.

        ``raw``: as stored, without the adjusters the UI's reads apply (de-duplication, clock skew, warnings).
        """
        params = {"raw_traces": "true"} if raw else {}
        response = httpx.get(f"{self.query_url}/api/v3/traces/{trace_id}", params=params, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def find_traces(
        self, service: str, start_min_ns: int, start_max_ns: int, operation: str | None = None
    ) -> list[tuple[dict[str, Any], Span]]:
        """``GET /api/v3/traces``: the spans of every trace of ``service`` that has a span starting in the window
        (and named ``operation``), as the UI's search finds them."""
        params = {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(start_min_ns),
            "query.start_time_max": _rfc3339(start_max_ns),
            "query.num_traces": "100",
        }
        if operation is not None:
            params["query.operation_name"] = operation
        response = httpx.get(f"{self.query_url}/api/v3/traces", params=params, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return spans_from_otlp_json(response.json().get("result", {}))

    def find_by_tag(self, service: str, tags: Mapping[str, str], lookback: str = "2h") -> list[dict[str, Any]]:
        """``GET /api/traces?tags=...``, the UI's tag search (the v3 API has no attribute filter): Jaeger-model
        traces (``{"traceID", "spans": [{"operationName", "references", "tags"...}]}``)."""
        params = {"service": service, "tags": json.dumps(dict(tags)), "lookback": lookback, "limit": "100"}
        response = httpx.get(f"{self.query_url}/api/traces", params=params, timeout=10)
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json().get("data") or []
        return data


def _rfc3339(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest:09d}Z"
