"""Real producers served over SSE by a real uvicorn, and the bridge they are ingested into.

Each producer is the library's own code (a Locus agent with its scripted test
model behind its ``SSEHandler`` or its ``AgentServer``, the AG-UI encoder,
agent-event-stream's FastAPI helper) or payloads built from the provider SDK's
own types. :func:`serve` runs an app on a free loopback port inside the test's
event loop and always stops it; :func:`ingest` POSTs a captured stream to the
real bridge app and returns the finished span tree.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import uvicorn

from otel_bridge.app import create_app
from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, Settings, StoreSettings
from otel_bridge.pipeline import ListSink
from tests.support.golden import span_trees
from tests.support.ports import free_port

# Attributes whose values differ on every run of a live producer (times, generated ids, raw payloads).
VOLATILE = frozenset(
    {
        "gen_ai.response.time_to_first_chunk",
        "otel_bridge.run.id",
        "otel_bridge.event.payload",
        "otel_bridge.event.id",
    }
)


_STARTUP_S = 10.0  # uvicorn starts in well under a second; this only bounds a broken start


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port; yields its base URL; stops it on exit."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(_STARTUP_S):
            while not server.started:
                if task.done():
                    task.result()  # raises the startup error
                    raise RuntimeError("uvicorn exited before it started")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, _STARTUP_S)


async def capture(url: str, *, method: str = "POST", json: Any = None) -> bytes:
    """The raw bytes of one SSE response, as a client receives them."""
    async with httpx.AsyncClient(timeout=20.0) as client:
        response = await client.request(method, url, json=json, headers={"Accept": "text/event-stream"})
        response.raise_for_status()
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.content


async def ingest(body: bytes, *, capture_content: bool = False, **params: str) -> tuple[dict[str, Any], list[Any]]:
    """POST a captured stream to the real bridge app; ``(its answer, the span trees)``."""
    settings = Settings(store=StoreSettings(enabled=False), mapping=MappingSettings(capture_content=capture_content))
    sink = ListSink()
    pipeline = assemble(settings, extra_sinks=[sink], pricer=None)
    app = create_app(settings, pipeline)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as client:
        response = await client.post(
            "/v1/events", content=body, params=params, headers={"Content-Type": "text/event-stream"}
        )
    assert response.status_code == 202, response.text
    pipeline.mapper.close_all()
    return response.json(), span_trees(sink.spans)


def outline(traces: Iterable[dict[str, Any]]) -> list[str]:
    """A whole span forest without times and ids: one line per span and per span event.

    ``<indent><name> [<kind> <status>] k=v ...`` then ``<indent>  @<event> k=v ...``;
    links show as ``-> <linked span name>``.
    """
    lines: list[str] = []
    for trace in traces:
        names = _names(trace["spans"])
        for span in trace["spans"]:
            _outline(span, 0, names, lines)
    return lines


def _names(spans: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for span in spans:
        out[span["span_id"]] = span["name"]
        out.update(_names(span.get("children", [])))
    return out


def _pairs(attributes: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(attributes.items()) if k not in VOLATILE)


def _outline(span: dict[str, Any], depth: int, names: dict[str, str], lines: list[str]) -> None:
    pad = "  " * depth
    links = "".join(f" -> {names.get(link, '?')}" for link in span.get("links", []))
    lines.append(f"{pad}{span['name']} [{span['kind']} {span['status']}]{links} {_pairs(span['attributes'])}".rstrip())
    for event in span.get("events", []):
        lines.append(f"{pad}  @{event['name']} {_pairs(event['attributes'])}".rstrip())
    for child in span.get("children", []):
        _outline(child, depth + 1, names, lines)
