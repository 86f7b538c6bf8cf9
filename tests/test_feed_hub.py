"""The feed hub on its own: records, framing, filters, resume, lag policies and bounds (no server)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

import msgspec
import pytest

from otel_bridge.config import ConfigError, FeedSettings, load_settings
from otel_bridge.model import AgentEvent, EventKind, Placement, TokenUsage
from otel_bridge.sinks.feed import Feed, FeedFilter, FeedFull, FeedItem, FilterError

FIRST = 1_000
TRACE = bytes(range(16))
ROOT = bytes([1] * 8)
CHILD = bytes([2] * 8)


def event(kind: EventKind, run: str = "r1", **fields: object) -> AgentEvent:
    return msgspec.convert(
        {
            "kind": kind,
            "run_id": run,
            "timestamp_ns": 1_800_000_000_000_000_000,
            "dialect": "generic",
            "original_type": kind.value,
            **fields,
        },
        AgentEvent,
    )


def placed(*events: AgentEvent) -> tuple[list[AgentEvent], list[Placement]]:
    return list(events), [Placement(TRACE, CHILD, ROOT) for _ in events]


def feed(**settings: object) -> Feed:
    return Feed(msgspec.convert(settings, FeedSettings), first_seq=FIRST)


def publish(f: Feed, n: int, kind: EventKind = EventKind.PROGRESS, run: str = "r1") -> None:
    f.observe(*placed(*(event(kind, run, name=f"e{i}") for i in range(n))))


def parse(chunk: bytes) -> list[dict[str, object]]:
    """SSE bytes -> [{"id", "event", "data", "retry"}] per block (comments dropped)."""
    out: list[dict[str, object]] = []
    for block in chunk.decode().split("\n\n"):
        fields: dict[str, object] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value
        if fields:
            out.append(fields)
    return out


async def first_chunk(stream: AsyncIterator[bytes]) -> list[dict[str, object]]:
    return parse(await anext(stream))


def ids(blocks: list[dict[str, object]]) -> list[int]:
    return [int(str(b["id"])) for b in blocks if "id" in b]


# --- what one event says ----------------------------------------------------------


def test_record_is_the_event_plus_where_it_landed() -> None:
    f = Feed(FeedSettings(trace_url_template="http://jaeger:16686/trace/{trace_id}?uiFind={span_id}"), first_seq=FIRST)
    llm = event(
        EventKind.LLM_COMPLETED,
        agent="planner",
        provider="openai",
        model="gpt-4o",
        call_id="c1",
        usage=TokenUsage(input=12, output=5),
        finish_reasons=("stop",),
        duration_ms=99.0,
        text="secret",
    )
    f.observe([llm], [Placement(TRACE, CHILD, ROOT, duration_ms=250.5, cost_usd=0.00123)])
    item = f.backend.ring[0]
    data = json.loads(item.frame.split(b"data: ", 1)[1])
    assert data == {
        "seq": FIRST,
        "kind": "llm.completed",
        "run_id": "r1",
        "timestamp_ns": 1_800_000_000_000_000_000,
        "trace_id": TRACE.hex(),
        "span_id": CHILD.hex(),
        "parent_span_id": ROOT.hex(),
        "trace_url": f"http://jaeger:16686/trace/{TRACE.hex()}?uiFind={CHILD.hex()}",
        "dialect": "generic",
        "original_type": "llm.completed",
        "source": "http",
        "agent": "planner",
        "provider": "openai",
        "model": "gpt-4o",
        "call_id": "c1",
        "duration_ms": 250.5,  # the span's own duration wins over the producer's
        "usage": {"input": 12, "output": 5},
        "cost_usd": 0.00123,
        "finish_reasons": ["stop"],
    }
    assert item.frame == b"id: 1000\nevent: llm.completed\ndata: " + msgspec.json.encode(data) + b"\n\n"


def test_a_root_span_says_parent_null_and_captured_content_follows_the_mapping() -> None:
    f = Feed(FeedSettings(), content=True, first_seq=FIRST)
    f.observe([event(EventKind.MESSAGE, text="hello")], [Placement(TRACE, ROOT, None)])
    data = json.loads(f.backend.ring[0].frame.split(b"data: ", 1)[1])
    assert data["parent_span_id"] is None
    assert data["text"] == "hello"
    assert "trace_url" not in data


def test_the_run_agent_is_remembered_for_events_that_do_not_name_it() -> None:
    f = feed()
    f.observe(
        *placed(
            event(EventKind.RUN_STARTED, agent="planner"),
            event(EventKind.LLM_COMPLETED),
            event(EventKind.LLM_COMPLETED, run="r2"),
        )
    )
    assert [item.agent for item in f.backend.ring] == ["planner", "planner", None]


# --- filters ----------------------------------------------------------------------


def kinds(*values: str) -> frozenset[EventKind]:
    return frozenset(EventKind(v) for v in values)


LLM_KINDS = kinds("llm.started", "llm.chunk", "llm.completed", "llm.failed", "llm.stream.started", "llm.stream.ended")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("llm", LLM_KINDS),
        ("llm.*", LLM_KINDS),
        ("llm.stream", kinds("llm.stream.started", "llm.stream.ended")),
        ("tool.c*", kinds("tool.completed")),
        ("*.failed", kinds("run.failed", "agent.failed", "llm.failed", "tool.failed", "request.failed")),
        ("run.started,run.finished", kinds("run.started", "run.finished")),
        ("error", kinds("error")),
    ],
)
def test_kind_filters_by_prefix_or_glob(pattern: str, expected: frozenset[EventKind]) -> None:
    assert FeedFilter.parse(kind=[pattern]).kinds == expected


def test_a_kind_that_matches_nothing_is_refused_with_the_list_of_kinds() -> None:
    with pytest.raises(FilterError, match=r"kind 'lm\.\*' matches no event kind; kinds are: run\.started, "):
        FeedFilter.parse(kind=["lm.*"])


def test_a_filter_matches_every_parameter_and_any_value() -> None:
    f = feed()
    f.observe(
        *placed(
            event(EventKind.LLM_COMPLETED, "a", agent="x"),
            event(EventKind.TOOL_COMPLETED, "a", agent="x"),
            event(EventKind.LLM_COMPLETED, "b", agent="y"),
            event(EventKind.LLM_COMPLETED, "c", agent="x", source="upstream"),
        )
    )
    items = list(f.backend.ring)

    def selected(flt: FeedFilter) -> list[int]:
        return [i.seq - FIRST for i in items if flt.matches(i)]

    assert selected(FeedFilter.parse(kind=["llm.*"])) == [0, 2, 3]
    assert selected(FeedFilter.parse(kind=["llm.*"], agent=["x"])) == [0, 3]
    assert selected(FeedFilter.parse(run_id=["a,b"])) == [0, 1, 2]
    assert selected(FeedFilter.parse(run_id=["a", "c"], source=["http"])) == [0, 1]
    assert selected(FeedFilter.parse(dialect=["openintent"])) == []
    assert FeedFilter.parse(run_id=[" , "]).is_everything


# --- resume -----------------------------------------------------------------------


async def test_resume_replays_exactly_what_came_after_the_id_in_order() -> None:
    f = feed()
    publish(f, 10)
    blocks = await first_chunk(f.subscribe(last_event_id=FIRST + 3).chunks())
    assert blocks[0] == {"retry": "2000"}
    assert ids(blocks) == list(range(FIRST + 4, FIRST + 10))


async def test_resume_from_the_newest_id_replays_nothing() -> None:
    f = feed()
    publish(f, 3)
    assert await first_chunk(f.subscribe(last_event_id=FIRST + 2).chunks()) == [{"retry": "2000"}]


async def test_an_id_that_left_the_ring_gets_the_missed_notice_first() -> None:
    f = feed(ring_size=5)
    publish(f, 10)
    blocks = await first_chunk(f.subscribe(last_event_id=FIRST + 1).chunks())
    assert blocks[1] == {
        "event": "missed",
        "data": {"missed": 3, "reason": "evicted", "last_event_id": FIRST + 1, "oldest_available": FIRST + 5},
    }
    assert ids(blocks) == list(range(FIRST + 5, FIRST + 10))


async def test_an_id_from_before_a_restart_is_recognised() -> None:
    f = feed()
    publish(f, 2)
    blocks = await first_chunk(f.subscribe(last_event_id=FIRST - 500).chunks())
    assert blocks[1]["data"] == {
        "missed": None,
        "reason": "restarted",
        "last_event_id": FIRST - 500,
        "oldest_available": FIRST,
    }
    assert ids(blocks) == [FIRST, FIRST + 1]


async def test_an_id_from_the_future_is_reported_and_the_stream_goes_live() -> None:
    f = feed()
    publish(f, 2)
    blocks = await first_chunk(f.subscribe(last_event_id=FIRST + 99).chunks())
    assert blocks[1]["data"] == {
        "missed": None,
        "reason": "unknown_id",
        "last_event_id": FIRST + 99,
        "oldest_available": FIRST,
    }
    assert ids(blocks) == []


async def test_resume_applies_the_filter() -> None:
    f = feed()
    f.observe(*placed(event(EventKind.LLM_COMPLETED), event(EventKind.TOOL_COMPLETED), event(EventKind.LLM_FAILED)))
    blocks = await first_chunk(f.subscribe(FeedFilter.parse(kind=["llm"]), last_event_id=FIRST - 1).chunks())
    assert ids(blocks) == [FIRST, FIRST + 2]


# --- slow subscribers -------------------------------------------------------------


async def test_a_lagging_subscriber_is_resynced_from_the_ring_without_loss() -> None:
    f = feed(queue_size=3, ring_size=100)
    stream = f.subscribe().chunks()
    await anext(stream)  # the retry hint
    publish(f, 10)  # nobody drains: 3 queued, 7 dropped
    blocks = parse(await anext(stream))
    assert ids(blocks) == list(range(FIRST, FIRST + 10))
    assert blocks[3] == {
        "event": "lagged",
        "data": {"lost": 0, "recovered": 7, "policy": "resync", "last_event_id": FIRST + 2},
    }
    assert (f.lag_events, f.lost) == (1, 0)


async def test_what_left_the_ring_while_lagging_is_counted_as_lost() -> None:
    f = feed(queue_size=3, ring_size=4)
    stream = f.subscribe().chunks()
    await anext(stream)
    publish(f, 10)
    blocks = parse(await anext(stream))
    assert ids(blocks) == [FIRST, FIRST + 1, FIRST + 2, FIRST + 6, FIRST + 7, FIRST + 8, FIRST + 9]
    assert blocks[3]["data"] == {"lost": 3, "recovered": 4, "policy": "resync", "last_event_id": FIRST + 2}
    assert f.lost == 3


async def test_the_disconnect_policy_ends_the_stream_after_the_notice() -> None:
    f = feed(queue_size=3, lag_policy="disconnect")
    subscriber = f.subscribe()
    stream = subscriber.chunks()
    await anext(stream)
    publish(f, 10)
    blocks = parse(await anext(stream))
    assert ids(blocks) == [FIRST, FIRST + 1, FIRST + 2]
    assert blocks[3]["data"] == {"lost": 7, "recovered": 0, "policy": "disconnect", "last_event_id": FIRST + 2}
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert f.subscribers == 0


async def test_a_subscriber_queue_never_holds_more_than_its_bound() -> None:
    f = feed(queue_size=5)
    frozen = f.subscribe()
    for _ in range(100):
        publish(f, 10)
    assert len(frozen.queue) == 5
    assert frozen.dropped == 995


def test_every_subscriber_gets_the_same_frame_object() -> None:
    f = feed()
    a, b = f.subscribe(), f.subscribe(FeedFilter.parse(kind=["progress"]))
    publish(f, 1)
    assert a.queue[0] is b.queue[0]


class CountingFormat:
    name = "counting"

    def __init__(self) -> None:
        self.frames = 0

    def observe(self, item: FeedItem) -> None:
        pass

    def frame(self, item: FeedItem) -> bytes:
        self.frames += 1
        return b"data: %d\n\n" % item.seq

    def notice(self, event: str, body: Mapping[str, object]) -> bytes:
        return b""


async def test_another_format_is_framed_once_for_all_its_subscribers() -> None:
    fmt = CountingFormat()
    f = Feed(FeedSettings(), formats=[fmt], first_seq=FIRST)
    streams = [f.subscribe(fmt="counting").chunks() for _ in range(5)]
    for stream in streams:
        await anext(stream)
    publish(f, 3)
    for stream in streams:
        assert await anext(stream) == b"data: 1000\n\ndata: 1001\n\ndata: 1002\n\n"
    assert fmt.frames == 3


# --- bounds -----------------------------------------------------------------------


def test_the_ring_is_bounded_by_count_and_bytes() -> None:
    f = feed(ring_size=50)
    publish(f, 120)
    assert [f.backend.ring[0].seq, len(f.backend.ring)] == [FIRST + 70, 50]
    one = len(f.backend.ring[0].frame)
    g = feed(ring_max_bytes=one * 10 + 5)
    publish(g, 30)
    assert len(g.backend.ring) == 10
    assert g.snapshot()["ring_bytes"] == sum(len(i.frame) for i in g.backend.ring)


async def test_an_event_is_framed_on_first_use_and_only_once() -> None:
    f = feed()
    publish(f, 3)  # nobody subscribes: the ring keeps the encoded records, not frames
    assert [item._frame for item in f.backend.ring] == [None, None, None]
    sizes = [item.size for item in f.backend.ring]
    stream = f.subscribe(last_event_id=FIRST - 1).chunks()
    assert ids(parse(await anext(stream)))[:3] == [FIRST, FIRST + 1, FIRST + 2]
    frames = [item._frame for item in f.backend.ring]
    assert [len(frame or b"") for frame in frames] == sizes
    assert all(item._data is None for item in f.backend.ring)  # the record's bytes are not kept twice
    again = f.subscribe(last_event_id=FIRST - 1).chunks()
    await anext(again)
    assert all(a is item._frame for a, item in zip(frames, f.backend.ring, strict=True))


def test_subscribers_past_the_bound_are_refused() -> None:
    f = feed(max_subscribers=2)
    f.subscribe()
    f.subscribe()
    with pytest.raises(FeedFull):
        f.subscribe()
    assert f.refused == 1


async def test_close_ends_every_stream_after_what_is_queued() -> None:
    f = feed()
    stream = f.subscribe().chunks()
    await anext(stream)
    publish(f, 2)
    f.close()
    assert ids(parse(await anext(stream))) == [FIRST, FIRST + 1]
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    with pytest.raises(FeedFull):
        f.subscribe()


def test_settings_are_validated_with_the_setting_named() -> None:
    with pytest.raises(ConfigError, match="queue_size must be > 0"):
        load_settings(environ={}, overrides={"feed": {"queue_size": 0}})
    with pytest.raises(ConfigError, match="trace_url_template may only use"):
        load_settings(environ={}, overrides={"feed": {"trace_url_template": "http://x/{trace}"}})
    settings = load_settings(
        environ={"OTEL_BRIDGE_TOKEN": "s3cret-token", "OTEL_BRIDGE_CORS_ORIGINS": "http://a, http://b"}
    )
    assert settings.auth.token == "s3cret-token"
    assert settings.cors.allow_origins == ["http://a", "http://b"]
    with pytest.raises(ConfigError, match="at least 8 characters"):
        load_settings(environ={"OTEL_BRIDGE_TOKEN": "short"})
