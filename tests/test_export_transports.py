"""The transport leaves classify every answer: success (partial or not), retryable with the receiver's wait, permanent.

HTTP answers come from an in-memory httpx transport; gRPC answers from a real
grpc.aio server on loopback with a generic handler, so status codes and
trailing metadata cross a real channel.
"""

from __future__ import annotations

import email.utils
import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import grpc.aio
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_bridge.config import OtlpEndpoint
from otel_bridge.sinks.export.grpc_transport import GrpcTransport
from otel_bridge.sinks.export.http_transport import HttpTransport, retry_after_s
from otel_bridge.sinks.export.result import Outcome, SendResult
from tests.support.grpc_status import retry_info_status
from tests.support.ports import free_port

URL = "http://collector.test/v1/traces"
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def partial_success(rejected: int, message: str) -> bytes:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = rejected
    response.partial_success.error_message = message
    return response.SerializeToString()


async def http_send(response: httpx.Response | Exception, **settings: str) -> tuple[SendResult, httpx.Request]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(response, Exception):
            raise response
        return response

    transport = HttpTransport(OtlpEndpoint(endpoint=URL, **settings), client_transport=httpx.MockTransport(answer))  # type: ignore[arg-type]
    try:
        result = await transport.send(b"request", 1.0)
    finally:
        await transport.close()
    return result, seen[0]


async def test_http_200_is_success() -> None:
    result, request = await http_send(httpx.Response(200))
    assert result == SendResult(Outcome.SUCCESS)
    assert request.content == b"request"
    assert request.headers["content-type"] == "application/x-protobuf"


async def test_http_200_with_partial_success_counts_the_rejected() -> None:
    result, _ = await http_send(httpx.Response(200, content=partial_success(2, "too old")))
    assert result == SendResult(Outcome.SUCCESS, "too old", rejected=2)


async def test_http_400_is_permanent() -> None:
    result, _ = await http_send(httpx.Response(400, text="bad span"))
    assert result == SendResult(Outcome.PERMANENT, "HTTP 400: bad span")


async def test_http_429_carries_retry_after() -> None:
    result, _ = await http_send(httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"))
    assert result == SendResult(Outcome.RETRYABLE, "HTTP 429: slow down", retry_after_s=7.0)


async def test_http_503_without_retry_after_is_retryable() -> None:
    result, _ = await http_send(httpx.Response(503, text="busy"))
    assert result == SendResult(Outcome.RETRYABLE, "HTTP 503: busy")


async def test_a_connection_error_is_retryable() -> None:
    result, _ = await http_send(httpx.ConnectError("refused"))
    assert result == SendResult(Outcome.RETRYABLE, "ConnectError: refused")


async def test_gzip_compresses_the_body() -> None:
    _, request = await http_send(httpx.Response(200), compression="gzip")
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.content) == b"request"


def test_retry_after_as_an_http_date() -> None:
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_s(header, now=now) == pytest.approx(30, abs=1)
    assert retry_after_s(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None


Handler = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


@pytest.fixture
async def grpc_server() -> AsyncIterator[Callable[[Handler], str]]:
    """A loopback OTLP/gRPC trace receiver whose behaviour each test sets; yields a setter returning the endpoint."""
    behaviour: list[Handler] = []

    async def export(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return await behaviour[0](request, context)

    server = grpc.aio.server()
    rpc = grpc.unary_unary_rpc_method_handler(export, request_deserializer=None, response_serializer=None)
    service = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": rpc}
    )
    server.add_generic_rpc_handlers((service,))
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()

    def serve(handler: Handler) -> str:
        behaviour.append(handler)
        return f"http://127.0.0.1:{port}"

    yield serve
    await server.stop(None)


async def grpc_send(endpoint: str) -> SendResult:
    transport = GrpcTransport(OtlpEndpoint(endpoint=endpoint, protocol="grpc"))
    try:
        return await transport.send(b"", 5.0)
    finally:
        await transport.close()


async def test_grpc_ok_with_partial_success(grpc_server: Callable[[Handler], str]) -> None:
    async def ok(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return partial_success(1, "dup")

    assert await grpc_send(grpc_server(ok)) == SendResult(Outcome.SUCCESS, "dup", rejected=1)


async def test_grpc_resource_exhausted_carries_retry_info(grpc_server: Callable[[Handler], str]) -> None:
    async def throttle(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        details = retry_info_status(3.5)
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", (("grpc-status-details-bin", details),))
        raise AssertionError("abort returns by raising")

    result = await grpc_send(grpc_server(throttle))
    assert result == SendResult(Outcome.RETRYABLE, "gRPC RESOURCE_EXHAUSTED: slow down", retry_after_s=3.5)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (grpc.StatusCode.UNAVAILABLE, Outcome.RETRYABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Outcome.RETRYABLE),
        (grpc.StatusCode.ABORTED, Outcome.RETRYABLE),
        (grpc.StatusCode.INVALID_ARGUMENT, Outcome.PERMANENT),
        (grpc.StatusCode.UNAUTHENTICATED, Outcome.PERMANENT),
        (grpc.StatusCode.UNIMPLEMENTED, Outcome.PERMANENT),
    ],
)
async def test_grpc_status_codes_are_classified(
    grpc_server: Callable[[Handler], str], code: grpc.StatusCode, outcome: Outcome
) -> None:
    async def fail(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await context.abort(code, "no")
        raise AssertionError("abort returns by raising")

    assert await grpc_send(grpc_server(fail)) == SendResult(outcome, f"gRPC {code.name}: no")


async def test_grpc_unreachable_receiver_is_retryable() -> None:
    transport = GrpcTransport(OtlpEndpoint(endpoint=f"127.0.0.1:{free_port()}", protocol="grpc"))
    try:
        result = await transport.send(b"", 1.0)
    finally:
        await transport.close()
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail.startswith("gRPC UNAVAILABLE")
