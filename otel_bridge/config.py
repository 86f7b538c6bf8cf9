"""Settings with documented defaults, validated once at startup.

Precedence, lowest first: built-in defaults, the ``--config`` file (TOML or
YAML), the standard ``OTEL_*`` environment variables, command-line flags.
A bad value fails fast with a message that names the setting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import msgspec

from otel_bridge import semconv as sc

DEFAULT_PORT = 8318


class ConfigError(ValueError):
    """A setting is missing, unknown or out of range. The message says which."""


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


class MappingSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How events become spans, and every bound on the mapper's memory."""

    max_open_runs: int = 10_000
    """Runs open at once; past it the least recently active run is closed early."""
    max_open_spans_per_run: int = 1_000
    """Open LLM/tool/step spans per run; past it the oldest is closed."""
    max_events_per_span: int = 128
    """Span events per span (the SDK default); extra ones are counted, not kept."""
    max_finished_runs: int = 10_000
    """Finished runs remembered so that late events join the same trace."""
    max_event_ids_per_run: int = 100_000
    """Producer event ids remembered per open run, so a re-sent event is mapped once."""
    run_idle_timeout_s: float = 300.0
    """A run with no event for this long is closed."""
    span_timeout_s: float = 600.0
    """A span with no event of its own for this long is closed with status ERROR."""
    run_end_grace_s: float = 1.0
    """How long a run stays open after its terminal event, for stragglers."""
    sweep_interval_s: float = 1.0
    """How often timeouts are checked."""
    capture_content: bool = False
    """Record prompts, responses, tool arguments/results and thinking text."""
    attribute_max_length: int = 4096
    """Longest string attribute; longer JSON is replaced by a valid marker object."""
    chunk_events: bool = False
    """One span event per streamed chunk (capped by max_events_per_span)."""
    latest_semconv: bool = False
    """Emit the newer, unsettled GenAI names (gen_ai_latest_experimental)."""
    run_marker_after_s: float = 30.0
    """A run still open this long gets a short "in progress" span (a child of its root, which is
    exported only when the run ends), so backends can find a long run while it runs; 0 turns it off."""

    def __post_init__(self) -> None:
        for name in ("max_open_runs", "max_open_spans_per_run", "max_events_per_span", "max_finished_runs"):
            _positive(name, getattr(self, name))
        for name in ("run_idle_timeout_s", "span_timeout_s", "sweep_interval_s", "attribute_max_length"):
            _positive(name, getattr(self, name))
        if self.run_end_grace_s < 0:
            raise ValueError("run_end_grace_s must be >= 0")
        if self.run_marker_after_s < 0:
            raise ValueError("run_marker_after_s must be >= 0 (0 turns the marker off)")
        if self.attribute_max_length < 128:
            raise ValueError("attribute_max_length must be >= 128")


Protocol = Literal["grpc", "http/protobuf", "http/json"]
Compression = Literal["gzip", "none"]


class OtlpEndpoint(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where and how one OTLP signal is sent; what the transports in ``sinks/otlp.py`` need."""

    endpoint: str | None = None
    """Full URL for HTTP (``.../v1/traces``, ``.../v1/metrics``); ``host:port`` or URL for gRPC; ``None``: off."""
    protocol: Protocol = "http/protobuf"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout_s: float = 10.0
    """Per-export deadline (for traces, retries included)."""
    compression: Compression = "none"
    insecure: bool | None = None
    """gRPC without TLS; ``None`` decides from the scheme (http:// is insecure)."""
    certificate: str | None = None
    """CA bundle for TLS endpoints."""

    def __post_init__(self) -> None:
        _positive("timeout_s", self.timeout_s)


class OtlpSettings(OtlpEndpoint, kw_only=True, forbid_unknown_fields=True):
    """OTLP trace export. ``endpoint=None`` means no export (embedded store only)."""

    max_batch_spans: int = 512
    schedule_delay_s: float = 1.0
    """Longest a finished span waits before its batch is sent."""
    max_queue_spans: int = 20_000
    """Spans waiting to be exported; past it new spans are dropped and counted."""
    max_retry_s: float = 30.0
    """Total time spent retrying one batch on transient failures."""
    worker_process: bool = True
    """Encode and send in a child process (the second core); spans cross a pipe as msgpack."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("max_batch_spans", "schedule_delay_s", "max_queue_spans", "max_retry_s"):
            _positive(name, getattr(self, name))


class StoreSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The embedded in-memory trace store behind ``/v1/traces`` and the viewer."""

    enabled: bool = True
    max_traces: int = 1_000
    """Recent traces kept; the oldest is evicted first."""
    max_spans_per_trace: int = 10_000
    """Spans kept per trace; extra ones are counted, not kept."""

    def __post_init__(self) -> None:
        _positive("max_traces", self.max_traces)
        _positive("max_spans_per_trace", self.max_spans_per_trace)


class IngestSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/events``."""

    max_body_bytes: int = 10 * 1024 * 1024
    """Larger bodies get 413."""
    max_errors_reported: int = 20
    """How many per-event errors a response lists (all are counted)."""

    def __post_init__(self) -> None:
        _positive("max_body_bytes", self.max_body_bytes)


LagPolicy = Literal["resync", "disconnect"]


class FeedSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The live feed ``GET /v1/stream``: every bound on its memory, and how it treats slow clients."""

    enabled: bool = True
    ring_size: int = 10_000
    """Recent events kept for ``Last-Event-ID`` resume and lag resync; older ones are reported as missed."""
    ring_max_bytes: int = 64 * 1024 * 1024
    """The ring's framed bytes; past it the oldest events leave early (large captured content)."""
    queue_size: int = 1_000
    """Events waiting for one subscriber; past it that subscriber lags (see lag_policy)."""
    max_subscribers: int = 1_000
    """Open feed connections; one more gets 503."""
    lag_policy: LagPolicy = "resync"
    """A lagging subscriber gets a ``lagged`` event, then either the events it lost that are still in
    the ring (``resync``) or the end of its stream (``disconnect``, the client resumes with Last-Event-ID)."""
    heartbeat_s: float = 15.0
    """Interval of the ``: heartbeat`` comments that keep idle connections and proxies alive."""
    retry_ms: int = 2_000
    """The ``retry:`` hint: how long an EventSource waits before it reconnects."""
    send_timeout_s: float = 10.0
    """A write that has not gone out after this long cuts the connection (a frozen client)."""
    trace_url_template: str | None = None
    """Link put on every event, e.g. ``http://localhost:16686/trace/{trace_id}`` ({trace_id}, {span_id})."""

    def __post_init__(self) -> None:
        for name in ("ring_size", "ring_max_bytes", "queue_size", "max_subscribers"):
            _positive(name, getattr(self, name))
        for name in ("heartbeat_s", "retry_ms", "send_timeout_s"):
            _positive(name, getattr(self, name))
        if self.trace_url_template is not None:
            try:
                self.trace_url_template.format(trace_id="0" * 32, span_id="0" * 16)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"trace_url_template may only use {{trace_id}} and {{span_id}}: {self.trace_url_template!r}"
                ) from exc


class AuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An optional bearer token for ingest, the feed and the trace API (env ``OTEL_BRIDGE_TOKEN``)."""

    token: str | None = None
    """``None`` leaves the API open (the default, for a sidecar on loopback)."""

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < 8:
            raise ValueError("auth token must be at least 8 characters")


class CorsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Browser origins allowed to call the API (env ``OTEL_BRIDGE_CORS_ORIGINS``, comma separated)."""

    allow_origins: list[str] = msgspec.field(default_factory=list)
    """Exact origins such as ``http://localhost:3000``; ``*`` allows any. Empty: no CORS headers."""


SourceKind = Literal["sse", "openintent"]


class SourceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One upstream stream the sidecar subscribes to (``[[sources]]``, or ``serve --subscribe``).

    ``kind = "sse"`` is any SSE endpoint, decoded by ``dialect`` (detected when
    unset). ``kind = "openintent"`` follows OpenIntent intents, agents and
    portfolios and repairs the server's lossy SSE from its event log; ``url``
    is then the server's base URL, or one of its ``/api/v1/subscribe/...``
    URLs. Unset ``kind``: ``openintent`` for such a subscribe URL, else ``sse``.
    """

    url: str
    name: str | None = None
    """Shown on ``/v1/sources`` and recorded as the events' source; default: from the URL."""
    kind: SourceKind | None = None
    dialect: str | None = None
    """Force a dialect (``sse`` sources); unset: detected from the first frames."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """Sent on every request, e.g. ``{"X-API-Key" = "..."}`` or ``Authorization``."""
    intents: list[str] = msgspec.field(default_factory=list)
    """``openintent``: intent ids to follow."""
    agents: list[str] = msgspec.field(default_factory=list)
    """``openintent``: agent ids whose assigned intents are followed."""
    portfolios: list[str] = msgspec.field(default_factory=list)
    """``openintent``: portfolio ids whose member intents are followed."""
    backoff_initial_s: float = 0.5
    """First reconnect delay; doubles per failed attempt (with jitter) up to ``backoff_max_s``."""
    backoff_max_s: float = 30.0
    read_timeout_s: float | None = None
    """A stream silent for this long is reconnected; unset: never (``openintent``: 90 s, it pings)."""
    reconcile_interval_s: float = 5.0
    """``openintent``: how often the event log is re-read even when the SSE stream is quiet."""
    page_size: int = 200
    """``openintent``: events per event-log page (the server allows 1..1000)."""

    def __post_init__(self) -> None:
        scheme = self.url.split("://", 1)[0].lower() if "://" in self.url else ""
        if scheme not in ("http", "https"):
            raise ValueError(f"source url must be http:// or https://, got {self.url!r}")
        for name in ("backoff_initial_s", "backoff_max_s", "reconcile_interval_s"):
            _positive(name, getattr(self, name))
        if self.read_timeout_s is not None:
            _positive("read_timeout_s", self.read_timeout_s)
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        if not 1 <= self.page_size <= 1000:
            raise ValueError(f"page_size must be 1..1000, got {self.page_size}")


class ServerSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")


class MetricsSettings(OtlpEndpoint, kw_only=True, forbid_unknown_fields=True):
    """GenAI metrics derived from finished spans: ``GET /metrics`` and an optional OTLP metrics push.

    The endpoint comes from ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``
    (``/v1/metrics`` appended for HTTP); temporality is always cumulative.
    """

    enabled: bool = True
    """Derive metrics from spans; ``GET /metrics`` serves them with the bridge's health figures."""
    export_interval_s: float = 60.0
    """How often the cumulative state is pushed (``OTEL_METRIC_EXPORT_INTERVAL``, in ms there)."""
    max_series_per_metric: int = 2_000
    """Attribute sets kept per metric; past it measurements go to one ``otel.metric.overflow`` series."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("export_interval_s", "max_series_per_metric"):
            _positive(name, getattr(self, name))


class PricingSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Cost of LLM calls (``gen_ai.usage.cost``) from a price table per model."""

    enabled: bool = True
    builtin: bool = True
    """Start from the table shipped in ``otel_bridge/data/prices.toml``."""
    file: str | None = None
    """A TOML or JSON price table whose models extend or override the shipped ones
    (env ``OTEL_BRIDGE_PRICES_FILE``)."""


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything the bridge needs; ``create_app(settings)`` builds from it alone."""

    service_name: str = "otel-bridge"
    resource_attributes: dict[str, str] = msgspec.field(default_factory=dict)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    mapping: MappingSettings = msgspec.field(default_factory=MappingSettings)
    otlp: OtlpSettings = msgspec.field(default_factory=OtlpSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    pricing: PricingSettings = msgspec.field(default_factory=PricingSettings)
    feed: FeedSettings = msgspec.field(default_factory=FeedSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    cors: CorsSettings = msgspec.field(default_factory=CorsSettings)
    sources: list[SourceSettings] = msgspec.field(default_factory=list)
    """Upstream streams to subscribe to (``[[sources]]``)."""


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


def _parse_pairs(value: str, what: str) -> dict[str, str]:
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


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _ms(name: str, value: str) -> float:
    try:
        return float(value) / 1000.0
    except ValueError as exc:
        raise ConfigError(f"{name} must be milliseconds, got {value!r}") from exc


def metrics_env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Metrics settings from the standard variables: the ``_METRICS_`` form wins over the generic one."""
    out: dict[str, Any] = {}

    def pick(suffix: str) -> str | None:
        return _env(environ, f"OTEL_EXPORTER_OTLP_METRICS_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}")

    protocol = pick("PROTOCOL")
    if protocol is not None:
        out["protocol"] = protocol
    specific = _env(environ, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    generic = _env(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if specific is not None:
        out["endpoint"] = specific  # used as is, per the spec
    elif generic is not None:
        out["endpoint"] = generic if protocol == "grpc" else generic.rstrip("/") + "/v1/metrics"
    headers: dict[str, str] = {}
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"):
        value = _env(environ, name)
        if value is not None:
            headers.update(_parse_pairs(value, name))
    if headers:
        out["headers"] = headers
    timeout = pick("TIMEOUT")
    export_timeout = _env(environ, "OTEL_METRIC_EXPORT_TIMEOUT")
    if timeout is not None:
        out["timeout_s"] = _ms("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", timeout)
    elif export_timeout is not None:
        out["timeout_s"] = _ms("OTEL_METRIC_EXPORT_TIMEOUT", export_timeout)
    for suffix, key in (("COMPRESSION", "compression"), ("CERTIFICATE", "certificate")):
        value = pick(suffix)
        if value is not None:
            out[key] = value
    insecure = pick("INSECURE")
    if insecure is not None:
        out["insecure"] = insecure.lower() == "true"
    interval = _env(environ, "OTEL_METRIC_EXPORT_INTERVAL")
    if interval is not None:
        out["export_interval_s"] = _ms("OTEL_METRIC_EXPORT_INTERVAL", interval)
    temporality = _env(environ, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
    if temporality is not None and temporality.lower() != "cumulative":
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE={temporality}: only cumulative is supported"
        )
    exporter = _env(environ, "OTEL_METRICS_EXPORTER")
    if exporter is not None:
        if exporter in ("none", "prometheus"):
            out["endpoint"] = None  # pull only: GET /metrics stays on
        elif exporter != "otlp":
            raise ConfigError(f"OTEL_METRICS_EXPORTER={exporter}: supported values are otlp, prometheus, none")
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from the standard OpenTelemetry environment variables."""
    out: dict[str, Any] = {}
    metrics = metrics_env_overrides(environ)
    if metrics:
        out["metrics"] = metrics
    prices = _env(environ, "OTEL_BRIDGE_PRICES_FILE")
    if prices is not None:
        out["pricing"] = {"file": prices}
    otlp: dict[str, Any] = {}
    protocol = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol is not None:
        otlp["protocol"] = protocol
    traces_endpoint = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    endpoint = _env(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if traces_endpoint is not None:
        otlp["endpoint"] = traces_endpoint  # used as is, per the spec
    elif endpoint is not None:
        otlp["endpoint"] = signal_endpoint(endpoint, protocol or "http/protobuf")
    headers = _env(environ, "OTEL_EXPORTER_OTLP_HEADERS")
    if headers is not None:
        otlp["headers"] = _parse_pairs(headers, "OTEL_EXPORTER_OTLP_HEADERS")
    traces_headers = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
    if traces_headers is not None:
        otlp["headers"] = {
            **otlp.get("headers", {}),
            **_parse_pairs(traces_headers, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
        }
    timeout = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    if timeout is not None:
        try:
            otlp["timeout_s"] = float(timeout) / 1000.0  # the spec's unit is milliseconds
        except ValueError as exc:
            raise ConfigError(f"OTEL_EXPORTER_OTLP_TIMEOUT must be milliseconds, got {timeout!r}") from exc
    compression = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
    if compression is not None:
        otlp["compression"] = compression
    insecure = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE")
    if insecure is not None:
        otlp["insecure"] = insecure.lower() == "true"
    certificate = _env(environ, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE")
    if certificate is not None:
        otlp["certificate"] = certificate
    delay = _env(environ, "OTEL_BSP_SCHEDULE_DELAY")
    if delay is not None:
        otlp["schedule_delay_s"] = float(delay) / 1000.0
    batch = _env(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    if batch is not None:
        otlp["max_batch_spans"] = int(batch)
    queue = _env(environ, "OTEL_BSP_MAX_QUEUE_SIZE")
    if queue is not None:
        otlp["max_queue_spans"] = int(queue)
    if _env(environ, "OTEL_TRACES_EXPORTER") == "none":
        otlp["endpoint"] = None
    if otlp:
        out["otlp"] = otlp
    resource = _env(environ, "OTEL_RESOURCE_ATTRIBUTES")
    if resource is not None:
        attrs = _parse_pairs(resource, "OTEL_RESOURCE_ATTRIBUTES")
        if sc.SERVICE_NAME in attrs:
            out["service_name"] = attrs.pop(sc.SERVICE_NAME)
        out["resource_attributes"] = attrs
    service = _env(environ, "OTEL_SERVICE_NAME")
    if service is not None:
        out["service_name"] = service  # wins over service.name in the resource attributes
    mapping: dict[str, Any] = {}
    if sc.latest_experimental(environ.get(sc.OPT_IN_ENV)):
        mapping["latest_semconv"] = True
    capture = _env(environ, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    if capture is not None:
        mapping["capture_content"] = capture.upper() in ("SPAN_ONLY", "SPAN_AND_EVENT", "TRUE")
    if mapping:
        out["mapping"] = mapping
    token = _env(environ, "OTEL_BRIDGE_TOKEN")
    if token is not None:
        out["auth"] = {"token": token}
    origins = _env(environ, "OTEL_BRIDGE_CORS_ORIGINS")
    if origins is not None:
        out["cors"] = {"allow_origins": [o.strip() for o in origins.split(",") if o.strip()]}
    return out


def signal_endpoint(base: str, protocol: str) -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` to the traces endpoint: HTTP appends ``/v1/traces``."""
    if protocol == "grpc":
        return base
    return base.rstrip("/") + "/v1/traces"


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
        return msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
