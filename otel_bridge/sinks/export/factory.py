"""Settings to transport: the one place that picks the HTTP or the gRPC leaf for a signal."""

from __future__ import annotations

from otel_bridge.config import OtlpEndpoint
from otel_bridge.sinks.export.grpc_transport import GRPC_TRACES_METHOD, GrpcTransport
from otel_bridge.sinks.export.http_transport import HttpTransport
from otel_bridge.sinks.export.result import Transport


def make_transport(settings: OtlpEndpoint, grpc_method: str = GRPC_TRACES_METHOD) -> Transport:
    """The transport for one signal; ``grpc_method`` names the service (traces unless told)."""
    if settings.protocol == "grpc":
        return GrpcTransport(settings, grpc_method)
    return HttpTransport(settings, json_body=settings.protocol == "http/json")
