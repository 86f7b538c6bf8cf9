"""The MCP proxy's route: ``mcp.path`` on the sidecar, every method, served by the proxy's ASGI app.

A plain Starlette route (not a FastAPI endpoint): the proxy reads the request
and streams the response itself, and the route stays out of the OpenAPI
document (its bodies are the MCP server's, not the sidecar's).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from otel_bridge.sources.mcp_proxy import McpProxy

METHODS = ["GET", "POST", "DELETE"]
"""What Streamable HTTP uses: POST messages, GET the server's stream, DELETE the session."""


def mount_mcp(app: FastAPI, proxy: McpProxy, path: str) -> None:
    """Serve ``path`` (and nothing under it) with ``proxy``."""
    app.router.routes.append(Route(path, endpoint=proxy, methods=METHODS, include_in_schema=False))
