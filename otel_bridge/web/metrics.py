"""``GET /metrics``: the GenAI metrics and the bridge's health figures, in Prometheus text format.

Behind the bearer token when one is set, unless ``metrics.public`` (:mod:`otel_bridge.web.auth`).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Response

from otel_bridge.sinks import prometheus
from otel_bridge.sinks.metric_model import Snapshot


def metrics_router(snapshot: Callable[[], Snapshot]) -> APIRouter:
    """The route over ``snapshot`` (the assembled pipeline's ``metrics_snapshot``)."""
    router = APIRouter()

    @router.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"description": "Prometheus text exposition format", "content": {prometheus.CONTENT_TYPE: {}}},
            401: {"description": "unauthorized: the bearer token is needed unless metrics.public is set"},
        },
    )
    async def metrics() -> Response:
        """Every metric, cumulative since the bridge started (scrape it; Prometheus computes rates)."""
        return Response(prometheus.render(snapshot().families), media_type=prometheus.CONTENT_TYPE)

    return router
