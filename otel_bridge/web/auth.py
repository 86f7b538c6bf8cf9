"""The optional bearer token (ingest, feed, trace API) and the CORS allow-list.

Both are ASGI middleware installed by :func:`install` in ``create_app``, so no
handler knows about them. The token is compared in constant time. Browsers'
``EventSource`` cannot set headers, so the feed (and only the feed) also takes
the token as ``?access_token=``. CORS is outermost: a preflight never needs the
token, and a 401 still carries the CORS headers a browser needs to read it.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from otel_bridge.config import Settings

PROTECTED_PREFIXES = ("/v1/events", "/v1/stream", "/v1/traces", "/v1/sources")
"""What the token guards; ``/v1/health`` and the viewer page itself stay open."""
QUERY_TOKEN_PATHS = ("/v1/stream",)
"""Where ``?access_token=`` is accepted (EventSource cannot send headers)."""


def _protected(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


class BearerAuth:
    """401 unless the request carries ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = token.encode()

    def _presented(self, scope: Scope) -> bytes | None:
        name: bytes
        value: bytes
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    return credentials.strip()
                return b""  # another scheme: wrong, not missing
        if scope["path"] in QUERY_TOKEN_PATHS:
            query: bytes = scope.get("query_string", b"")
            for key, val in parse_qsl(query.decode("latin-1")):
                if key == "access_token":
                    return val.encode("latin-1")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or not _protected(scope["path"]):
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


def install(app: FastAPI, settings: Settings) -> None:
    """Add the token check (if a token is set) and CORS (if origins are listed), CORS outermost."""
    if settings.auth.token is not None:
        app.add_middleware(BearerAuth, token=settings.auth.token)
    if settings.cors.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors.allow_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )
