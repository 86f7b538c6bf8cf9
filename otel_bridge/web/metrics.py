"""``GET /metrics``: the GenAI metrics and the bridge's health figures, in Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response

from otel_bridge.bridge import Bridge
from otel_bridge.sinks import prometheus


def metrics_router(bridge: Bridge) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Every metric, cumulative since the bridge started (scrape it; Prometheus computes rates)."""
        return Response(prometheus.render(bridge.metrics_snapshot().families), media_type=prometheus.CONTENT_TYPE)

    return router


def feed_subscribers(app: FastAPI, bridge: Bridge) -> int:
    """Clients on the live feed, wherever the app keeps the feed (``app.state.feed`` or ``bridge.feed``); else 0."""
    feed = getattr(app.state, "feed", None) or getattr(bridge, "feed", None)
    count = getattr(feed, "subscribers", 0)
    return count if isinstance(count, int) and not isinstance(count, bool) else 0
