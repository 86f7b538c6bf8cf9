"""bench_pipeline.py's baseline: the same mapping written plainly with the OpenTelemetry SDK.

A FastAPI app served by uvicorn exactly as ``otel-bridge serve`` is (same loop and HTTP
implementations, one worker), with ``POST /v1/events`` taking the same NDJSON bodies and the
same optional query parameters (as FastAPI typed arguments, the way one would write it), and
``TracerProvider`` + ``BatchSpanProcessor`` + ``OTLPSpanExporter`` (OTLP/HTTP protobuf) sending
to the same collector. It maps the bench's event kinds to the spans otel-bridge emits for them
(names, kinds, parents, links, attributes, span events, times): ``bench_pipeline.py --check``
compares the two outputs. ``GET /health`` says how many spans the exporter has delivered.

Usage: python bench/sdk_baseline_server.py PORT OTLP_TRACES_URL
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Span, SpanKind


class CountingExporter(SpanExporter):
    """The OTLP exporter, counting what it delivered (the bench waits for every span)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.exported = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


# USD per token, as otel-bridge's price table has them (the sidecar prices every call it maps).
PRICES = {"gpt-4o-mini": (0.15e-6, 0.6e-6)}


class _Run:
    def __init__(self, root: Span) -> None:
        self.root = root
        self.calls: dict[str, Span] = {}
        self.input = 0
        self.output = 0
        self.cost = 0.0


def create_app(endpoint: str) -> FastAPI:
    exporter = CountingExporter(OTLPSpanExporter(endpoint=endpoint))
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-baseline"}))
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=1_000_000, max_export_batch_size=512, schedule_delay_millis=100)
    )
    tracer = provider.get_tracer("sdk-baseline")
    runs: dict[str, _Run] = {}
    app = FastAPI()

    def map_event(e: dict[str, Any], line: str, source: str) -> None:
        kind, run_id, ts = e["kind"], e["run_id"], e["timestamp"]
        if kind == "run.started":
            root = tracer.start_span(
                f"invoke_agent {e['agent']}",
                start_time=ts,
                attributes={
                    "gen_ai.operation.name": "invoke_agent",
                    "otel_bridge.run.id": run_id,
                    "otel_bridge.source": source,
                    "otel_bridge.dialect": "generic",
                    "gen_ai.agent.name": e["agent"],
                },
            )
            runs[run_id] = _Run(root)
            return
        run = runs[run_id]
        ctx = trace.set_span_in_context(run.root)
        if kind == "llm.started":
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": e["provider"],
                "gen_ai.request.model": e["model"],
                "otel_bridge.call.id": e["call_id"],
                "otel_bridge.dialect": "generic",
            }
            if "temperature" in e:
                attrs["gen_ai.request.temperature"] = e["temperature"]
            run.calls[e["call_id"]] = tracer.start_span(
                f"chat {e['model']}", context=ctx, kind=SpanKind.CLIENT, start_time=ts, attributes=attrs
            )
        elif kind == "llm.completed":
            span = run.calls[e["call_id"]]
            usage = e["usage"]
            span.set_attributes(
                {
                    "gen_ai.response.model": e["model"],
                    "gen_ai.response.id": e["response_id"],
                    "gen_ai.response.finish_reasons": e["finish_reasons"],
                    "gen_ai.usage.input_tokens": usage["input"],
                    "gen_ai.usage.output_tokens": usage["output"],
                }
            )
            per_input, per_output = PRICES[e["model"]]
            cost = usage["input"] * per_input + usage["output"] * per_output
            span.set_attribute("gen_ai.usage.cost", cost)
            run.input += usage["input"]
            run.output += usage["output"]
            run.cost += cost
            span.end(end_time=ts)
        elif kind == "tool.started":
            links = []
            parent_call = run.calls.get(e.get("parent_call_id", ""))
            if parent_call is not None:
                links.append(Link(parent_call.get_span_context()))
            run.calls[e["call_id"]] = tracer.start_span(
                f"execute_tool {e['tool_name']}",
                context=ctx,
                start_time=ts,
                links=links,
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": e["tool_name"],
                    "gen_ai.tool.call.id": e["call_id"],
                    "gen_ai.tool.type": "function",
                    "otel_bridge.dialect": "generic",
                },
            )
        elif kind == "tool.completed":
            run.calls.pop(e["call_id"]).end(end_time=ts)
        elif kind == "progress":
            run.root.add_event(
                "progress",
                {
                    "otel_bridge.event.type": "progress",
                    "otel_bridge.status": e["status"],
                    "otel_bridge.event.payload": line,
                },
                timestamp=ts,
            )
        elif kind == "message":
            run.root.add_event("message", {"otel_bridge.event.type": "message"}, timestamp=ts)
        elif kind == "run.finished":
            del runs[run_id]
            run.root.set_attributes(
                {
                    "otel_bridge.status": e["status"],
                    "gen_ai.usage.input_tokens": run.input,
                    "gen_ai.usage.output_tokens": run.output,
                    "gen_ai.usage.cost": run.cost,
                }
            )
            run.root.end(end_time=ts)

    @app.post("/v1/events", status_code=202)
    async def ingest(
        request: Request, dialect: str | None = None, run_id: str | None = None, source: str | None = None
    ) -> JSONResponse:
        body = await request.body()
        lines = body.decode().splitlines()
        for line in lines:
            if line.strip():
                map_event(json.loads(line), line, source or "http")
        return JSONResponse({"accepted": len(lines)}, status_code=202)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"exported": exporter.exported, "failed": exporter.failed})

    return app


if __name__ == "__main__":
    port, endpoint = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(create_app(endpoint), host="127.0.0.1", port=port, log_level="warning", loop="auto", http="auto")
