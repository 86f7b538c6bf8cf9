"""Published events kept lazily: nothing enriched or framed until read, the same bytes when read,
the ring's byte bound kept exactly, health without translating, and one write per round."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_bridge.config import FeedSettings
from otel_bridge.model import EventKind, Placement, TokenUsage
from otel_bridge.semconv_latest import naming
from otel_bridge.sinks.feed import Feed
from otel_bridge.sinks.feed.agui import AguiFormat
from otel_bridge.sinks.feed.ai_sdk import AiSdkFormat
from otel_bridge.sinks.feed.item import PublishedEvent, batch_bound
from otel_bridge.sinks.feed.record import Enricher, encode, enrich
from tests.test_feed_hub import CHILD, FIRST, ROOT, TRACE, event

PLACED = Placement(TRACE, CHILD, ROOT, duration_ms=12.5, cost_usd=0.0042)


def feed(**settings: object) -> Feed:
    return Feed(msgspec.convert(settings, FeedSettings), first_seq=FIRST)


def data_of(frame: bytes) -> bytes:
    return frame.split(b"data: ", 1)[1].rstrip(b"\n")


def test_a_feed_nobody_reads_neither_enriches_nor_encodes_its_events() -> None:
    f = feed()
    events = [event(EventKind.RUN_STARTED, agent="planner"), event(EventKind.MESSAGE, text="hi")]
    f.observe(events, [PLACED, PLACED])
    assert [(i._record, i._data, i._frame) for i in f.backend.ring] == [(None, None, None)] * 2
    assert f.published == 2


async def test_an_event_read_later_says_what_it_would_have_said_when_published() -> None:
    f = Feed(
        FeedSettings(trace_url_template="http://jaeger/trace/{trace_id}?s={span_id}"),
        content=True,
        content_limit=64,
        first_seq=FIRST,
        names=naming(True),
    )
    usage = TokenUsage(input=3, output=5, cache_creation=2)
    published = [
        event(EventKind.RUN_STARTED, agent="planner", conversation_id="c1"),
        event(EventKind.LLM_COMPLETED, usage=usage, text="x" * 100, finish_reasons=("stop",)),
    ]
    f.observe(published, [PLACED, PLACED])
    # The run's agent and conversation change afterwards: what was published keeps what it had.
    f.observe([event(EventKind.MESSAGE, agent="other", conversation_id="c2")], [PLACED])
    stream = f.subscribe(last_event_id=FIRST - 1).chunks()
    assert (await anext(stream)).count(b"\nid: ") == 3
    at_once = enrich(
        published[1],
        PLACED,
        FIRST + 1,
        agent="planner",
        trace_url_template="http://jaeger/trace/{trace_id}?s={span_id}",
        content=True,
        limit=64,
        names=naming(True),
    )
    item = f.backend.ring[1]
    assert data_of(item.frame) == encode(at_once)
    assert json.loads(encode(at_once))["usage"]["cache_write"] == 2
    assert (item.agent, item.thread_id) == ("planner", "c1")
    assert item._event is None  # enriched once, the event is let go


# Short text of any character, and long runs of those JSON writes longest (six bytes each, or two).
_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.sampled_from(
    ["\x01" * 5000, '\x1f"' * 3000, "\\" * 4000, "\U0001f600" * 3000, "é" * 30]
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(list(EventKind)),
    strings=st.fixed_dictionaries(
        {},
        optional={
            name: _TEXT
            for name in (
                "agent",
                "name",
                "provider",
                "model",
                "tool_name",
                "call_id",
                "status",
                "error",
                "conversation_id",
                "event_id",
                "text",
                "arguments",
                "result",
            )
        },
    ),
    run=_TEXT.filter(bool),
    content=st.booleans(),
    limit=st.none() | st.integers(min_value=1, max_value=40),
    latest=st.booleans(),
    url=st.none() | _TEXT.map(lambda t: t.replace("{", "").replace("}", "") + "{trace_id}"),
    agent=st.none() | _TEXT,
    payload=st.none() | st.sampled_from([b'{"a": [1, 2]}', b"not json \x01", b'{"k": "' + b"v" * 200 + b'"}']),
)
def test_the_size_bound_is_never_below_the_frame_nor_the_payload(
    kind: EventKind,
    strings: dict[str, str],
    run: str,
    content: bool,
    limit: int | None,
    latest: bool,
    url: str | None,
    agent: str | None,
    payload: bytes | None,
) -> None:
    usage = TokenUsage(input=2**62, output=2**62, cache_read=1, cache_creation=1)
    ev = event(
        kind, run, finish_reasons=("stop", "\x07"), duration_ms=1e-300, cost_usd=-1.5e300, usage=usage, **strings
    )
    if payload is not None:
        ev = msgspec.structs.replace(ev, payload=msgspec.Raw(payload))
    enricher = Enricher(trace_url_template=url, content=content, limit=limit, names=naming(latest), redact=None)
    item = PublishedEvent(ev, Placement(TRACE, CHILD, None), 2**63 - 1, agent, run, enricher)
    bound = item.size_bound()
    assert bound >= item.size == len(item.frame)
    assert bound >= (len(payload) if payload is not None else 0)


_STRINGS = st.fixed_dictionaries(
    {},
    optional={name: _TEXT for name in ("agent", "name", "model", "tool_name", "error", "text", "arguments", "result")},
)


@settings(max_examples=100, deadline=None)
@given(
    batch=st.lists(
        st.tuples(
            st.sampled_from(list(EventKind)),
            _STRINGS,
            st.none() | _TEXT,
            st.none() | st.sampled_from([b'{"a": [1, 2]}', b"not json \x01", b'{"k": "' + b"v" * 200 + b'"}']),
        ),
        min_size=1,
        max_size=6,
    ),
    source=st.none() | _TEXT.filter(bool),
    content=st.booleans(),
    limit=st.none() | st.integers(min_value=1, max_value=40),
    url=st.none() | _TEXT.map(lambda t: t.replace("{", "").replace("}", "") + "{trace_id}"),
)
def test_a_batch_bound_is_never_below_its_frames_nor_their_payloads(
    batch: list[tuple[EventKind, dict[str, str], str | None, bytes | None]],
    source: str | None,
    content: bool,
    limit: int | None,
    url: str | None,
) -> None:
    enricher = Enricher(trace_url_template=url, content=content, limit=limit, names=naming(False), redact=None)
    usage = TokenUsage(input=2**62, output=2**62, cache_read=1, cache_creation=1)
    items = []
    for seq, (kind, strings, agent, payload) in enumerate(batch):
        ev = event(kind, "r" * seq, finish_reasons=("\x07",), cost_usd=-1.5e300, usage=usage, **strings)
        ev = msgspec.structs.replace(ev, payload=None if payload is None else msgspec.Raw(payload))
        if source is not None:  # the default source is left out of the event's JSON; others are not
            ev = msgspec.structs.replace(ev, source=source)
        items.append(PublishedEvent(ev, Placement(TRACE, CHILD, None), 2**63 - seq, agent, "t", enricher))
    bound = batch_bound(items)
    if bound is None:  # a state change shown with its payload: weighed exactly, one by one
        assert content
        assert any(i._event and i._event.kind is EventKind.STATE_CHANGED for i in items)
        return
    assert bound >= sum(len(item.frame) for item in items)
    assert bound >= sum(len(p) for _, _, _, p in batch if p is not None)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=60),
    batch=st.integers(min_value=1, max_value=7),
    ring_size=st.integers(min_value=1, max_value=40),
    ring_max_bytes=st.integers(min_value=300, max_value=40_000),
)
def test_the_ring_holds_exactly_what_it_would_hold_were_every_frame_made_at_once(
    sizes: list[int], batch: int, ring_size: int, ring_max_bytes: int
) -> None:
    events = [event(EventKind.MESSAGE, text="t" * n) for n in sizes]
    lazy = Feed(FeedSettings(ring_size=ring_size, ring_max_bytes=ring_max_bytes), content=True, first_seq=FIRST)
    for i in range(0, len(events), batch):
        lazy.observe(events[i : i + batch], [PLACED] * len(events[i : i + batch]))
    # Every frame made at once: the longest run of newest events within both bounds (at least one).
    eager = Feed(FeedSettings(ring_size=10**6, ring_max_bytes=2**40), content=True, first_seq=FIRST)
    eager.observe(events, [PLACED] * len(events))
    exact = [item.size for item in eager.backend.ring]
    kept, total = 0, 0
    for size in reversed(exact):
        if kept and (kept == ring_size or total + size > ring_max_bytes):
            break
        kept, total = kept + 1, total + size
    ring = lazy.backend.ring
    assert [item.seq for item in ring] == [FIRST + i for i in range(len(events) - kept, len(events))]
    assert lazy.backend.ring_bytes >= sum(item.size for item in ring)


def test_health_counts_late_events_without_making_the_ui_forms_translate() -> None:
    f = Feed(FeedSettings(), formats=[AguiFormat(), AiSdkFormat()], first_seq=FIRST)
    run = [event(EventKind.RUN_STARTED), event(EventKind.RUN_FINISHED), event(EventKind.CUSTOM, name="tail")]
    f.observe(run, [PLACED] * 3)
    assert f.snapshot()["late_dropped"] == {"ag-ui": 1, "ai-sdk": 1}
    assert [(item.notes, item._record) for item in f.backend.ring] == [(None, None)] * 3  # nothing translated
    assert f.format("ag-ui").latest("r1") is not None  # a UI asking still gets the run
    assert f.snapshot()["late_dropped"] == {"ag-ui": 1, "ai-sdk": 1}


async def test_a_burst_of_publishes_is_one_write_per_subscriber() -> None:
    f = feed()
    streams = [f.subscribe().chunks() for _ in range(3)]
    for stream in streams:
        await anext(stream)  # the retry hint
    writes = f.writes
    for n in range(5):  # five POSTs of one event each, before the loop turns
        f.observe([event(EventKind.PROGRESS, name=f"e{n}")], [PLACED])
    for stream in streams:
        assert (await anext(stream)).count(b"event: progress") == 5
    assert f.writes - writes == 3
