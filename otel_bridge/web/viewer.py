"""``GET /``: the embedded store's own viewer, one static page with no build step.

The page (``web/static/``, plain JavaScript and CSS shipped in the wheel)
searches the store through ``GET /v1/traces``, reads a trace from
``GET /v1/traces/{id}`` (OTLP/JSON) as a span tree on a time ruler, grows a
running run's waterfall from the live feed ``/v1/stream`` and tails the feed.
The server writes into the page what the script must agree with: the feed's
event names, the attribute and operation names of :mod:`otel_bridge.semconv`
(so the script never spells one) and the ``trace_url_template`` for links out.
Only the files listed here are served.
"""

from __future__ import annotations

import json
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from otel_bridge import semconv as sc
from otel_bridge.model import EventKind
from otel_bridge.web.problem import problem

KINDS_PLACEHOLDER = b"{{KINDS}}"
"""In index.html: replaced by the canonical kinds (EventSource needs a listener per event name)."""
CONFIG_PLACEHOLDER = b"{{CONFIG}}"
"""In index.html: replaced by :func:`page_config` as JSON."""

# The names the script reads spans by, under short keys of its own.
_ATTRS = {
    "operation": sc.GEN_AI_OPERATION_NAME,
    "requestModel": sc.GEN_AI_REQUEST_MODEL,
    "responseModel": sc.GEN_AI_RESPONSE_MODEL,
    "finishReasons": sc.GEN_AI_RESPONSE_FINISH_REASONS,
    "ttfc": sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    "inputTokens": sc.GEN_AI_USAGE_INPUT_TOKENS,
    "outputTokens": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    "cacheReadTokens": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "cacheCreationTokens": sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "cacheWriteTokens": sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    "reasoningTokens": sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    "cost": sc.GEN_AI_USAGE_COST,
    "inputMessages": sc.GEN_AI_INPUT_MESSAGES,
    "outputMessages": sc.GEN_AI_OUTPUT_MESSAGES,
    "toolArguments": sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    "toolResult": sc.GEN_AI_TOOL_CALL_RESULT,
    "errorType": sc.ERROR_TYPE,
    "errorMessage": sc.BRIDGE_ERROR_MESSAGE,
    "closeReason": sc.BRIDGE_CLOSE_REASON,
    "exceptionEvent": sc.EVENT_EXCEPTION,
    "exceptionMessage": sc.EXCEPTION_MESSAGE,
}
_OPS = {
    "agent": sc.OP_INVOKE_AGENT,
    "workflow": sc.OP_INVOKE_WORKFLOW,
    "chat": sc.OP_CHAT,
    "tool": sc.OP_EXECUTE_TOOL,
    "step": sc.SPAN_STEP,
}


def page_config(trace_url_template: str | None) -> dict[str, object]:
    """What the script is told at load: event names, attribute names, link template."""
    return {
        "kinds": [kind.value for kind in EventKind],
        "attrs": _ATTRS,
        "ops": _OPS,
        "genAiPrefix": sc.GEN_AI_OPERATION_NAME.split(".")[0] + ".",
        "bridgePrefix": sc.BRIDGE_DIALECT.split(".")[0] + ".",
        "traceUrlTemplate": trace_url_template,
    }


def _script_json(value: object) -> bytes:
    # Inside <script>: "</" would end the element early, so it is escaped.
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/").encode()


FILES = {
    "index.html": "text/html; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}


def _read(name: str) -> bytes:
    return resources.files("otel_bridge.web").joinpath("static", name).read_bytes()


def viewer_router(trace_url_template: str | None = None) -> APIRouter:
    """``GET /`` and ``/static/{name}``; ``trace_url_template`` (``feed.trace_url_template``) links traces out."""
    router = APIRouter()
    files = {name: _read(name) for name in FILES}  # read once: tens of kilobytes
    kinds = " ".join(kind.value for kind in EventKind).encode()
    page = files["index.html"].replace(KINDS_PLACEHOLDER, kinds)
    files["index.html"] = page.replace(CONFIG_PLACEHOLDER, _script_json(page_config(trace_url_template)))

    @router.get("/", include_in_schema=False)
    async def index() -> Response:
        """The viewer page."""
        return Response(files["index.html"], media_type=FILES["index.html"], headers={"Cache-Control": "no-cache"})

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        """The viewer's script and style sheet."""
        if name not in files:
            return problem(404, "not_found", f"no static file {name!r}")
        return Response(files[name], media_type=FILES[name], headers={"Cache-Control": "no-cache"})

    return router
