"""The memory budget in a real sidecar process: pushed past a tiny budget it answers 503 + Retry-After, then recovers.

No fake memory here: the process's own resident memory is what the guard reads.
The budget is set a fixed distance above what an idle sidecar of the same
configuration uses (measured by starting one first), then runs that keep
a thousand tool spans open each (with 4 KB of arguments apiece) are pushed in
until ingest refuses. The guard's forced reclaim hands back what the requests
left behind (and the idle runs time out after ten seconds, or past the hard limit
the oldest are shed), memory falls under the soft limit and ingest takes events again.
"""

from __future__ import annotations

import pathlib
import time

import httpx
import msgspec

from tests.support.server import BridgeProcess

SOFT_ABOVE_IDLE_MB = 40
HARD_ABOVE_IDLE_MB = 80
SPANS_PER_RUN = 1_000  # mapping.max_open_spans_per_run
ARGUMENTS = "x" * 4_000  # kept on each open span (content capture on): about 4 MB per run
MAX_RUNS_PUSHED = 100  # far more than the budget holds: the push must be refused long before


def _config(path: pathlib.Path, max_memory_mb: float, soft_pct: float) -> pathlib.Path:
    path.write_text(
        f"""
[limits]
max_memory_mb = {max_memory_mb}
memory_soft_pct = {soft_pct}
check_interval_s = 0.2

[mapping]
capture_content = true
run_idle_timeout_s = 10.0
sweep_interval_s = 0.5

# Finished spans are freed, not kept: the memory the push took can come back.
[store]
enabled = false

[feed]
ring_size = 100
"""
    )
    return path


def _run(i: int) -> bytes:
    events = [{"kind": "run.started", "run_id": f"run-{i}", "timestamp": "2026-11-30T12:00:00Z"}]
    events += [
        {
            "kind": "tool.started",
            "run_id": f"run-{i}",
            "call_id": f"call-{j}",
            "tool_name": "lookup",
            "arguments": ARGUMENTS,
            "timestamp": "2026-11-30T12:00:01Z",
        }
        for j in range(SPANS_PER_RUN)
    ]
    return b"\n".join(msgspec.json.encode(e) for e in events)


def _post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"})


def _health(client: httpx.Client) -> dict[str, object]:
    health: dict[str, object] = client.get("/v1/health").json()
    return health


def _idle_rss_mb(tmp_path: pathlib.Path) -> float:
    """What a sidecar of this configuration uses after a little work, under a budget it never nears."""
    bridge = BridgeProcess(tmp_path / "idle.log", args=["--config", str(_config(tmp_path / "idle.toml", 100_000, 80))])
    try:
        with httpx.Client(base_url=bridge.url, timeout=10) as client:
            assert _post(client, _run(-1)).status_code == 202
            time.sleep(0.5)
            memory = _health(client)["memory"]
            assert isinstance(memory, dict)
            return float(memory["rss_mb"])
    finally:
        bridge.stop()


def _wait(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    assert callable(predicate)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_sidecar_pushed_past_its_budget_answers_503_then_recovers(tmp_path: pathlib.Path) -> None:
    idle = _idle_rss_mb(tmp_path)
    hard = idle + HARD_ABOVE_IDLE_MB
    soft_pct = 100 * (idle + SOFT_ABOVE_IDLE_MB) / hard
    config = _config(tmp_path / "budget.toml", hard, soft_pct)
    bridge = BridgeProcess(tmp_path / "budget.log", args=["--config", str(config)])
    try:
        with httpx.Client(base_url=bridge.url, timeout=10) as client:
            refused: httpx.Response | None = None
            for i in range(MAX_RUNS_PUSHED):
                answer = _post(client, _run(i))
                if answer.status_code == 503:
                    refused = answer
                    break
                assert answer.status_code == 202, answer.text
            assert refused is not None, f"{MAX_RUNS_PUSHED} runs pushed, never refused: {_health(client)}"
            assert refused.headers["Retry-After"] == "1"
            assert refused.json()["error"] == "memory_limit"
            health = _health(client)
            assert health["status"] == "degraded", health
            reasons = health["reasons"]
            assert isinstance(reasons, list)
            assert any("over the soft limit" in r or "over the hard limit" in r for r in reasons), reasons

            # Reclaimed request buffers, idle runs timed out (or shed past the hard limit): ingest resumes.
            probe = b'{"kind":"run.started","run_id":"probe","timestamp":"2026-11-30T12:00:00Z"}'
            _wait(lambda: _post(client, probe).status_code == 202, 60, "ingest to take events again")
            health = _health(client)
            assert health["status"] == "ok", health
            refusals = health["memory_refusals"]
            assert isinstance(refusals, dict)
            assert refusals["http"] >= 1
    finally:
        code = bridge.stop()
    assert code == 0, bridge.log()
