"""A real rotel OTLP collector (PyPI ``rotel``), started per test.

It receives on gRPC and HTTP and forwards everything over OTLP/HTTP to an
in-process :class:`OtlpReceiver`, so tests read back exactly what a real
collector accepted.
"""

from __future__ import annotations

import pathlib
import subprocess
import time
from collections.abc import Callable

import rotel
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.ports import free_port, stop_process, wait_for_port

ROTEL_BIN = pathlib.Path(rotel.__file__).parent / "rotel-agent"


class Rotel:
    def __init__(self, log_path: pathlib.Path, *, metrics: bool = False) -> None:
        self.receiver = OtlpReceiver().start()
        self.grpc_port = free_port()
        self.http_port = free_port()
        args = [
            str(ROTEL_BIN),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--otlp-receiver-logs-disabled",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            self.receiver.url,
            "--otlp-exporter-protocol",
            "http",
            "--traces-batch-timeout",
            "50ms",
            "--metrics-batch-timeout",
            "50ms",
        ]
        if not metrics:
            args.append("--otlp-receiver-metrics-disabled")
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        ok = wait_for_port(self.grpc_port) and wait_for_port(self.http_port)
        time.sleep(0.1)  # a bad flag combination exits right after the port opens
        if not ok or self._proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"rotel did not start: {log_path.read_text(errors='replace')[-2000:]}")

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def wait_for_spans(self, predicate: Callable[[list[Span]], bool], timeout: float = 15.0) -> list[Span]:
        return self.receiver.wait_for_spans(predicate, timeout)

    def stop(self) -> None:
        stop_process(self._proc, 5)
        self._log.close()
        self.receiver.stop()
