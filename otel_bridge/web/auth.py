"""The optional bearer token (ingest, feed, trace API, metrics), the CORS allow-list, and keeping tokens out of logs.

Both are ASGI middleware installed by :func:`install` in ``create_app``, around
the app and around its lanes alike (:mod:`otel_bridge.web.lanes`), so no handler
knows about them. The token is compared in constant time. Browsers'
``EventSource`` cannot set headers, so the feed (and only the feed) also takes
the token as ``?access_token=``; :class:`RedactQueryCredentials` (installed on
the access log by ``serve``) writes that value, and any ``token`` query value, as
``REDACTED``. ``/metrics`` needs the token too unless ``metrics.public`` is set
(it lists agent, tool, model and provider names). CORS is outermost: a
preflight never needs the token, and a 401 still carries the CORS headers a
browser needs to read it. With the MCP proxy on, CORS also allows ``DELETE`` and
the MCP headers, and exposes ``Mcp-Session-Id``, so a browser MCP client can hold
and end its session through the sidecar.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from otel_bridge.config import Settings
from otel_bridge.web.lanes import Headers, SidecarApp

PROTECTED_PREFIXES = ("/v1/events", "/v1/stream", "/v1/traces", "/v1/sources", "/metrics")
"""What the token guards; ``/v1/health`` and the viewer page itself stay open (``/metrics`` too if public)."""
CREDENTIAL_PARAMS = ("access_token", "token")
"""Query parameters whose values never reach a log."""
_CREDENTIAL_RE = re.compile(r"([?&](?:" + "|".join(CREDENTIAL_PARAMS) + r")=)[^&#\s]*", re.IGNORECASE)


def redact(target: str) -> str:
    """A request target with every credential query value replaced by ``REDACTED``."""
    return _CREDENTIAL_RE.sub(r"\1REDACTED", target) if "token" in target.lower() else target


class RedactQueryCredentials(logging.Filter):
    """Rewrites uvicorn's access-log records so query credentials are never written.

    uvicorn logs ``(client, method, path with query, http version, status)``; the
    path is the third argument.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


QUERY_TOKEN_PATHS = ("/v1/stream",)
"""Where ``?access_token=`` is accepted (EventSource cannot send headers)."""


def _protected(path: str, prefixes: tuple[str, ...] = PROTECTED_PREFIXES) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _bearer(headers: Headers) -> bytes | None:
    """The bearer credentials of ``Authorization`` (``b""`` for another scheme: wrong, not missing)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else b""
    return None


class BearerAuth:
    """401 unless the request carries ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str, public_metrics: bool = False) -> None:
        self._app = app
        self._token = token.encode()
        self._prefixes = tuple(p for p in PROTECTED_PREFIXES if not (public_metrics and p == "/metrics"))

    def _presented(self, scope: Scope) -> bytes | None:
        presented = _bearer(scope["headers"])
        if presented is not None:
            return presented
        if scope["path"] in QUERY_TOKEN_PATHS:
            query: bytes = scope.get("query_string", b"")
            for key, val in parse_qsl(query.decode("latin-1")):
                if key == "access_token":
                    return val.encode("latin-1")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or not _protected(scope["path"], self._prefixes):
            await self._app(scope, receive, send)
            return
        presented = self._presented(scope)
        if presented is not None and hmac.compare_digest(presented, self._token):
            await self._app(scope, receive, send)
            return
        if presented is None:
            body = {
                "error": "unauthorized",
                "message": "this endpoint needs a bearer token: send 'Authorization: Bearer <token>'"
                " (the feed also accepts ?access_token=<token>)",
            }
            challenge = b'Bearer realm="otel-bridge"'
        else:
            body = {"error": "unauthorized", "message": "the bearer token is not valid"}
            challenge = b'Bearer realm="otel-bridge", error="invalid_token"'
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"www-authenticate", challenge),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


MCP_HEADERS = ["Mcp-Session-Id", "Mcp-Protocol-Version"]
"""What a browser MCP client sends (and must read back: the session id) through the proxy."""


def layers(settings: Settings) -> list[Middleware]:
    """The token check (if a token is set) and CORS (if origins are listed), innermost first."""
    out: list[Middleware] = []
    if settings.auth.token is not None:
        out.append(Middleware(BearerAuth, token=settings.auth.token, public_metrics=settings.metrics.public))
    if settings.cors.allow_origins:
        mcp = settings.mcp.upstream is not None
        out.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors.allow_origins,
                allow_methods=["GET", "POST", "OPTIONS", *(["DELETE"] if mcp else [])],
                allow_headers=["Authorization", "Content-Type", "Last-Event-ID", *(MCP_HEADERS if mcp else [])],
                expose_headers=["Mcp-Session-Id"] if mcp else [],
                max_age=600,
            )
        )
    return out


def wrap(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind :func:`layers`, CORS outermost (what :func:`install` does to the whole app)."""
    for layer in layers(settings):
        app = layer.cls(app, *layer.args, **layer.kwargs)
    return app


def plainly_admitted(settings: Settings) -> Callable[[Headers], bool]:
    """Whether a request to a protected path with these headers passes :func:`layers` untouched: the
    right bearer token in its header (if a token is set), and no ``Origin`` (if CORS is on)."""
    token = settings.auth.token.encode() if settings.auth.token is not None else None
    cors = bool(settings.cors.allow_origins)

    def admitted(headers: Headers) -> bool:
        if cors and any(name == b"origin" for name, _ in headers):
            return False
        if token is None:
            return True
        presented = _bearer(headers)
        return presented is not None and hmac.compare_digest(presented, token)

    return admitted


def install(app: SidecarApp | FastAPI, settings: Settings) -> None:
    """Put the app and its lanes behind the token check and CORS, CORS outermost."""
    for layer in layers(settings):  # each added layer wraps the ones added before it
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
    if isinstance(app, SidecarApp):
        app.guard_lanes(lambda lane: wrap(lane, settings), plainly_admitted(settings))
