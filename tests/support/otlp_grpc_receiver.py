"""A minimal in-process OTLP/gRPC trace receiver (grpcio + ``opentelemetry-proto``'s service stubs).

The collectors' ``otlp_grpc`` exporters send here where the deployment has a
backend the tests cannot run (Tempo), or where a test needs to see exactly
which spans one exporter delivered (each gateway of the gateway variant).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class OtlpGrpcReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def Export(  # the generated service's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spans(self) -> list[Span]:
        with self._lock:
            requests = list(self.requests)
        return [span for r in requests for rs in r.resource_spans for ss in rs.scope_spans for span in ss.spans]

    def wait_for_spans(self, predicate: Callable[[list[Span]], bool], timeout: float = 20.0) -> list[Span]:
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for spans; have {len(spans)}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.stop(grace=None)
