"""Lanes: the hot routes served ahead of FastAPI's whole middleware stack.

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

A lane may also be *inline* (:class:`InlineLane`): it answers a request whose whole,
small body is in hand synchronously, so the HTTP server can serve it with no ASGI
task at all (:mod:`otel_bridge.web.http_lane`). Only requests that pass the token
check as they are and need nothing from CORS are served inline
(:meth:`SidecarApp.inline_lane`); the rest take the ASGI lane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]
"""Raw request headers, names lower-case (as ASGI and the HTTP parser give them)."""
Answer = tuple[int, Headers, bytes]
"""A whole response: status, headers (content type and length included), body."""


class InlineLane(Protocol):
    """A lane that answers a request synchronously once its whole body is read."""

    max_inline_body: int
    """Larger bodies (or bodies of unknown length) take the ASGI lane."""

    def answer(self, query_string: bytes, headers: Headers, body: bytes) -> Answer: ...


class SidecarApp(FastAPI):
    """FastAPI with lanes: ``(method, path)`` pairs served straight by their own ASGI app."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lanes: dict[str, tuple[frozenset[str], ASGIApp]] = {}
        self._inline: dict[tuple[bytes, bytes], InlineLane] = {}
        self._lane_guard: Callable[[ASGIApp], ASGIApp] | None = None
        self._plainly_admitted: Callable[[Headers], bool] | None = None
        self._lane_stack: ASGIApp | None = None

    def add_lane(self, path: str, methods: Iterable[str], app: ASGIApp, inline: InlineLane | None = None) -> None:
        """Serve ``methods`` on ``path`` (exactly) with ``app``, ahead of the middleware stack; ``inline``
        also serves them where the HTTP server can (:mod:`otel_bridge.web.http_lane`)."""
        methods = frozenset(methods)
        self._lanes[path] = (methods, app)
        if inline is not None:
            for method in methods:
                self._inline[(method.encode(), path.encode())] = inline
        self._lane_stack = None

    def guard_lanes(self, guard: Callable[[ASGIApp], ASGIApp], plainly_admitted: Callable[[Headers], bool]) -> None:
        """Wrap every lane in ``guard`` (the token check and CORS), as the rest of the app is;
        ``plainly_admitted(headers)``: whether a request passes both untouched (inline lanes)."""
        self._lane_guard = guard
        self._plainly_admitted = plainly_admitted
        self._lane_stack = None

    def inline_lane(self, method: bytes, path: bytes, headers: Headers) -> InlineLane | None:
        """The inline lane for this request, if one serves it and the guards would let it through untouched."""
        lane = self._inline.get((method, path))
        if lane is None:
            return None
        admitted = self._plainly_admitted
        return lane if admitted is None or admitted(headers) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._lanes:
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
