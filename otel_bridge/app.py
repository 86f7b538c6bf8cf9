"""Wiring: ``create_app(settings)`` builds the whole sidecar, with no global state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from otel_bridge import __version__
from otel_bridge.bridge import Bridge
from otel_bridge.config import Settings
from otel_bridge.mapping.pricing import pricer_from_settings
from otel_bridge.sinks.feed import Feed
from otel_bridge.sinks.feed.agui import AguiFormat
from otel_bridge.sources.http_ingest import ingest_router
from otel_bridge.sources.manager import SourceManager
from otel_bridge.web import auth
from otel_bridge.web.metrics import feed_subscribers, metrics_router
from otel_bridge.web.sources import sources_router
from otel_bridge.web.stream import stream_router
from otel_bridge.web.traces import traces_router
from otel_bridge.web.viewer import viewer_router


def create_app(
    settings: Settings,
    bridge: Bridge | None = None,
    companions: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> FastAPI:
    """The sidecar's ASGI app. The bridge starts and stops with the app's lifespan.

    ``companions`` are coroutines run for the app's lifetime once it serves
    (the demo agent); they are cancelled at shutdown, before the bridge stops.
    """
    bridge = bridge or Bridge(settings, pricer=pricer_from_settings(settings.pricing))
    sources = SourceManager(bridge, settings.sources)  # validates every source now: a bad one fails startup

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bridge.start()
        # Sources start after the bridge and stop before it: none submits into a closed bridge.
        await sources.start()
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
                await sources.shutdown()
            finally:
                await bridge.shutdown()

    app = FastAPI(title="otel-bridge", version=__version__, lifespan=lifespan)
    app.state.bridge = bridge
    app.state.sources = sources
    app.include_router(ingest_router(bridge))
    app.include_router(traces_router(bridge))
    app.include_router(sources_router(sources))
    if settings.metrics.enabled:
        app.include_router(metrics_router(bridge))
    bridge.subscriber_count = lambda: feed_subscribers(app, bridge)

    # The live feed observes every mapped batch; the viewer page and the token/CORS middleware wrap the app.
    feed = Feed(settings.feed, content=settings.mapping.capture_content, formats=[AguiFormat()], stats=bridge.stats)
    app.state.feed = feed
    if settings.feed.enabled:
        bridge.add_observer(feed.observe)
        app.include_router(stream_router(feed))
    app.include_router(viewer_router())
    auth.install(app, settings)

    @app.get("/v1/health")
    async def health() -> JSONResponse:
        """Liveness plus the bridge's own counters."""
        body: dict[str, object] = {"status": "ok", "version": __version__, "open_runs": bridge.mapper.open_runs}
        body.update(bridge.stats.snapshot())
        if bridge.exporter is not None:
            body["export_queue_depth"] = bridge.exporter.queue_depth
            body["export_last_error"] = bridge.exporter.last_error
        body["feed"] = feed.snapshot()
        return JSONResponse(body)

    return app
