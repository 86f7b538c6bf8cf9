"""Fast lanes: the hot routes served ahead of FastAPI's whole middleware stack.

``POST /v1/events`` (one event a request is the common case) and the MCP proxy's
path cost the sidecar per request; FastAPI wraps every request in its server-error,
telemetry, body-limit, exception and exit-stack middleware and its router before a
handler runs, which costs more than decoding and mapping one event. :class:`SidecarApp`
is the FastAPI app with a table of lanes: a request whose method and path match one
goes to the lane's ASGI app behind the same token check and CORS as every other
route (:func:`otel_bridge.web.auth.wrap`), and nothing else. Everything else, and
a lane's path with another method (``OPTIONS`` preflights, 405s), takes FastAPI's
ordinary path. Lanes keep their documented route on the router too, so the OpenAPI
schema and the 405s are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class SidecarApp(FastAPI):
    """FastAPI with lanes: ``(method, path)`` pairs served straight by their own ASGI app."""

    _lanes: dict[str, tuple[frozenset[str], ASGIApp]]
    _lane_guard: Callable[[ASGIApp], ASGIApp] | None = None
    _lane_stack: ASGIApp | None = None

    def add_lane(self, path: str, methods: Iterable[str], app: ASGIApp) -> None:
        """Serve ``methods`` on ``path`` (exactly) with ``app``, ahead of the middleware stack."""
        if not hasattr(self, "_lanes"):
            self._lanes = {}
        self._lanes[path] = (frozenset(methods), app)
        self._lane_stack = None

    def guard_lanes(self, guard: Callable[[ASGIApp], ASGIApp]) -> None:
        """Wrap every lane in ``guard`` (the token check and CORS), as the rest of the app is."""
        self._lane_guard = guard
        self._lane_stack = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and getattr(self, "_lanes", None):
            lane = self._lanes.get(_route_path(scope))
            if lane is not None and scope["method"] in lane[0]:
                stack = self._lane_stack
                if stack is None:
                    stack = self._lane_stack = self._build_lane_stack()
                await stack(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _build_lane_stack(self) -> ASGIApp:
        lanes = self._lanes

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            await lanes[_route_path(scope)][1](scope, receive, send)

        return self._lane_guard(dispatch) if self._lane_guard is not None else dispatch


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
