"""The live feed's settings: its bounds, its policies and where it is kept (``memory``, or a Redis
stream shared by a fleet: ``feed.backend`` / ``OTEL_BRIDGE_FEED_URL`` and ``[feed.redis]``)."""

from __future__ import annotations

from typing import Literal

import msgspec

from otel_bridge.config.base import positive, redact_url

LagPolicy = Literal["resync", "disconnect"]
MEMORY_FEED = "memory"
"""``feed.backend`` for the feed kept in this process only (the default)."""
REDIS_SCHEMES = ("redis", "rediss")


class FeedRedisSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The shared feed on Redis Streams (``feed.backend`` a Redis URL): the stream, its trimming, the batching."""

    stream: str = "otel-bridge:feed"
    """The stream's key; every sidecar and feed process of one fleet names the same one."""
    max_len: int = 1_000_000
    """Entries kept (``XADD ... MAXLEN ~``: approximate, Redis trims whole nodes); 0: no count bound."""
    max_age_s: float = 86_400.0
    """Entries older than this are trimmed (``XTRIM MINID ~``, once per batch); 0: no age bound."""
    batch_size: int = 100
    """Events sent in one pipelined round trip of ``XADD`` commands."""
    buffer_size: int = 10_000
    """Events waiting locally to be appended (while Redis is slow or away); past it the oldest are
    dropped and counted (``dropped.feed_not_appended``)."""
    read_count: int = 500
    """Entries one ``XREAD`` returns at most."""
    block_ms: int = 5_000
    """How long one ``XREAD BLOCK`` waits for new entries before it asks again."""
    timeout_s: float = 5.0
    """Connect and command timeout (a blocking read waits ``block_ms`` plus this)."""
    backoff_initial_s: float = 0.1
    """First wait before reconnecting; doubles per failed attempt (with jitter) up to ``backoff_max_s``."""
    backoff_max_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.stream.strip():
            raise ValueError("feed.redis.stream must name a stream key, not be empty")
        if self.max_len < 0 or self.max_age_s < 0:
            raise ValueError("feed.redis.max_len and max_age_s must be >= 0 (0: no bound)")
        for name in ("batch_size", "buffer_size", "read_count", "block_ms", "timeout_s", "backoff_initial_s"):
            positive(f"feed.redis.{name}", getattr(self, name))
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("feed.redis.backoff_max_s must be >= backoff_initial_s")


def check_feed_backend(value: str) -> None:
    """``memory``, or a ``redis://`` / ``rediss://`` URL with a host; raises ``ValueError`` saying which."""
    if value == MEMORY_FEED:
        return
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in REDIS_SCHEMES:
        raise ValueError(
            f"feed.backend must be 'memory' or a Redis URL (redis://[user:password@]host:port/db, rediss:// for TLS),"
            f" got {redact_url(value)!r}"
        )
    host = rest.split("/", 1)[0].rpartition("@")[2]
    if not host or host.startswith(":"):
        raise ValueError(f"feed.backend {redact_url(value)!r} names no host")


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
    backend: str = MEMORY_FEED
    """Where the feed is kept: ``memory`` (this process: the ring) or a Redis URL (env ``OTEL_BRIDGE_FEED_URL``;
    ``redis://[user:password@]host:port/db``, ``rediss://`` for TLS), shared by a fleet of sidecars: every
    sidecar appends to one stream and serves the whole stream, resumable on any of them."""
    redis: FeedRedisSettings = msgspec.field(default_factory=FeedRedisSettings)
    """The stream and its bounds, when ``backend`` is a Redis URL."""

    def __post_init__(self) -> None:
        check_feed_backend(self.backend)
        for name in ("ring_size", "ring_max_bytes", "queue_size", "max_subscribers"):
            positive(name, getattr(self, name))
        for name in ("heartbeat_s", "retry_ms", "send_timeout_s"):
            positive(name, getattr(self, name))
        if self.trace_url_template is not None:
            try:
                self.trace_url_template.format(trace_id="0" * 32, span_id="0" * 16)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"trace_url_template may only use {{trace_id}} and {{span_id}}: {self.trace_url_template!r}"
                ) from exc
