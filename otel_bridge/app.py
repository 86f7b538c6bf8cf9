"""Wiring: ``create_app(settings)`` builds the whole sidecar, with no global state.

The pipeline comes from :func:`otel_bridge.assembly.assemble`; this module
adds what only a server has: the sources, the routes, the auth middleware and
the lifespan that starts and stops them in order. :func:`create_feed_app` is the
feed-only process of a fleet (``otel-bridge feed``): the shared live feed, the
viewer's live views and health; no ingest, no export.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from otel_bridge import __version__
from otel_bridge.assembly import SCOPE, Pipeline, assemble, build_feed
from otel_bridge.config import Settings
from otel_bridge.sinks.feed import Feed
from otel_bridge.sources.manager import SourceManager
from otel_bridge.sources.mcp_proxy import McpProxy
from otel_bridge.stats import Stats
from otel_bridge.web import auth
from otel_bridge.web.ingest import mount_ingest
from otel_bridge.web.lanes import SidecarApp
from otel_bridge.web.mcp import mount_mcp
from otel_bridge.web.metrics import metrics_router
from otel_bridge.web.sources import sources_router
from otel_bridge.web.stream import stream_router
from otel_bridge.web.traces import FEED_ONLY, traces_router
from otel_bridge.web.viewer import viewer_router


def create_app(
    settings: Settings,
    pipeline: Pipeline | None = None,
    companions: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> SidecarApp:
    """The sidecar's ASGI app. The bridge starts and stops with the app's lifespan.

    ``pipeline`` is what :func:`~otel_bridge.assembly.assemble` built from
    ``settings`` (built here when not given; tests pass one with extra sinks).
    ``companions`` are coroutines run for the app's lifetime once it serves
    (the demo agent); they are cancelled at shutdown, before the bridge stops.
    """
    pipeline = pipeline or assemble(settings)
    bridge = pipeline.bridge
    # Every source is validated now: a bad one fails startup. They pause reading while the memory budget refuses.
    sources = SourceManager(bridge, settings.sources, guard=pipeline.guard)
    mcp_proxy = McpProxy(bridge, settings.mcp) if settings.mcp.upstream is not None else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bridge.start()
        # Sources start after the bridge and stop before it: none submits into a closed bridge.
        await sources.start()
        if mcp_proxy is not None:
            await mcp_proxy.start()
        running = [asyncio.create_task(companion(), name="companion") for companion in companions]
        try:
            yield
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            try:
                if mcp_proxy is not None:
                    await mcp_proxy.shutdown()
                await sources.shutdown()
            finally:
                await bridge.shutdown()

    app = SidecarApp(title="otel-bridge", version=__version__, lifespan=lifespan)
    app.state.pipeline = pipeline
    app.state.bridge = bridge
    app.state.sources = sources
    mount_ingest(app, bridge, settings.ingest, pipeline.guard)  # the documented route, and its lane
    app.include_router(traces_router(pipeline.store, pipeline.resource, SCOPE))
    app.include_router(sources_router(sources))
    if settings.metrics.enabled:
        app.include_router(metrics_router(pipeline.metrics_snapshot))
    if mcp_proxy is not None:
        mount_mcp(app, mcp_proxy, settings.mcp.path)

    # The live feed observes every mapped batch (wired by assembly); the viewer and token/CORS wrap the app.
    feed = pipeline.feed
    app.state.feed = feed
    if settings.feed.enabled:
        app.include_router(stream_router(feed))
    app.include_router(viewer_router(settings.feed.trace_url_template))
    auth.install(app, settings)

    @app.get("/v1/health")
    async def health() -> JSONResponse:
        """Liveness plus the bridge's own counters; ``degraded`` (still 200) while OTLP export fails
        or the memory budget refuses work.

        The status code stays 200 when degraded: the sidecar is alive and keeps
        taking events (with a durable queue nothing is lost while the collector
        is away), and a 503 would make an orchestrator restart a process that a
        restart cannot fix. ``status`` and ``reasons`` are what to alert on.
        """
        body: dict[str, object] = {"status": "ok", "version": __version__, "open_runs": pipeline.mapper.open_runs}
        reasons: list[str] = []
        if pipeline.exporter is not None and pipeline.exporter.last_error is not None:
            reasons.append(f"OTLP export failing: {pipeline.exporter.last_error}")
        reasons.extend(_feed_reasons(feed))
        if pipeline.guard is not None and pipeline.guard.reason is not None:
            reasons.append(pipeline.guard.reason)
        if reasons:
            body["status"] = "degraded"
            body["reasons"] = reasons
        body.update(pipeline.stats.snapshot())
        if pipeline.exporter is not None:
            body["export_queue_depth"] = pipeline.exporter.queue_depth
            body["export_encoder"] = pipeline.exporter.encoder
            body["export_last_error"] = pipeline.exporter.last_error
        body["feed"] = feed.snapshot()
        if pipeline.guard is not None:
            body["memory"] = pipeline.guard.snapshot()
        return JSONResponse(body)

    return app


def _feed_reasons(feed: Feed) -> list[str]:
    """A shared feed whose Redis is away: the sidecar serves only its own events (health says ``degraded``)."""
    backend = feed.backend.snapshot()
    if backend.get("connected") is False:
        return [f"live feed: Redis unavailable ({backend.get('last_error') or 'not connected yet'})"]
    return []


def create_feed_app(settings: Settings) -> FastAPI:
    """A feed-only process: ``GET /v1/stream`` from the fleet's shared stream, the viewer, ``/v1/health``."""
    stats = Stats()
    feed = build_feed(settings, stats)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await feed.start()
        try:
            yield
        finally:
            await feed.shutdown()

    app = FastAPI(title="otel-bridge feed", version=__version__, lifespan=lifespan)
    app.state.feed = feed
    app.include_router(stream_router(feed))
    app.include_router(traces_router(None, {}, SCOPE, no_store=FEED_ONLY))  # the viewer's list says why it is empty
    app.include_router(viewer_router(settings.feed.trace_url_template))
    auth.install(app, settings)

    @app.get("/v1/health")
    async def health() -> JSONResponse:
        """Liveness and the feed's counters; ``degraded`` (still 200) while Redis is away."""
        reasons = _feed_reasons(feed)
        body: dict[str, object] = {"status": "degraded" if reasons else "ok", "version": __version__, "role": "feed"}
        if reasons:
            body["reasons"] = reasons
        body["feed"] = feed.snapshot()
        return JSONResponse(body)

    return app
