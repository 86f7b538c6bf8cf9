"""``GET /v1/traces`` and ``GET /v1/traces/{trace_id}``: the embedded store, read back."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from otel_bridge import semconv as sc
from otel_bridge.model import AttributeValue
from otel_bridge.sinks import otlp_json
from otel_bridge.sinks.store import TraceStore
from otel_bridge.web.problem import problem


def traces_router(store: TraceStore | None, resource: dict[str, AttributeValue], scope: tuple[str, str]) -> APIRouter:
    """The routes over ``store`` (404 ``store_disabled`` without one); documents carry ``resource`` and ``scope``."""
    router = APIRouter()

    @router.get("/v1/traces")
    async def list_traces(
        limit: int = Query(50, ge=1, le=1000), run_id: str | None = None, agent: str | None = None
    ) -> JSONResponse:
        """Recent runs, newest first."""
        if store is None:
            return problem(404, "store_disabled", "the embedded trace store is disabled (store.enabled = false)")
        summaries = store.recent(limit=limit, run_id=run_id, agent=agent)
        return JSONResponse({"traces": [s.as_json() for s in summaries]})

    @router.get("/v1/traces/{trace_id}")
    async def get_trace(trace_id: str) -> Response:
        """One trace as an OTLP/JSON ``ExportTraceServiceRequest``."""
        if store is None:
            return problem(404, "store_disabled", "the embedded trace store is disabled (store.enabled = false)")
        try:
            raw_id = bytes.fromhex(trace_id)
        except ValueError:
            raw_id = b""
        if len(raw_id) != 16:
            return problem(400, "invalid_trace_id", "trace id must be 32 hex characters")
        spans = store.get(raw_id)
        if spans is None:
            return problem(
                404, "trace_not_found", f"no trace {trace_id} in the embedded store (it keeps recent traces only)"
            )
        body = otlp_json.encode_request(spans, resource, scope[0], scope[1], sc.SCHEMA_URL)
        return Response(body, media_type="application/json")

    return router
