"""``GET /``: the embedded store's own viewer, one static page with no build step.

The page (``web/static/``) lists recent traces from ``GET /v1/traces``, draws a
trace's span waterfall from ``GET /v1/traces/{id}`` (OTLP/JSON) and shows the
live feed from ``/v1/stream``. Only the files listed here are served.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from otel_bridge.model import EventKind
from otel_bridge.web.problem import problem

KINDS_PLACEHOLDER = b"{{KINDS}}"
"""In index.html: replaced by the canonical kinds (EventSource needs a listener per event name)."""

FILES = {
    "index.html": "text/html; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}


def _read(name: str) -> bytes:
    return resources.files("otel_bridge.web").joinpath("static", name).read_bytes()


def viewer_router() -> APIRouter:
    router = APIRouter()
    files = {name: _read(name) for name in FILES}  # read once: a few kilobytes
    kinds = " ".join(kind.value for kind in EventKind).encode()
    files["index.html"] = files["index.html"].replace(KINDS_PLACEHOLDER, kinds)

    @router.get("/", include_in_schema=False)
    async def index() -> Response:
        """The viewer page."""
        return Response(files["index.html"], media_type=FILES["index.html"], headers={"Cache-Control": "no-cache"})

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        """The viewer's script and style sheet."""
        if name not in files:
            return problem(404, "not_found", f"no static file {name!r}")
        return Response(files[name], media_type=FILES[name], headers={"Cache-Control": "no-cache"})

    return router
