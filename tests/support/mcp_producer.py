"""The MCP SDK on both sides of the sidecar's MCP proxy, run by the SDK's own virtualenv (not ours).

``python mcp_producer.py server PORT [SLOW_S]`` serves a FastMCP-style ``MCPServer``
(warehouse tools) over Streamable HTTP on loopback; ``python mcp_producer.py
client URL MODE [TRACEPARENT]`` connects the SDK's ``Client`` (``MODE``: ``legacy``
for the 2025-11-25 handshake with a session, ``auto`` for the stateless era),
makes the calls the tests check and prints, as one JSON document, every result
the client saw (and when progress and results arrived, apart, under ``timing``).
With ``TRACEPARENT`` the calls run inside that (remote) span context, so the
SDK puts it in each request's ``params._meta``.
"""

# No ``from __future__ import annotations``: the SDK reads the tools' annotations at runtime, and
# ``Context`` is imported inside ``serve`` (this module is imported by our tests, which lack the SDK).
import asyncio
import json
import sys
import time
import warnings
from typing import Any

warnings.simplefilter("ignore")  # the SDK warns about its deprecated logging feature, which we use on purpose


def serve(port: int, slow_s: float) -> None:
    import uvicorn
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    app = MCPServer("warehouse-ops", instructions="Stock, reorders and holds for the RTM warehouses.")

    @app.tool(description="Quote a supplier reorder for a SKU.")
    def reorder_quote(sku: str, qty: int) -> dict[str, Any]:
        return {"sku": sku, "qty": qty, "unit_price_eur": 3.85, "lead_time_days": 6}

    @app.tool(description="Release a stock hold placed for an order.")
    def release_hold(order_id: str) -> str:
        raise ToolError(f"order {order_id} is locked by another operator")

    @app.tool(description="Re-count a warehouse against the ERP, reporting progress per zone.")
    async def sync_inventory(warehouse: str, ctx: Context) -> str:
        for i, zone in enumerate("ABCD", 1):
            await ctx.report_progress(i, 4, f"zone {zone} reconciled")
        await ctx.info(f"{warehouse}: 2 discrepancies")
        await asyncio.sleep(slow_s)  # the result comes this long after the progress: streaming must show it
        return f"{warehouse}: 4 zones reconciled, 2 discrepancies"

    @app.prompt(description="Summarise a warehouse's day.")
    def daily_summary(warehouse: str) -> str:
        return f"Summarise today's movements in {warehouse}."

    uvicorn.run(app.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)


async def call(url: str, mode: str, traceparent: str | None) -> dict[str, Any]:
    from mcp import Client
    from mcp.types import Implementation

    token = None
    if traceparent is not None:
        from opentelemetry import context, trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        _, trace_id, span_id, _ = traceparent.split("-")
        parent = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1))
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    seen: list[Any] = []
    logs: list[Any] = []
    progress: list[Any] = []
    timing: dict[str, float] = {}

    async def on_log(params: Any) -> None:
        logs.append(_dump(params))

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        timing.setdefault("first_progress", time.monotonic())
        progress.append([done, total, message])

    client = Client(
        url,
        mode=mode,  # type: ignore[arg-type]
        cache=None,  # every call reaches the server
        logging_callback=on_log,
        log_level="info",
        client_info=Implementation(name="warehouse-assistant", version="3.2.0"),
    )
    try:
        async with client as c:
            seen.append(["protocol", c.protocol_version])
            seen.append(["tools/list", _dump(await c.list_tools())])
            for name, args in (
                ("reorder_quote", {"sku": "SKU-44120", "qty": 600}),
                ("release_hold", {"order_id": "SO-99812"}),
                ("no_such_tool", {}),
            ):
                seen.append([name, _dump(await c.call_tool(name, args))])
            try:
                seen.append(["prompts/get", _dump(await c.get_prompt("no_such_prompt", {}))])
            except Exception as exc:  # the JSON-RPC error, as the SDK raises it
                seen.append(["prompts/get", type(exc).__name__, str(exc), _dump(getattr(exc, "error", None) or {})])
            result = await c.call_tool("sync_inventory", {"warehouse": "RTM-3"}, progress_callback=on_progress)
            timing["result"] = time.monotonic()
            seen.append(["sync_inventory", _dump(result)])
    finally:
        if token is not None:
            from opentelemetry import context

            context.detach(token)
    seen.append(["progress", progress])
    seen.append(["logs", logs])
    return {"seen": seen, "timing": timing}


def main(argv: list[str]) -> None:
    if argv[0] == "server":
        serve(int(argv[1]), float(argv[2]) if len(argv) > 2 else 0.0)
    else:
        out = asyncio.run(call(argv[1], argv[2], argv[3] if len(argv) > 3 else None))
        print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
