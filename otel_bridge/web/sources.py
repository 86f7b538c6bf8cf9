"""``GET /v1/sources``: every upstream source the sidecar subscribes to, and how it is doing."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from otel_bridge.sources.manager import SourceManager


def sources_router(manager: SourceManager) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/sources")
    async def list_sources() -> JSONResponse:
        """Each source: url (credentials redacted), kind, dialect (forced or detected), connected,
        last event time, events, frames, reconnects, rejected, last error; for SSE sources also
        the request method, what the last request was for (subscribe, start, resubscribe <task>,
        join run <id>), its HTTP status and whether the source is done (a POST whose work is over),
        and an A2A source's agent card; OpenIntent sources also list each followed intent, agent
        and portfolio."""
        return JSONResponse({"sources": manager.snapshot()})

    return router
