"""OpenIntent sources against the real OpenIntent server: every logged event reaches the trace exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.bridge import Bridge
from otel_bridge.config import MappingSettings, Settings, SourceSettings
from otel_bridge.model import AgentEvent, Placement, SpanRecord
from otel_bridge.sources.manager import SourceManager
from otel_bridge.sources.openintent import OpenIntentSource
from tests.support.openintent_server import API_KEY, OpenIntentServer, missing, run_adapter_agent
from tests.support.sse_server import FAKE_MODEL, FAKE_USAGE, ThreadedServer, fake_openai_app

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


@pytest.fixture
def oi(tmp_path: pathlib.Path) -> Iterator[OpenIntentServer]:
    server = OpenIntentServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def api(oi: OpenIntentServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=oi.url, headers={"X-API-Key": API_KEY}, timeout=10) as client:
        yield client


class Recorder:
    """Everything the bridge was given (observer) and every span it finished (sink)."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self.spans: list[SpanRecord] = []

    def observe(self, events: Sequence[AgentEvent], _placements: Sequence[Placement]) -> None:
        self.events.extend(events)

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self.spans.extend(spans)

    def event_ids(self) -> Counter[str]:
        return Counter(e.event_id for e in self.events if e.event_id is not None)


@pytest.fixture
async def bridge() -> AsyncIterator[tuple[Bridge, Recorder]]:
    recorder = Recorder()
    settings = Settings(
        mapping=MappingSettings(max_events_per_span=100_000, run_end_grace_s=0.3, sweep_interval_s=0.05)
    )
    b = assemble(settings, extra_sinks=[recorder], pricer=None).bridge
    b.add_observer(recorder.observe)
    await b.start()
    try:
        yield b, recorder
    finally:
        await b.shutdown()


def source_settings(url: str, **kw: Any) -> SourceSettings:
    fast = {"reconcile_interval_s": 0.5, "backoff_initial_s": 0.05, "backoff_max_s": 0.5, "read_timeout_s": 30.0}
    return SourceSettings(url=url, kind="openintent", headers={"X-API-Key": API_KEY}, **{**fast, **kw})


async def eventually(predicate: Callable[[], bool], within: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def create_intent(api: httpx.AsyncClient, title: str) -> str:
    r = await api.post("/api/v1/intents", json={"title": title, "description": "test", "created_by": "test-agent"})
    r.raise_for_status()
    return str(r.json()["id"])


async def post_event(api: httpx.AsyncClient, intent: str, event_type: str, payload: dict[str, Any]) -> str:
    r = await api.post(
        f"/api/v1/intents/{intent}/events", json={"event_type": event_type, "actor": "test-agent", "payload": payload}
    )
    r.raise_for_status()
    return str(r.json()["id"])


async def set_status(api: httpx.AsyncClient, intent: str, status: str) -> None:
    version = (await api.get(f"/api/v1/intents/{intent}")).json()["version"]
    r = await api.post(f"/api/v1/intents/{intent}/status", json={"status": status}, headers={"If-Match": str(version)})
    r.raise_for_status()


async def patch_state(api: httpx.AsyncClient, intent: str, state: dict[str, Any]) -> None:
    version = (await api.get(f"/api/v1/intents/{intent}")).json()["version"]
    r = await api.post(f"/api/v1/intents/{intent}/state", json={"state": state}, headers={"If-Match": str(version)})
    r.raise_for_status()


async def logged_ids(api: httpx.AsyncClient, intent: str) -> list[str]:
    ids: list[str] = []
    while True:
        page = (await api.get(f"/api/v1/intents/{intent}/events", params={"limit": 1000, "offset": len(ids)})).json()
        ids.extend(e["id"] for e in page)
        if len(page) < 1000:
            return ids


def tree(spans: Sequence[SpanRecord], trace_id: bytes) -> list[tuple[str, str | None, list[str]]]:
    """(name, parent name, span event names) per span of one trace, in start order."""
    mine = sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: (s.start_ns, s.name))
    names = {s.span_id: s.name for s in mine}
    return [
        (s.name, names.get(s.parent_span_id) if s.parent_span_id else None, [e.name for e in s.events]) for s in mine
    ]


def span_event_ids(spans: Sequence[SpanRecord], trace_id: bytes) -> Counter[str]:
    return Counter(
        str(e.attributes[sc.BRIDGE_EVENT_ID])
        for s in spans
        if s.trace_id == trace_id
        for e in s.events
        if sc.BRIDGE_EVENT_ID in e.attributes
    )


@pytest.fixture
async def sources() -> AsyncIterator[list[SourceManager]]:
    started: list[SourceManager] = []
    try:
        yield started
    finally:
        for manager in started:
            await manager.shutdown()


async def start_sources(
    started: list[SourceManager], bridge: Bridge, settings: Sequence[SourceSettings]
) -> SourceManager:
    manager = SourceManager(bridge, settings)
    started.append(manager)
    await manager.start()
    return manager


async def test_subscribed_intent_every_logged_event_lands_once_in_one_trace(
    oi: OpenIntentServer, api: httpx.AsyncClient, bridge: tuple[Bridge, Recorder], sources: list[SourceManager]
) -> None:
    b, rec = bridge
    intent = await create_intent(api, "weather report")
    await start_sources(sources, b, [source_settings(f"{oi.url}/api/v1/subscribe/intents/{intent}")])
    await patch_state(api, intent, {"phase": "plan"})
    await set_status(api, intent, "active")
    await post_event(api, intent, "llm_request_started", {"request_id": "r1", "provider": "openai", "model": "gpt-4o"})
    done = {"request_id": "r1", "provider": "openai", "model": "gpt-4o", "prompt_tokens": 12, "completion_tokens": 5}
    await post_event(api, intent, "llm_request_completed", {**done, "finish_reason": "tool_calls"})
    tool = {"tool_name": "get_weather", "tool_id": "t1", "arguments": {"city": "Lisbon"}}
    await post_event(api, intent, "tool_call_started", tool)
    await post_event(api, intent, "tool_call_completed", {**tool, "result": {"temp": 21}})
    await post_event(api, intent, "plan.step_completed", {"step": 1})
    await set_status(api, intent, "completed")

    ids = await logged_ids(api, intent)
    assert len(ids) == 9
    await eventually(lambda: set(rec.event_ids()) == set(ids), what="every logged event")
    await eventually(lambda: any(s.parent_span_id is None for s in rec.spans), what="the run to end")
    root = next(s for s in rec.spans if s.parent_span_id is None)
    trace_id = root.trace_id
    assert rec.event_ids() == Counter({i: 1 for i in ids})
    assert tree(rec.spans, trace_id) == [
        ("invoke_agent test-agent", None, ["state.changed", "status.changed", "plan.step_completed"]),
        ("chat gpt-4o", "invoke_agent test-agent", []),
        ("execute_tool get_weather", "invoke_agent test-agent", []),
    ]
    assert root.attributes[sc.BRIDGE_STATUS] == "completed"
    # The span events carry the log's own event ids: no SSE Intent-object frame was counted.
    assert sum(span_event_ids(rec.spans, trace_id).values()) == 3
    assert {s.trace_id for s in rec.spans} == {trace_id}
    source = sources[0].sources[0]
    assert isinstance(source, OpenIntentSource)
    snap = source.snapshot()
    assert snap["events"] == 9
    assert snap["connected"] is True
    assert snap["last_error"] is None


WRITERS = 16
EVENTS_PER_WRITER = 40


async def test_sixteen_concurrent_writers_every_logged_event_exactly_once(
    oi: OpenIntentServer, api: httpx.AsyncClient, bridge: tuple[Bridge, Recorder], sources: list[SourceManager]
) -> None:
    b, rec = bridge
    intent = await create_intent(api, "load")
    manager = await start_sources(sources, b, [source_settings(oi.url, intents=[intent])])
    source = manager.sources[0]
    assert isinstance(source, OpenIntentSource)
    await eventually(lambda: source.snapshot()["connected"] is True, what="the intent stream to connect")

    async def writer(w: int) -> None:
        async with httpx.AsyncClient(base_url=oi.url, headers={"X-API-Key": API_KEY}, timeout=30) as own:
            for n in range(EVENTS_PER_WRITER):
                await post_event(own, intent, "load.tick", {"writer": w, "n": n})

    started = time.monotonic()
    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    elapsed = time.monotonic() - started
    await set_status(api, intent, "completed")

    ids = await logged_ids(api, intent)
    assert len(ids) == WRITERS * EVENTS_PER_WRITER + 2  # intent_created ... status_changed
    await eventually(lambda: set(rec.event_ids()) == set(ids), what="every logged event")
    await eventually(lambda: any(s.parent_span_id is None for s in rec.spans), what="the run to end")
    assert rec.event_ids() == Counter({i: 1 for i in ids})
    root = next(s for s in rec.spans if s.parent_span_id is None)
    ticks = [e for e in root.events if e.name == "load.tick"]
    assert len(ticks) == WRITERS * EVENTS_PER_WRITER
    assert span_event_ids(rec.spans, root.trace_id) == Counter(
        {str(e.attributes[sc.BRIDGE_EVENT_ID]): 1 for e in ticks}
    )
    assert [e.time_ns for e in root.events] == sorted(e.time_ns for e in root.events)  # mapped in time order
    assert b.stats.continuations == 0
    follower = source.followers[intent]
    delivered = follower.counters.sse_events
    print(
        f"\n{len(ids)} logged events from {WRITERS} writers in {elapsed:.2f} s; "
        f"the SSE alone delivered {delivered} ({100 * delivered / len(ids):.0f} %), "
        f"the trace holds {sum(rec.event_ids().values())} (100 %), "
        f"{follower.counters.reconciles} log reads, {follower.counters.duplicates} entries read twice"
    )


async def test_upstream_killed_and_restarted_mid_run_continues_the_same_trace(
    oi: OpenIntentServer, api: httpx.AsyncClient, bridge: tuple[Bridge, Recorder], sources: list[SourceManager]
) -> None:
    b, rec = bridge
    intent = await create_intent(api, "survives a restart")
    manager = await start_sources(sources, b, [source_settings(f"{oi.url}/api/v1/subscribe/intents/{intent}")])
    source = manager.sources[0]
    assert isinstance(source, OpenIntentSource)
    await post_event(api, intent, "llm_request_started", {"request_id": "r1", "provider": "openai", "model": "gpt-4o"})
    await post_event(api, intent, "plan.step_started", {"step": 1})
    before = await logged_ids(api, intent)
    await eventually(lambda: set(rec.event_ids()) == set(before), what="the events before the crash")

    oi.kill()
    await eventually(lambda: source.snapshot()["connected"] is False, what="the source to see the crash")
    await asyncio.sleep(0.3)  # a few failed reconnects and log reads while the server is down
    oi.start()
    # Written before the source has reconnected: only the log can deliver these.
    done = {"request_id": "r1", "provider": "openai", "model": "gpt-4o", "prompt_tokens": 3, "completion_tokens": 4}
    await post_event(api, intent, "llm_request_completed", done)
    await post_event(api, intent, "plan.step_completed", {"step": 1})
    await set_status(api, intent, "completed")

    ids = await logged_ids(api, intent)
    assert len(ids) == 6
    await eventually(lambda: set(rec.event_ids()) == set(ids), what="every logged event after the restart")
    await eventually(lambda: any(s.parent_span_id is None for s in rec.spans), what="the run to end")
    assert rec.event_ids() == Counter({i: 1 for i in ids})
    root = next(s for s in rec.spans if s.parent_span_id is None)
    assert tree(rec.spans, root.trace_id) == [
        ("invoke_agent test-agent", None, ["plan.step_completed"]),
        ("chat gpt-4o", "invoke_agent test-agent", ["plan.step_started"]),  # the innermost open span takes it
    ]
    assert {s.trace_id for s in rec.spans} == {root.trace_id}
    assert len({s.span_id for s in rec.spans}) == len(rec.spans) == 2
    assert b.stats.continuations == 0
    snap = source.snapshot()
    assert snap["reconnects"] >= 1
    assert snap["connected"] is True


async def test_portfolio_members_and_agent_assignments_are_followed(
    oi: OpenIntentServer, api: httpx.AsyncClient, bridge: tuple[Bridge, Recorder], sources: list[SourceManager]
) -> None:
    b, rec = bridge
    r = await api.post("/api/v1/portfolios", json={"name": "research", "created_by": "test-agent"})
    r.raise_for_status()
    portfolio = r.json()["id"]
    early = await create_intent(api, "member before the subscription")
    (await api.post(f"/api/v1/portfolios/{portfolio}/intents", json={"intent_id": early})).raise_for_status()
    manager = await start_sources(
        sources, b, [source_settings(oi.url, name="oi", portfolios=[portfolio], agents=["agent-x"])]
    )
    source = manager.sources[0]
    assert isinstance(source, OpenIntentSource)
    await eventually(lambda: source.snapshot()["connected"] is True and early in source.followers, what="streams")

    late = await create_intent(api, "member added later")
    (await api.post(f"/api/v1/portfolios/{portfolio}/intents", json={"intent_id": late})).raise_for_status()
    assigned = await create_intent(api, "assigned to agent-x")
    (await api.post(f"/api/v1/intents/{assigned}/agents", json={"agent_id": "agent-x"})).raise_for_status()
    await eventually(lambda: {early, late, assigned} <= set(source.followers), what="all three intents followed")
    for intent in (early, late, assigned):
        await post_event(api, intent, "note.added", {"text": intent})
    ids = [i for intent in (early, late, assigned) for i in await logged_ids(api, intent)]
    await eventually(lambda: set(rec.event_ids()) == set(ids), what="every event of the three intents")
    assert rec.event_ids() == Counter({i: 1 for i in ids})
    snap = source.snapshot()
    assert [p["intents"] for p in snap["portfolios"]] == [sorted([early, late])]  # type: ignore[index]
    assert [a["intents"] for a in snap["agents"]] == [[assigned]]  # type: ignore[index]
    assert {e.run_id for e in rec.events} == {early, late, assigned}


async def test_sdk_openai_adapter_streaming_lands_as_a_chat_span_with_time_to_first_chunk(
    oi: OpenIntentServer, api: httpx.AsyncClient, bridge: tuple[Bridge, Recorder], sources: list[SourceManager]
) -> None:
    b, rec = bridge
    openai = ThreadedServer(fake_openai_app())
    try:
        intent = await create_intent(api, "adapter")
        await start_sources(sources, b, [source_settings(oi.url, intents=[intent])])
        text = await asyncio.to_thread(run_adapter_agent, oi.url, intent, openai.url)
        assert text.strip() == "The weather in Lisbon is sunny."
        await set_status(api, intent, "completed")
        ids = await logged_ids(api, intent)
        await eventually(lambda: set(rec.event_ids()) == set(ids), what="every logged event")
        await eventually(lambda: any(s.parent_span_id is None for s in rec.spans), what="the run to end")
    finally:
        openai.stop()
    assert rec.event_ids() == Counter({i: 1 for i in ids})
    types = Counter(e.original_type for e in rec.events)
    assert types == Counter(
        {
            "intent_created": 1,
            "llm_request_started": 1,
            "stream_started": 1,
            "stream_chunk": types["stream_chunk"],
            "stream_completed": 1,
            "llm_request_completed": 1,
            "tool_call_started": 1,
            "status_changed": 1,
        }
    )
    assert types["stream_chunk"] >= 6
    chat = next(s for s in rec.spans if s.name.startswith("chat"))
    assert chat.name == f"chat {FAKE_MODEL}"
    assert chat.attributes[sc.GEN_AI_REQUEST_STREAM] is True
    ttfc = chat.attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert isinstance(ttfc, float)
    assert 0 < ttfc < (chat.end_ns - chat.start_ns) / 1e9
    assert chat.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == FAKE_USAGE["prompt_tokens"]
    assert chat.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == FAKE_USAGE["completion_tokens"]
    assert chat.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    tool = next(s for s in rec.spans if s.name.startswith("execute_tool"))
    assert tool.name == "execute_tool get_weather"
    assert tool.parent_span_id == chat.parent_span_id


async def test_a_restarted_source_keeps_its_dedupe_state(
    oi: OpenIntentServer, api: httpx.AsyncClient, bridge: tuple[Bridge, Recorder]
) -> None:
    b, rec = bridge
    intent = await create_intent(api, "restarted source")
    source = OpenIntentSource(b, source_settings(oi.url, intents=[intent]))
    task = asyncio.create_task(source.run())
    try:
        await post_event(api, intent, "note.added", {"n": 1})
        first = await logged_ids(api, intent)
        await eventually(lambda: set(rec.event_ids()) == set(first), what="the first events")
        task.cancel()  # what the manager's supervisor does before it runs a failed source again
        with pytest.raises(asyncio.CancelledError):
            await task
        await post_event(api, intent, "note.added", {"n": 2})
        task = asyncio.create_task(source.run())
        ids = await logged_ids(api, intent)
        await eventually(lambda: set(rec.event_ids()) == set(ids), what="the events after the restart")
        reads = source.followers[intent].counters.reconciles
        # Two more reads (periodic ones, nothing new was written) must not re-send anything.
        await eventually(lambda: source.followers[intent].counters.reconciles >= reads + 2, what="two more reads")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert rec.event_ids() == Counter({i: 1 for i in ids})
    assert len(ids) == 3
