"""A built-in synthetic agent for ``otel-bridge demo``: realistic runs, posted over HTTP.

It speaks the bridge's canonical JSON (the ``generic`` dialect) to
``POST /v1/events`` one event at a time, as a real agent would: streamed LLM
calls with chunks, tool calls, thinking, state changes, and now and then a
failed call or a failed run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import Any

import httpx

log = logging.getLogger(__name__)

_AGENTS = (
    ("research-agent", "openai", "gpt-4o-mini", ("web_search", "fetch_page")),
    ("writer-agent", "anthropic", "claude-sonnet-4-5", ("read_notes", "save_draft")),
    ("support-agent", "openai", "gpt-4.1", ("lookup_order", "refund")),
)


OUTAGE_QUIET_S = 2.0
"""How long the bridge may be unreachable before the demo agent says so (once an outage)."""


class DemoAgent:
    """Posts one run after another until cancelled."""

    def __init__(
        self,
        base_url: str,
        *,
        seed: int | None = None,
        pace: float = 1.0,
        token: str | None = None,
        startup_wait_s: float = 10.0,
    ) -> None:
        self._url = base_url.rstrip("/") + "/v1/events"
        self._health = base_url.rstrip("/") + "/v1/health"
        self._startup_wait_s = startup_wait_s
        self._rng = random.Random(seed)
        self._pace = pace
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.runs = 0

    async def _post(self, client: httpx.AsyncClient, event: dict[str, Any]) -> None:
        event.setdefault("timestamp", time.time_ns())
        response = await client.post(self._url, json=event, headers=self._headers)
        if response.status_code != 202:
            log.warning("demo agent: bridge answered %s: %s", response.status_code, response.text[:200])

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self._pace)

    async def _wait_for_bridge(self, client: httpx.AsyncClient) -> None:
        """It starts with the app, before the server listens: wait for the server quietly, for a while."""
        deadline = time.monotonic() + self._startup_wait_s
        while time.monotonic() < deadline:
            try:
                await client.get(self._health)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.05)

    async def run_forever(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await self._wait_for_bridge(client)
            # An outage is told once, and only past OUTAGE_QUIET_S: not the moment between the
            # server's stop and this task's cancellation at shutdown.
            down_since: float | None = None
            told = False
            while True:
                try:
                    await self.one_run(client)
                    down_since, told = None, False
                except httpx.HTTPError as exc:
                    now = time.monotonic()
                    down_since = now if down_since is None else down_since
                    if not told and now - down_since >= OUTAGE_QUIET_S:
                        log.warning("demo agent: cannot reach the bridge (%r); retrying", exc)
                        told = True
                await self._sleep(self._rng.uniform(0.5, 2.0))

    async def one_run(self, client: httpx.AsyncClient) -> None:
        rng = self._rng
        agent, provider, model, tools = rng.choice(_AGENTS)
        run = f"demo-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
        base = {"run_id": run, "agent": agent}
        post = self._post
        await post(client, {**base, "kind": "run.started", "type": "demo.run_started"})
        await post(client, {**base, "kind": "state.changed", "type": "demo.state", "name": "plan"})
        fail_run = rng.random() < 0.12
        for turn in range(rng.randint(1, 3)):
            call = f"{run}-llm{turn}"
            llm = {**base, "call_id": call, "provider": provider, "model": model}
            await post(client, {**llm, "kind": "llm.started", "stream": True, "temperature": 0.2, "max_tokens": 1024})
            await self._sleep(rng.uniform(0.15, 0.6))  # time to first chunk
            for _ in range(rng.randint(3, 8)):
                await post(client, {**llm, "kind": "llm.chunk"})
                await self._sleep(rng.uniform(0.02, 0.08))
            if fail_run and turn == 0 and rng.random() < 0.5:
                await post(client, {**llm, "kind": "llm.failed", "error": "RateLimitError: 429 Too Many Requests"})
                await post(
                    client, {**base, "kind": "run.failed", "error": "model unavailable", "error_type": "RateLimitError"}
                )
                self.runs += 1
                return
            usage = {
                "input": rng.randint(200, 4000),
                "output": rng.randint(20, 600),
                "cache_read": rng.choice([0, 0, 512]),
            }
            last = turn > 0 and rng.random() < 0.5
            await post(
                client,
                {
                    **llm,
                    "kind": "llm.completed",
                    "usage": usage,
                    "finish_reasons": ["stop" if last else "tool_calls"],
                    "response_id": f"resp-{call}",
                },
            )
            if last:
                break
            await post(client, {**base, "kind": "thinking", "text": "I should call a tool."})
            tool = rng.choice(tools)
            tool_call = f"{call}-t"
            await post(
                client,
                {**base, "kind": "tool.started", "tool_name": tool, "call_id": tool_call, "parent_call_id": call},
            )
            await self._sleep(rng.uniform(0.05, 0.8))
            if rng.random() < 0.1:
                await post(
                    client,
                    {
                        **base,
                        "kind": "tool.failed",
                        "tool_name": tool,
                        "call_id": tool_call,
                        "error": "TimeoutError: upstream took too long",
                    },
                )
            else:
                await post(client, {**base, "kind": "tool.completed", "tool_name": tool, "call_id": tool_call})
            await post(client, {**base, "kind": "progress", "name": f"turn {turn + 1}"})
        if fail_run:
            await post(client, {**base, "kind": "run.failed", "error": "gave up", "error_type": "AgentGaveUp"})
        else:
            await post(client, {**base, "kind": "run.finished", "status": "completed"})
        self.runs += 1
