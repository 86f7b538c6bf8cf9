"""The settings themselves: one struct per part of the bridge, each with documented defaults.

Every struct validates its own values when it is built (``__post_init__``), so
a bad value fails at startup with a message that names the setting. Where the
values come from is :mod:`otel_bridge.config` (file and overrides) and
:mod:`otel_bridge.config.env` (environment variables).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from otel_bridge.config.base import positive
from otel_bridge.config.feed import FeedSettings

DEFAULT_PORT = 8318


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
    max_event_ids: int = 200_000
    """Producer event ids remembered across all runs (least recently seen forgotten first, ~170 B each),
    so a re-sent event is mapped once; each one forgotten is counted."""
    max_open_spans: int = 200_000
    """Open spans across all runs (about 0.65 kB each, bench/bench_open_spans.py: ~130 MB at the default);
    past it the least recently active runs are closed early. At least ``max_open_spans_per_run``."""
    run_idle_timeout_s: float = 300.0
    """A run with no event for this long is closed."""
    span_timeout_s: float = 600.0
    """A span with no event of its own for this long is closed with status ERROR."""
    run_end_grace_s: float = 1.0
    """How long a run stays open after its terminal event, for stragglers; 0 closes it (and exports its
    root span) with the batch that ended it."""
    sweep_interval_s: float = 1.0
    """How often timeouts are checked."""
    capture_content: bool = False
    """Record prompts, responses, tool arguments/results and thinking text."""
    attribute_max_length: int = 4096
    """Longest string attribute; longer JSON is replaced by a valid marker object."""
    chunk_events: bool = False
    """One span event per streamed chunk (capped by max_events_per_span)."""
    latest_semconv: bool = False
    """Emit the GenAI names of semantic-conventions-genai v0.1.0 instead of v1.41.0 on spans, metrics and
    the live feed (``OTEL_SEMCONV_STABILITY_OPT_IN`` containing ``gen_ai_latest_experimental``)."""
    content_events: bool = False
    """Captured content also as a ``gen_ai.client.inference.operation.details`` span event
    (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_AND_EVENT``)."""
    id_salt: str = ""
    """Mixed into every derived trace id (``replay --salt``): ids are deterministic, so the same capture
    exported twice is the same traces, which a backend keeps once; another salt gives new traces."""
    run_marker_after_s: float = 30.0
    """A run still open this long gets a short "in progress" span (a child of its root, which is
    exported only when the run ends), so backends can find a long run while it runs; 0 turns it off."""

    def __post_init__(self) -> None:
        for name in (
            "max_open_runs",
            "max_open_spans_per_run",
            "max_events_per_span",
            "max_finished_runs",
            "max_event_ids",
        ):
            positive(name, getattr(self, name))
        for name in ("run_idle_timeout_s", "span_timeout_s", "sweep_interval_s", "attribute_max_length"):
            positive(name, getattr(self, name))
        if self.run_end_grace_s < 0:
            raise ValueError("run_end_grace_s must be >= 0")
        if self.run_marker_after_s < 0:
            raise ValueError("run_marker_after_s must be >= 0 (0 turns the marker off)")
        positive("max_open_spans", self.max_open_spans)
        if self.max_open_spans < self.max_open_spans_per_run:
            raise ValueError("max_open_spans must be >= max_open_spans_per_run")
        if self.attribute_max_length < 128:
            raise ValueError("attribute_max_length must be >= 128")


OtlpProtocol = Literal["grpc", "http/protobuf", "http/json"]
MEMORY_QUEUE = "memory"
"""``otlp.queue_dir`` for the in-memory export queue."""
Compression = Literal["gzip", "none"]


class OtlpEndpoint(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where and how one OTLP signal is sent; what the transports in ``sinks/otlp.py`` need."""

    endpoint: str | None = None
    """Full URL for HTTP (``.../v1/traces``, ``.../v1/metrics``); ``host:port`` or URL for gRPC; ``None``: off."""
    protocol: OtlpProtocol = "http/protobuf"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout_s: float = 10.0
    """Per-export deadline (for traces, retries included)."""
    compression: Compression = "none"
    insecure: bool | None = None
    """gRPC without TLS; ``None`` decides from the scheme (http:// is insecure)."""
    certificate: str | None = None
    """CA bundle for TLS endpoints."""

    def __post_init__(self) -> None:
        positive("timeout_s", self.timeout_s)


class OtlpSettings(OtlpEndpoint, kw_only=True, forbid_unknown_fields=True):
    """OTLP trace export. ``endpoint=None`` means no export (embedded store only)."""

    max_batch_spans: int = 512
    schedule_delay_s: float = 1.0
    """Longest a finished span waits before its batch is sent."""
    max_queue_spans: int = 20_000
    """Spans waiting in memory to be exported; past it new spans are dropped and counted."""
    max_retry_s: float = 30.0
    """Time spent retrying one batch on transient failures; with a durable queue the batch then
    stays queued and is tried again (an outage of any length), in memory it is dropped and counted."""
    worker_process: bool = True
    """Encode and send in a child process (the second core); spans cross a pipe as msgpack."""
    queue_dir: str | None = None
    """The durable export queue's folder: finished spans wait there (SQLite, WAL) until the collector
    has them, across outages, crashes and restarts. ``None``: ``otel-bridge/export-queue`` under the
    user's state folder (``$XDG_STATE_HOME`` or ``~/.local/state``), filled in at load time when export
    is on; ``"memory"``: no disk, spans wait in memory (``max_queue_spans``) and a restart loses them.
    One sidecar per folder."""
    queue_max_mb: float = 256.0
    """The durable queue's size on disk (its rows' bytes); past it new spans are dropped and counted."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("max_batch_spans", "schedule_delay_s", "max_queue_spans", "max_retry_s", "queue_max_mb"):
            positive(name, getattr(self, name))
        if self.queue_dir is not None and not self.queue_dir.strip():
            raise ValueError("queue_dir must be a folder or 'memory', not empty")

    @property
    def durable_queue_dir(self) -> str | None:
        """The durable queue's folder, or ``None`` for the in-memory queue."""
        return None if self.queue_dir in (None, MEMORY_QUEUE) else self.queue_dir


class StoreSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The embedded in-memory trace store behind ``/v1/traces`` and the viewer."""

    enabled: bool = True
    max_traces: int = 1_000
    """Recent traces kept; the oldest is evicted first."""
    max_spans_per_trace: int = 10_000
    """Spans kept per trace; extra ones are counted, not kept."""
    max_spans: int = 200_000
    """Spans kept across all traces (a few hundred bytes to a few KB each); past it the oldest traces
    are evicted whole."""

    def __post_init__(self) -> None:
        positive("max_traces", self.max_traces)
        positive("max_spans_per_trace", self.max_spans_per_trace)
        positive("max_spans", self.max_spans)


class IngestSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/events``."""

    max_body_bytes: int = 10 * 1024 * 1024
    """Larger bodies get 413."""
    max_errors_reported: int = 20
    """How many per-event errors a response lists (all are counted)."""

    def __post_init__(self) -> None:
        positive("max_body_bytes", self.max_body_bytes)


class LimitsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One memory budget for the whole process, enforced like the collector's ``memory_limiter``.

    The process's resident memory is sampled every ``check_interval_s``. Above
    the soft limit (``memory_soft_pct`` of ``max_memory_mb``) new work is
    refused: ingest answers 503 with ``Retry-After`` and subscribed sources
    pause reading. Above ``max_memory_mb`` (the hard limit) the least recently
    active open runs are also closed early (``evicted``, counted as
    ``dropped.memory_limit``). Below the soft limit everything resumes. The
    open spans across runs have their own cap, ``mapping.max_open_spans``.
    """

    max_memory_mb: float = 0.0
    """The hard limit on the process's resident memory, in MiB; 0 (the default) turns the budget off
    (env ``OTEL_BRIDGE_MAX_MEMORY_MB``)."""
    memory_soft_pct: float = 80.0
    """The soft limit as a percentage of ``max_memory_mb``: the collector's default spike allowance of
    20 %, the most memory is expected to grow between two checks."""
    check_interval_s: float = 1.0
    """How often the resident memory is read (the collector's recommended ``check_interval``)."""

    def __post_init__(self) -> None:
        if self.max_memory_mb < 0:
            raise ValueError(f"max_memory_mb must be >= 0 (0: no budget), got {self.max_memory_mb}")
        if not 0 < self.memory_soft_pct <= 100:
            raise ValueError(f"memory_soft_pct must be > 0 and <= 100, got {self.memory_soft_pct}")
        positive("check_interval_s", self.check_interval_s)

    @property
    def soft_limit_mb(self) -> float:
        return self.max_memory_mb * self.memory_soft_pct / 100.0


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
_SOURCE_METHODS = ("GET", "POST")


class SourceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One upstream stream the sidecar subscribes to (``[[sources]]``, or ``serve --subscribe``).

    ``kind = "sse"`` is any SSE endpoint, decoded by ``dialect`` (detected when
    unset). ``kind = "openintent"`` follows OpenIntent intents, agents and
    portfolios and repairs the server's lossy SSE from its event log; ``url``
    is then the server's base URL, or one of its ``/api/v1/subscribe/...``
    URLs. Unset ``kind``: ``openintent`` for such a subscribe URL, else ``sse``.

    ``method = "POST"`` sends a JSON request body (``body``, or the JSON file ``body_file``) to open
    the stream, as agent APIs that start work per request want: A2A ``SendStreamingMessage``,
    LangGraph ``runs/stream``, ADK ``run_sse``.
    """

    url: str
    name: str | None = None
    """Shown on ``/v1/sources`` and recorded as the events' source; default: from the URL."""
    kind: SourceKind | None = None
    dialect: str | None = None
    """Force a dialect (``sse`` sources); unset: detected from the first frames."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """Sent on every request, e.g. ``{"X-API-Key" = "..."}`` or ``Authorization``."""
    method: str = "GET"
    """``GET``, or ``POST`` with ``body`` or ``body_file`` (``sse`` sources)."""
    body: dict[str, Any] | list[Any] | None = None
    """``POST``: the JSON request body, e.g. an A2A JSON-RPC request or a LangGraph run."""
    body_file: str | None = None
    """``POST``: a file holding the JSON request body (read and checked at startup)."""
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
            positive(name, getattr(self, name))
        if self.read_timeout_s is not None:
            positive("read_timeout_s", self.read_timeout_s)
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        if not 1 <= self.page_size <= 1000:
            raise ValueError(f"page_size must be 1..1000, got {self.page_size}")
        self.method = self.method.strip().upper()
        if self.method not in _SOURCE_METHODS:
            raise ValueError(f"method must be GET or POST, got {self.method!r}")
        if self.body is not None and self.body_file is not None:
            raise ValueError("give body or body_file, not both")
        has_body = self.body is not None or self.body_file is not None
        if self.method == "POST" and not has_body:
            raise ValueError("method = 'POST' needs body or body_file (the JSON request that opens the stream)")
        if self.method == "GET" and has_body:
            raise ValueError("body and body_file need method = 'POST'")
        if self.method == "POST" and self.kind == "openintent":
            raise ValueError("an openintent source subscribes with GET; method = 'POST' is for kind = 'sse'")


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
    public: bool = False
    """Serve ``GET /metrics`` without the bearer token (``auth.token``); it lists agent, tool, model and
    provider names, so by default it needs the token like the rest of the API. Set it for a scraper that
    cannot send a token."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("export_interval_s", "max_series_per_metric"):
            positive(name, getattr(self, name))


class SemconvSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which attribute vocabularies spans carry besides the GenAI conventions (which they always carry)."""

    openinference: bool = False
    """Add the OpenInference attributes Arize Phoenix and Arize read (``openinference.span.kind``,
    ``llm.*``, ``input.value``...) beside the GenAI ones (env ``OTEL_BRIDGE_OPENINFERENCE``)."""
    project_name: str | None = None
    """Phoenix project: the resource attribute ``openinference.project.name`` (env
    ``OTEL_BRIDGE_PROJECT_NAME``); unset: Phoenix files the spans under ``default``."""


class RedactionSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What is blanked out of events before anything leaves the sidecar (spans, feed, store, logs)."""

    secrets: bool = True
    """The built-in secret detectors: provider API keys, bearer tokens, JWTs, AWS keys, private keys."""
    pii: bool = False
    """The built-in PII detectors: e-mail addresses, phone numbers, card numbers (Luhn-checked)."""
    patterns: dict[str, str] = msgspec.field(default_factory=dict)
    """The user's own detectors: name -> regular expression (each match becomes ``[REDACTED:name]``)."""
    deny_keys: list[str] = msgspec.field(default_factory=list)
    """Attribute keys (span and span-event attributes) whose values are always replaced, and JSON object
    keys inside captured content (tool arguments, payloads) whose values are replaced."""

    def __post_init__(self) -> None:
        for name, pattern in self.patterns.items():
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"redaction pattern name must be letters, digits, - or _: {name!r}")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redaction pattern {name!r} is not a valid regular expression: {exc}") from exc


class PricingSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Cost of LLM calls (``gen_ai.usage.cost``) from a price table per model."""

    enabled: bool = True
    builtin: bool = True
    """Start from the table shipped in ``otel_bridge/data/prices.toml``."""
    file: str | None = None
    """A TOML or JSON price table whose models extend or override the shipped ones
    (env ``OTEL_BRIDGE_PRICES_FILE``)."""


class McpSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The MCP proxy: the sidecar in front of an MCP server (Streamable HTTP), tracing every exchange."""

    upstream: str | None = None
    """The MCP server's endpoint URL (``--mcp-upstream``); unset: no proxy."""
    path: str = "/mcp"
    """Where the sidecar serves the proxied endpoint (``--mcp-path``)."""
    record: str | None = None
    """Append every exchange to this file as an NDJSON exchange log (``--mcp-record``); ``otel-bridge replay
    --dialect mcp`` turns it into the same trace."""
    connect_timeout_s: float = 10.0
    """Connecting to the upstream; reads have no timeout (a standalone GET stream may idle for hours)."""
    max_traced_body_bytes: int = 4 * 1024 * 1024
    """A JSON body longer than this is passed through but traced without its content (counted)."""
    trace_queue: int = 10_000
    """Exchange records waiting to be traced; past it a record is dropped from tracing (counted), never
    from the traffic."""

    def __post_init__(self) -> None:
        if self.upstream is not None and not re.match(r"^https?://[^/\s]+", self.upstream):
            raise ValueError(f"mcp.upstream must be an http:// or https:// URL, got {self.upstream!r}")
        if not self.path.startswith("/") or self.path == "/" or self.path.startswith("/v1/"):
            raise ValueError(
                f"mcp.path must be a path of its own such as /mcp (not / or under /v1/), got {self.path!r}"
            )
        for name in ("connect_timeout_s", "max_traced_body_bytes", "trace_queue"):
            positive(name, getattr(self, name))


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything the bridge needs; ``create_app(settings)`` builds from it alone."""

    service_name: str = "otel-bridge"
    resource_attributes: dict[str, str] = msgspec.field(default_factory=dict)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    mapping: MappingSettings = msgspec.field(default_factory=MappingSettings)
    otlp: OtlpSettings = msgspec.field(default_factory=OtlpSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    pricing: PricingSettings = msgspec.field(default_factory=PricingSettings)
    feed: FeedSettings = msgspec.field(default_factory=FeedSettings)
    semconv: SemconvSettings = msgspec.field(default_factory=SemconvSettings)
    redaction: RedactionSettings = msgspec.field(default_factory=RedactionSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    cors: CorsSettings = msgspec.field(default_factory=CorsSettings)
    sources: list[SourceSettings] = msgspec.field(default_factory=list)
    """Upstream streams to subscribe to (``[[sources]]``)."""
    mcp: McpSettings = msgspec.field(default_factory=McpSettings)
