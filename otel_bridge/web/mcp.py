"""The MCP proxy's route: ``mcp.path`` on the sidecar, every method, served by the proxy's ASGI app.

A proxied call should cost no more than the hop itself, so the proxy is a lane
of the app (:mod:`otel_bridge.web.lanes`): ``GET``/``POST``/``DELETE`` on the
path go straight to the proxy, ahead of FastAPI's middleware and router, behind
the same CORS (the token does not guard this path, whose ``Authorization`` is
the MCP server's). A plain Starlette route stays registered for the rest
(another method gets the router's 405) and stays out of the OpenAPI document
(its bodies are the MCP server's, not the sidecar's).
"""

from __future__ import annotations

from starlette.routing import Route

from otel_bridge.sources.mcp_proxy import McpProxy
from otel_bridge.web.lanes import SidecarApp

METHODS = ["GET", "POST", "DELETE"]
"""What Streamable HTTP uses: POST messages, GET the server's stream, DELETE the session."""


def mount_mcp(app: SidecarApp, proxy: McpProxy, path: str) -> None:
    """Serve ``path`` (and nothing under it) with ``proxy``."""
    app.router.routes.append(Route(path, endpoint=proxy, methods=METHODS, include_in_schema=False))
    app.add_lane(path, METHODS, proxy)
