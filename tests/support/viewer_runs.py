"""Fixed runs for the viewer's tests: canonical events with explicit timestamps, so ids and times are the same each run.

Trace ids derive from run ids (``mapping/ids.py``) and every event carries its
own time, so a page drawn from these runs is the same picture every time.
"""

from __future__ import annotations

import json
from typing import Any

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW_MS = T0_MS + 200_000  # the page's frozen clock in screenshots: after every run below started


def at(start_s: float, offset_s: float = 0.0) -> int:
    """Nanoseconds since the epoch, ``start_s + offset_s`` seconds after ``T0_MS``."""
    return round((T0_MS + (start_s + offset_s) * 1000) * 1_000_000)


def run(
    run_id: str,
    *,
    agent: str,
    model: str,
    start_s: float,
    seconds: float,
    tokens: tuple[int, int],
    fail: bool = False,
    tool: str = "search",
) -> list[dict[str, Any]]:
    """One run: an LLM call with its answer, a tool call with arguments and result, then the end."""
    base = {"run_id": run_id, "agent": agent}
    llm = {**base, "model": model, "provider": "openai", "call_id": f"{run_id}-c"}
    tool_call = {**base, "tool_name": tool, "call_id": f"{run_id}-t"}
    end: dict[str, Any] = (
        {**base, "kind": "run.failed", "timestamp": at(start_s, seconds), "error": "gave up", "error_type": "GaveUp"}
        if fail
        else {**base, "kind": "run.finished", "timestamp": at(start_s, seconds)}
    )
    return [
        {**base, "kind": "run.started", "timestamp": at(start_s)},
        {**llm, "kind": "llm.started", "timestamp": at(start_s, 0.1), "stream": True},
        {**llm, "kind": "llm.chunk", "timestamp": at(start_s, 0.2)},
        {
            **llm,
            "kind": "llm.completed",
            "timestamp": at(start_s, 0.4),
            "usage": {"input": tokens[0], "output": tokens[1]},
            "finish_reasons": ["tool_calls"],
            "text": f"I will call {tool}.",
        },
        {**base, "kind": "thinking", "timestamp": at(start_s, 0.45), "text": f"{tool} should know."},
        {
            **tool_call,
            "kind": "tool.started",
            "timestamp": at(start_s, 0.5),
            "arguments": json.dumps({"query": f"{run_id} notes"}),
        },
        {
            **tool_call,
            "kind": "tool.failed" if fail else "tool.completed",
            "timestamp": at(start_s, 0.5 + seconds / 2),
            **({"error": "TimeoutError: upstream took too long"} if fail else {"result": json.dumps({"hits": 3})}),
        },
        end,
    ]


RUNS: dict[str, tuple[str, str, float, float, tuple[int, int], bool, str]] = {
    # run id: agent, model, start (s after T0), duration (s), tokens, failed, tool
    "r-alpha": ("planner", "gpt-4o", 0, 1.0, (100, 10), False, "search"),
    "r-beta": ("planner", "claude-sonnet-4-5", 60, 5.0, (900, 90), True, "fetch_page"),
    "r-gamma": ("writer", "gpt-4o", 120, 2.5, (400, 40), False, "save_draft"),
}


def finished_runs() -> list[list[dict[str, Any]]]:
    """The three finished runs of :data:`RUNS`, one event list each."""
    return [
        run(run_id, agent=agent, model=model, start_s=start, seconds=seconds, tokens=tokens, fail=fail, tool=tool)
        for run_id, (agent, model, start, seconds, tokens, fail, tool) in RUNS.items()
    ]


def open_run() -> list[dict[str, Any]]:
    """A run still going at :data:`NOW_MS`: started, one LLM call open."""
    return [
        {"kind": "run.started", "run_id": "r-open", "agent": "writer", "timestamp": at(180)},
        {"kind": "llm.started", "run_id": "r-open", "model": "gpt-4.1", "call_id": "o1", "timestamp": at(180, 0.1)},
    ]


def big_run(run_id: str, steps: int, tools_per_step: int) -> list[dict[str, Any]]:
    """A run of ``steps`` steps with ``tools_per_step`` tool calls each: ``1 + steps * (1 + tools_per_step)`` spans."""
    base = {"run_id": run_id, "agent": "bulk"}
    events: list[dict[str, Any]] = [{**base, "kind": "run.started", "timestamp": at(300)}]
    t = 0.0
    for s in range(steps):
        events.append({**base, "kind": "step.started", "name": f"s{s}", "timestamp": at(300, t)})
        for i in range(tools_per_step):
            call = {**base, "tool_name": f"tool-{s}-{i}", "call_id": f"c{s}-{i}"}
            events.append({**call, "kind": "tool.started", "timestamp": at(300, t + 0.0001)})
            events.append({**call, "kind": "tool.completed", "timestamp": at(300, t + 0.0009)})
            t += 0.001
        events.append({**base, "kind": "step.finished", "name": f"s{s}", "timestamp": at(300, t)})
    events.append({**base, "kind": "run.finished", "timestamp": at(300, t + 0.001)})
    return events
