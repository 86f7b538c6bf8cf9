"""Settings to transport: the one place that picks the HTTP or the gRPC leaf for a signal.

OTLP/HTTP goes through the lean leaf (:mod:`.lean_http`, our own HTTP/1.1 connections) unless
a proxy variable could apply to the endpoint's scheme: proxies are httpx's, so such an endpoint
keeps the httpx leaf (:mod:`.http_transport`), which also reads ``NO_PROXY``.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

from otel_bridge.config import OtlpEndpoint
from otel_bridge.sinks.export.grpc_transport import GRPC_TRACES_METHOD, GrpcTransport
from otel_bridge.sinks.export.http_transport import HttpTransport
from otel_bridge.sinks.export.lean_http import LeanHttpTransport
from otel_bridge.sinks.export.result import Transport


def make_transport(settings: OtlpEndpoint, grpc_method: str = GRPC_TRACES_METHOD) -> Transport:
    """The transport for one signal; ``grpc_method`` names the service (traces unless told)."""
    if settings.protocol == "grpc":
        return GrpcTransport(settings, grpc_method)
    json_body = settings.protocol == "http/json"
    if settings.endpoint is not None and proxied(settings.endpoint):
        return HttpTransport(settings, json_body=json_body)
    return LeanHttpTransport(settings, json_body=json_body)


def proxied(url: str) -> bool:
    """Whether a proxy variable (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, either case) names one for ``url``."""
    proxies = urllib.request.getproxies()
    return bool(proxies.get(urlsplit(url).scheme) or proxies.get("all"))
