"""The lean OTLP/HTTP leaf: the same answers as the httpx leaf, kept-alive connections, TLS, and the factory's pick.

The collector is a scripted asyncio server on loopback (plain or TLS), so each test
controls the answer's bytes and when the connection closes; both leaves are run against
it over real sockets. TLS uses a self-signed certificate made by the ``openssl`` command
(the tests that need it skip, saying so, where it is missing).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import gzip
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_bridge import __version__
from otel_bridge.config import OtlpEndpoint
from otel_bridge.sinks.export.factory import make_transport
from otel_bridge.sinks.export.grpc_transport import GrpcTransport
from otel_bridge.sinks.export.http_transport import HttpTransport
from otel_bridge.sinks.export.lean_http import LeanHttpTransport
from otel_bridge.sinks.export.result import Outcome, SendResult, Transport
from tests.support.ports import free_port


def answer(status: int, body: bytes = b"", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def partial_success(rejected: int, message: str) -> bytes:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = rejected
    response.partial_success.error_message = message
    return response.SerializeToString()


@dataclass
class Collector:
    url: str
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def collector(
    answers: Callable[[int], bytes | None],
    *,
    close_after: bool = False,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Collector]:
    """A server answering request ``i`` with ``answers(i)`` (``None``: no answer at all, the client must time out)."""
    port = free_port()
    seen = Collector(f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1/traces")
    handlers: list[asyncio.Task[None]] = []
    writers: list[asyncio.StreamWriter] = []
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        writers.append(writer)
        seen.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                length = next(int(v) for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n"))
                              if k.lower() == b"content-length")  # fmt: skip
                seen.heads.append(head)
                seen.bodies.append(await reader.readexactly(length))
                reply = answers(len(seen.bodies) - 1)
                if reply is None:
                    await stop.wait()  # no answer until the test ends
                    break
                writer.write(reply)
                await writer.drain()
                if close_after:
                    break
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=tls)
    try:
        yield seen
    finally:
        server.close()
        stop.set()
        for writer in writers:
            writer.close()  # a handler still reading sees the end of its stream
        async with asyncio.timeout(5):
            await asyncio.gather(*handlers)
            await server.wait_closed()


async def send_once(transport: Transport, body: bytes = b"request") -> SendResult:
    try:
        return await transport.send(body, 2.0)
    finally:
        await transport.close()


def header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


ANSWERS = [
    (answer(200), SendResult(Outcome.SUCCESS)),
    (answer(200, partial_success(2, "too old")), SendResult(Outcome.SUCCESS, "too old", rejected=2)),
    (answer(400, b"bad span"), SendResult(Outcome.PERMANENT, "HTTP 400: bad span")),
    (answer(413, b"x" * 500), SendResult(Outcome.PERMANENT, "HTTP 413: " + "x" * 200)),
    (answer(429, b"slow down", "retry-after: 7"), SendResult(Outcome.RETRYABLE, "HTTP 429: slow down", 7.0)),
    (answer(503, b"busy"), SendResult(Outcome.RETRYABLE, "HTTP 503: busy")),
    (
        answer(200, gzip.compress(partial_success(1, "dup")), "content-encoding: gzip"),
        SendResult(Outcome.SUCCESS, "dup", rejected=1),
    ),
    (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(partial_success(3, "late"))
        + partial_success(3, "late")
        + b"\r\n0\r\n\r\n",
        SendResult(Outcome.SUCCESS, "late", rejected=3),
    ),
]


@pytest.mark.parametrize("leaf", [LeanHttpTransport, HttpTransport])
@pytest.mark.parametrize(("reply", "expected"), ANSWERS)
async def test_both_leaves_classify_an_answer_alike(
    leaf: type[LeanHttpTransport | HttpTransport], reply: bytes, expected: SendResult
) -> None:
    async with collector(lambda i: reply) as seen:
        result = await send_once(leaf(OtlpEndpoint(endpoint=seen.url)))
    assert result == expected
    assert seen.bodies == [b"request"]


@pytest.mark.parametrize("leaf", [LeanHttpTransport, HttpTransport])
async def test_both_leaves_read_an_http_date_retry_after(leaf: type[LeanHttpTransport | HttpTransport]) -> None:
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    async with collector(lambda i: answer(503, b"", f"retry-after: {when}")) as seen:
        result = await send_once(leaf(OtlpEndpoint(endpoint=seen.url)))
    assert result.outcome is Outcome.RETRYABLE
    assert result.retry_after_s == pytest.approx(60, abs=2)


@pytest.mark.parametrize("leaf", [LeanHttpTransport, HttpTransport])
async def test_both_leaves_send_the_same_headers_and_gzip(leaf: type[LeanHttpTransport | HttpTransport]) -> None:
    async with collector(lambda i: answer(200)) as seen:
        settings = OtlpEndpoint(endpoint=seen.url + "?tenant=a", headers={"x-api-key": "k1"}, compression="gzip")
        assert await send_once(leaf(settings)) == SendResult(Outcome.SUCCESS)
    head = seen.heads[0]
    assert head.startswith(b"POST /v1/traces?tenant=a HTTP/1.1\r\n")
    assert header(head, b"host") == seen.url.split("/")[2].encode()
    assert header(head, b"content-type") == b"application/x-protobuf"
    assert header(head, b"content-encoding") == b"gzip"
    assert header(head, b"x-api-key") == b"k1"
    assert header(head, b"user-agent") == f"otel-bridge/{__version__}".encode()
    assert gzip.decompress(seen.bodies[0]) == b"request"


@pytest.mark.parametrize("leaf", [LeanHttpTransport, HttpTransport])
async def test_both_leaves_send_the_url_s_user_and_password_as_basic_auth(
    leaf: type[LeanHttpTransport | HttpTransport],
) -> None:
    async with collector(lambda i: answer(200)) as seen:
        url = seen.url.replace("http://", "http://otel:s%40cret@")
        settings = OtlpEndpoint(endpoint=url, headers={"Authorization": "Bearer overridden"})
        assert await send_once(leaf(settings)) == SendResult(Outcome.SUCCESS)
    assert header(seen.heads[0], b"authorization") == b"Basic " + base64.b64encode(b"otel:s@cret")
    assert header(seen.heads[0], b"host") == seen.url.split("/")[2].encode()


@pytest.mark.parametrize("leaf", [LeanHttpTransport, HttpTransport])
async def test_a_configured_header_replaces_a_default_whatever_its_case(
    leaf: type[LeanHttpTransport | HttpTransport],
) -> None:
    async with collector(lambda i: answer(200)) as seen:
        settings = OtlpEndpoint(endpoint=seen.url, headers={"content-type": "application/vnd.test", "user-agent": "me"})
        assert await send_once(leaf(settings)) == SendResult(Outcome.SUCCESS)
    lines = [line.lower() for line in seen.heads[0].split(b"\r\n")]
    assert [line for line in lines if line.startswith((b"content-type:", b"user-agent:"))] == [
        b"content-type: application/vnd.test",
        b"user-agent: me",
    ]


async def test_json_bodies_say_so_and_their_answers_carry_no_partial_success() -> None:
    async with collector(lambda i: answer(200, b'{"partialSuccess": {"rejectedSpans": 2}}')) as seen:
        result = await send_once(LeanHttpTransport(OtlpEndpoint(endpoint=seen.url), json_body=True))
    assert result == SendResult(Outcome.SUCCESS)
    assert header(seen.heads[0], b"content-type") == b"application/json"


async def test_requests_share_one_kept_alive_connection() -> None:
    async with collector(lambda i: answer(200)) as seen:
        transport = LeanHttpTransport(OtlpEndpoint(endpoint=seen.url))
        for n in range(3):
            assert await transport.send(b"batch %d" % n, 2.0) == SendResult(Outcome.SUCCESS)
        await transport.close()
    assert seen.connections == 1
    assert seen.bodies == [b"batch 0", b"batch 1", b"batch 2"]


async def test_a_connection_the_collector_closed_is_replaced_without_a_failure() -> None:
    async with collector(lambda i: answer(200), close_after=True) as seen:
        transport = LeanHttpTransport(OtlpEndpoint(endpoint=seen.url))
        assert await transport.send(b"one", 2.0) == SendResult(Outcome.SUCCESS)
        await asyncio.sleep(0.05)  # the server's close reaches the idle connection
        assert await transport.send(b"two", 2.0) == SendResult(Outcome.SUCCESS)
        await transport.close()
    assert seen.bodies == [b"one", b"two"]
    assert seen.connections == 2


async def test_an_answer_that_asks_to_close_is_not_reused() -> None:
    async with collector(lambda i: answer(200, b"", "connection: close")) as seen:
        transport = LeanHttpTransport(OtlpEndpoint(endpoint=seen.url))
        assert await transport.send(b"one", 2.0) == SendResult(Outcome.SUCCESS)
        assert await transport.send(b"two", 2.0) == SendResult(Outcome.SUCCESS)
        await transport.close()
    assert seen.connections == 2


async def test_no_answer_within_the_timeout_is_retryable_and_the_connection_is_dropped() -> None:
    async with collector(lambda i: None if i == 0 else answer(200)) as seen:
        transport = LeanHttpTransport(OtlpEndpoint(endpoint=seen.url))
        started = time.monotonic()
        result = await transport.send(b"one", 0.3)
        assert time.monotonic() - started < 2
        assert result == SendResult(Outcome.RETRYABLE, "TimeoutError: no answer within 0.3 s")
        assert await transport.send(b"two", 2.0) == SendResult(Outcome.SUCCESS)
        await transport.close()
    assert seen.connections == 2


@pytest.mark.parametrize("leaf", [LeanHttpTransport, HttpTransport])
async def test_a_refused_connection_is_retryable(leaf: type[LeanHttpTransport | HttpTransport]) -> None:
    result = await send_once(leaf(OtlpEndpoint(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces")))
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail.startswith("ConnectError: ")  # as the httpx leaf says it


async def test_a_broken_answer_is_retryable() -> None:
    async with collector(lambda i: b"NOT HTTP AT ALL\r\n\r\n") as seen:
        result = await send_once(LeanHttpTransport(OtlpEndpoint(endpoint=seen.url)))
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail.startswith("RemoteProtocolError: ")


# -- TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by ``openssl``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: no certificate for the TLS tests")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.mark.parametrize("leaf", [LeanHttpTransport, HttpTransport])
async def test_https_with_the_configured_certificate(
    leaf: type[LeanHttpTransport | HttpTransport], certificate: tuple[Path, Path]
) -> None:
    reply = answer(200, partial_success(1, "over TLS"))
    async with collector(lambda i: reply, tls=server_tls(certificate)) as seen:
        transport = leaf(OtlpEndpoint(endpoint=seen.url, certificate=str(certificate[0])))
        assert await send_once(transport) == SendResult(Outcome.SUCCESS, "over TLS", rejected=1)
    assert seen.bodies == [b"request"]


@pytest.mark.parametrize("leaf", [LeanHttpTransport, HttpTransport])
async def test_https_refuses_a_certificate_it_does_not_trust(
    leaf: type[LeanHttpTransport | HttpTransport], certificate: tuple[Path, Path]
) -> None:
    async with collector(lambda i: answer(200), tls=server_tls(certificate)) as seen:
        result = await send_once(leaf(OtlpEndpoint(endpoint=seen.url)))  # certifi's roots do not know it
    assert result.outcome is Outcome.RETRYABLE
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert seen.bodies == []


# -- which leaf ------------------------------------------------------------------------

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_http_endpoints_use_the_lean_leaf(no_proxy_env: pytest.MonkeyPatch) -> None:
    for url in ("http://collector:4318/v1/traces", "https://collector:4318/v1/traces"):
        assert type(make_transport(OtlpEndpoint(endpoint=url))) is LeanHttpTransport
        assert type(make_transport(OtlpEndpoint(endpoint=url, protocol="http/json"))) is LeanHttpTransport
    grpc = make_transport(OtlpEndpoint(endpoint="http://collector:4317", protocol="grpc"))
    assert type(grpc) is GrpcTransport
    await grpc.close()


@pytest.mark.parametrize(
    ("variable", "url", "leaf"),
    [
        ("HTTPS_PROXY", "https://collector:4318/v1/traces", HttpTransport),
        ("https_proxy", "https://collector:4318/v1/traces", HttpTransport),
        ("HTTPS_PROXY", "http://collector:4318/v1/traces", LeanHttpTransport),
        ("HTTP_PROXY", "http://collector:4318/v1/traces", HttpTransport),
        ("ALL_PROXY", "http://collector:4318/v1/traces", HttpTransport),
    ],
)
def test_an_endpoint_a_proxy_could_apply_to_keeps_the_httpx_leaf(
    no_proxy_env: pytest.MonkeyPatch, variable: str, url: str, leaf: type[Transport]
) -> None:
    no_proxy_env.setenv(variable, "http://proxy.internal:3128")
    assert type(make_transport(OtlpEndpoint(endpoint=url))) is leaf


async def test_the_httpx_leaf_goes_through_the_proxy(no_proxy_env: pytest.MonkeyPatch) -> None:
    """A forward proxy on loopback sees the absolute-form request the httpx leaf sends it."""
    async with collector(lambda i: answer(200)) as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url.removesuffix("/v1/traces"))
        transport = make_transport(OtlpEndpoint(endpoint="http://collector.invalid:4318/v1/traces"))
        assert isinstance(transport, HttpTransport)
        assert await send_once(transport) == SendResult(Outcome.SUCCESS)
    assert proxy.heads[0].startswith(b"POST http://collector.invalid:4318/v1/traces HTTP/1.1\r\n")
