"""The MCP proxy's route: ``mcp.path`` on the sidecar, every method, served by the proxy's ASGI app.

A proxied call should cost no more than the hop itself, so the proxy is served
past FastAPI's router and its exception middleware: :class:`McpDispatch`, a
middleware added before the token check and CORS (which still wrap it; the
token does not guard this path, whose ``Authorization`` is the MCP server's), hands ``GET``/``POST``/``DELETE`` on
the path straight to the proxy. A plain Starlette route stays registered for
the rest (another method gets the router's 405) and stays out of the OpenAPI
document (its bodies are the MCP server's, not the sidecar's).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from otel_bridge.sources.mcp_proxy import McpProxy

METHODS = ["GET", "POST", "DELETE"]
"""What Streamable HTTP uses: POST messages, GET the server's stream, DELETE the session."""
_METHODS = frozenset(METHODS)


class McpDispatch:
    """ASGI middleware: ``METHODS`` on ``path`` straight to the proxy, everything else on to ``app``."""

    def __init__(self, app: ASGIApp, proxy: McpProxy, path: str) -> None:
        self.app = app
        self.proxy = proxy
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _METHODS and _route_path(scope) == self.path:
            await self.proxy(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def mount_mcp(app: FastAPI, proxy: McpProxy, path: str) -> None:
    """Serve ``path`` (and nothing under it) with ``proxy``.

    Call before the auth and CORS middleware are added: middleware added later wraps this one.
    """
    app.router.routes.append(Route(path, endpoint=proxy, methods=METHODS, include_in_schema=False))
    app.add_middleware(McpDispatch, proxy=proxy, path=path)
