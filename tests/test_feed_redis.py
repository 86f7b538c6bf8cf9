"""The feed on a real Redis stream, in process: two feeds (two sidecars) on one stream, resume by stream id,
trimming, outages with counted drops, persistence across a Redis restart, retried batches shown once.

Every test starts its own ``redis-server`` on a free loopback port (tests/support/redis_server.py).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import signal
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest

from otel_bridge.assembly import build_feed
from otel_bridge.config import ConfigError, Settings, load_settings
from otel_bridge.model import AgentEvent, EventKind, Placement
from otel_bridge.sinks.feed import Feed, FeedFilter
from otel_bridge.sinks.feed.redis_backend import RedisBackend
from otel_bridge.stats import Stats
from tests.support.redis_server import REDIS_BIN, SKIP_REASON, RedisServer

needs_redis = pytest.mark.skipif(REDIS_BIN is None, reason=SKIP_REASON)
TRACE = bytes(range(16))


# --- settings ---------------------------------------------------------------------


def test_the_backend_is_memory_by_default_and_a_redis_url_from_the_environment() -> None:
    assert load_settings(environ={}).feed.backend == "memory"
    url = "rediss://feed:s3cret@redis.internal:6380/2"
    assert load_settings(environ={"OTEL_BRIDGE_FEED_URL": url}).feed.backend == url


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("http://user:pw@redis:6379", r"feed.backend must be 'memory' or a Redis URL .* got 'http://user:\*\*\*@redis"),
        ("redis://", "names no host"),
        ("Memory", "feed.backend must be 'memory' or a Redis URL"),
    ],
)
def test_a_bad_backend_is_a_config_error_that_never_shows_the_password(backend: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(environ={"OTEL_BRIDGE_FEED_URL": backend})
    assert "pw" not in str(caught.value).replace("***", "")


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ({"batch_size": 0}, "feed.redis.batch_size must be > 0"),
        ({"max_len": -1}, "max_len and max_age_s must be >= 0"),
        ({"stream": " "}, "must name a stream key"),
        ({"backoff_initial_s": 2, "backoff_max_s": 1}, "backoff_max_s must be >= backoff_initial_s"),
    ],
)
def test_bad_stream_settings_are_config_errors(redis: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides={"feed": {"redis": redis}})


# --- on a real Redis -----------------------------------------------------------------


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    if REDIS_BIN is None:
        pytest.skip(SKIP_REASON)
    srv = RedisServer(tmp_path / "redis", appendonly=True, node_entries=10)
    try:
        yield srv
    finally:
        srv.stop()


def settings_for(url: str, **redis: object) -> Settings:
    fast = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "block_ms": 200, "timeout_s": 1.0}
    return msgspec.convert({"feed": {"backend": url, "redis": {**fast, **redis}}}, Settings)


@pytest.fixture
async def feeds(server: RedisServer) -> AsyncIterator[list[Feed]]:
    """Two feeds on one stream, as two sidecars of a fleet have."""
    started = [build_feed(settings_for(server.url), Stats()) for _ in range(2)]
    for feed in started:
        await feed.start()
        await until(lambda f=feed: backend(f).up)
    try:
        yield started
    finally:
        for feed in started:
            await feed.shutdown()


def backend(feed: Feed) -> RedisBackend:
    assert isinstance(feed.backend, RedisBackend)
    return feed.backend


async def until(predicate: object, within: float = 10.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - a condition the backend's tasks change
            await asyncio.sleep(0.01)


def publish(feed: Feed, *names: str, run: str = "r1") -> None:
    events = [
        msgspec.convert(
            {"kind": EventKind.PROGRESS, "run_id": run, "timestamp_ns": 1, "dialect": "generic", "original_type": "p",
             "name": name},
            AgentEvent,
        )
        for name in names
    ]  # fmt: skip
    feed.observe(events, [Placement(TRACE, bytes([2] * 8), bytes([1] * 8)) for _ in events])


def blocks(chunk: bytes) -> list[dict[str, object]]:
    out = []
    for block in chunk.decode().split("\n\n"):
        fields: dict[str, object] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = json.loads(value) if name == "data" else value
        if fields and "retry" not in fields:
            out.append(fields)
    return out


async def read(stream: AsyncIterator[bytes], n: int) -> list[dict[str, object]]:
    """The next ``n`` SSE blocks (events and notices) from a subscriber's writer."""
    got: list[dict[str, object]] = []
    async with asyncio.timeout(10):
        while len(got) < n:
            got.extend(blocks(await anext(stream)))
    assert len(got) == n, got
    return got


def names(got: list[dict[str, object]]) -> list[object]:
    """The events' names (notices left out)."""
    return [b["data"]["name"] for b in got if b.get("event") not in ("missed", "lagged")]  # type: ignore[index]


@needs_redis
async def test_two_sidecars_share_one_stream_in_its_order_and_a_resume_works_on_either(feeds: list[Feed]) -> None:
    a, b = feeds
    on_b = b.subscribe().chunks()
    publish(a, "a0", "a1", "a2")
    publish(b, "b0", "b1")
    publish(a, "a3")
    got = await read(on_b, 6)
    ids = [str(x["id"]) for x in got]
    assert sorted(names(got)) == ["a0", "a1", "a2", "a3", "b0", "b1"]
    assert names(got).index("a0") < names(got).index("a1") < names(got).index("a2") < names(got).index("a3")
    # The SSE ids are the stream's ids, in the stream's order.
    stream = [eid.decode() for eid, _ in server_entries(a)]
    assert ids == stream
    # The same ids resume on the other sidecar.
    await until(lambda: a.newest_seq == b.newest_seq)
    resumed = a.subscribe(last_event_id=a.parse_id(ids[2])).chunks()
    assert [str(x["id"]) for x in await read(resumed, 3)] == ids[3:]
    # The AG-UI form carries the same id on its last frame.
    agui_chunks = a.subscribe(fmt="ag-ui", last_event_id=a.parse_id(ids[4])).chunks()
    agui = b""
    while b"id: " not in agui:  # the first chunk is the retry line
        agui += await asyncio.wait_for(anext(agui_chunks), 5)
    assert f"id: {ids[5]}\n".encode() in agui


def server_entries(feed: Feed) -> list[tuple[bytes, dict[bytes, bytes]]]:
    import redis

    url = feed.settings.backend
    client = redis.Redis.from_url(url)
    try:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(feed.settings.redis.stream)
        return entries
    finally:
        client.close()


@needs_redis
async def test_a_filter_and_an_id_from_the_future(feeds: list[Feed]) -> None:
    a, _ = feeds
    flt = FeedFilter.parse(run_id=["keep"])
    publish(a, "x0", run="other")
    publish(a, "k0", run="keep")
    await until(lambda: a.published == 2)  # read back from the stream: history from now on
    on_a = a.subscribe(flt).chunks()
    publish(a, "x1", run="other")
    publish(a, "k1", run="keep")
    assert names(await read(on_a, 1)) == ["k1"]
    # An id past the stream's last one (another stream, or a Redis that lost it): said, then live.
    newest = a.newest_seq
    assert newest is not None
    ahead = a.subscribe(last_event_id=newest + 1).chunks()
    notice = await read(ahead, 1)
    assert notice[0]["event"] == "missed"
    assert notice[0]["data"]["reason"] == "unknown_id"  # type: ignore[index]
    publish(a, "after")
    assert names(await read(ahead, 1)) == ["after"]


@needs_redis
async def test_a_resume_from_before_the_trimmed_part_gets_the_missed_notice(server: RedisServer) -> None:
    feed = build_feed(settings_for(server.url, max_len=20, batch_size=10), Stats())
    await feed.start()
    try:
        await until(lambda: backend(feed).up)
        for i in range(10):
            publish(feed, *(f"e{i}-{j}" for j in range(10)))
        await until(lambda: backend(feed).appended == 100)
        entries = server_entries(feed)
        assert 20 <= len(entries) <= 30  # MAXLEN ~ trims whole nodes (10 entries each here)
        await until(
            lambda: feed.newest_seq is not None and backend(feed).wire_id(feed.newest_seq) == entries[-1][0].decode()
        )
        stream = feed.subscribe(last_event_id=feed.parse_id("1-0")).chunks()
        got = await read(stream, 1 + len(entries))
        assert got[0]["event"] == "missed"
        assert got[0]["data"] == {
            "missed": None,
            "reason": "evicted",
            "last_event_id": "1-0",
            "oldest_available": entries[0][0].decode(),
        }
        assert [b["id"] for b in got[1:]] == [eid.decode() for eid, _ in entries]
    finally:
        await feed.shutdown()


@needs_redis
async def test_entries_older_than_max_age_are_trimmed(server: RedisServer) -> None:
    feed = build_feed(settings_for(server.url, max_age_s=0.3, batch_size=10), Stats())
    await feed.start()
    try:
        await until(lambda: backend(feed).up)
        publish(feed, *(f"old{i}" for i in range(10)))
        await until(lambda: backend(feed).appended == 10)
        await asyncio.sleep(0.5)
        publish(feed, *(f"new{i}" for i in range(10)))
        await until(lambda: backend(feed).appended == 20)
        kept = [json.loads(f[b"d"])["name"] for _, f in server_entries(feed)]
        assert kept == [f"new{i}" for i in range(10)]
    finally:
        await feed.shutdown()


@needs_redis
async def test_redis_away_marks_the_gap_serves_local_events_counts_drops_and_catches_up(
    server: RedisServer, feeds: list[Feed]
) -> None:
    a, b = feeds
    backend(a).settings = msgspec.structs.replace(backend(a).settings, buffer_size=5)
    on_a, on_b = a.subscribe().chunks(), b.subscribe().chunks()
    publish(a, "before")
    assert names(await read(on_a, 1)) == names(await read(on_b, 1)) == ["before"]

    server.stop(signal.SIGKILL)
    await until(lambda: not backend(a).up and not backend(b).up)
    for got in (await read(on_a, 1), await read(on_b, 1)):
        assert got[0]["event"] == "missed"
        assert got[0]["data"]["reason"] == "unavailable"  # type: ignore[index]
    publish(a, *(f"away{i}" for i in range(8)))  # returns at once; 5 wait, 3 are dropped and counted
    away = await read(on_a, 8)
    assert names(away) == [f"away{i}" for i in range(8)]  # this sidecar's own, served at once...
    assert all("id" not in block for block in away)  # ...without a stream id
    assert a.snapshot()["not_appended"] == 3
    assert a._stats is not None
    assert a._stats.dropped["feed_not_appended"] == 3

    server.start()
    await until(lambda: backend(a).up and backend(b).up and backend(a).appended == 6)
    publish(a, "after")
    # The other sidecar gets what was kept, in the stream; this one does not repeat what it showed.
    assert names(await read(on_b, 6)) == ["away3", "away4", "away5", "away6", "away7", "after"]
    assert names(await read(on_a, 1)) == ["after"]
    assert backend(a).reconnects >= 1


@needs_redis
async def test_ids_stay_valid_across_a_restart_of_redis_with_persistence(server: RedisServer) -> None:
    first = build_feed(settings_for(server.url), Stats())
    await first.start()
    await until(lambda: backend(first).up)
    publish(first, "p0", "p1", "p2", "p3")
    await until(lambda: backend(first).appended == 4)
    await first.shutdown()
    ids = [eid.decode() for eid, _ in server_entries(first)]
    server.restart()  # SIGTERM: the AOF is complete

    second = build_feed(settings_for(server.url), Stats())
    await second.start()
    try:
        await until(lambda: backend(second).up and second.newest_seq is not None)
        got = await read(second.subscribe(last_event_id=second.parse_id(ids[1])).chunks(), 2)
        assert [(b["id"], b["data"]["name"]) for b in got] == [(ids[2], "p2"), (ids[3], "p3")]  # type: ignore[index]
    finally:
        await second.shutdown()


@needs_redis
async def test_a_batch_sent_twice_and_foreign_entries_are_shown_once_and_counted(feeds: list[Feed]) -> None:
    a, b = feeds
    on_b = b.subscribe().chunks()
    publish(a, "once")
    assert names(await read(on_b, 1)) == ["once"]
    client = __import__("redis").Redis.from_url(a.settings.backend)
    try:
        (_, fields), = client.xrange(a.settings.redis.stream)  # fmt: skip
        client.xadd(a.settings.redis.stream, fields)  # the same entry again, as a retried batch sends it
        client.xadd(a.settings.redis.stream, {b"d": b"not json"})
    finally:
        client.close()
    publish(a, "next")
    assert names(await read(on_b, 1)) == ["next"]
    assert (backend(b).repeats_skipped, backend(b).bad_entries) == (1, 1)


def test_a_stream_id_that_is_not_one_is_refused() -> None:
    feed = build_feed(settings_for("redis://127.0.0.1:1"), Stats())
    assert feed.parse_id("0") == 0
    assert backend(feed).wire_id(feed.parse_id("1700000000000-7")) == "1700000000000-7"
    for bad in ("17", "a-1", "1-x", ""):
        with pytest.raises(ValueError, match="must be a stream id from this feed"):
            feed.parse_id(bad)


@needs_redis
async def test_a_batch_whose_reply_was_lost_is_not_appended_again(feeds: list[Feed]) -> None:
    """Redis applied the batch but the reply never came (Redis went away): the retry reads the stream's tail
    back and sends only what is not there, so the stream holds each event once."""
    a, b = feeds
    writer = backend(a)
    send = writer._send
    failures = [ConnectionError("the reply was lost")]

    async def applied_then_lost(batch: list[tuple[bytes, bool, int]]) -> None:
        await send(batch)
        if failures:
            raise failures.pop()

    writer._send = applied_then_lost  # type: ignore[method-assign]
    on_b = b.subscribe().chunks()
    publish(a, "p1", "p2", "p3")
    assert names(await read(on_b, 3)) == ["p1", "p2", "p3"]
    publish(a, "p4")
    assert names(await read(on_b, 1)) == ["p4"]
    assert not failures  # the send failed once
    stored = [json.loads(fields[b"d"])["name"] for _, fields in server_entries(a)]
    assert stored == ["p1", "p2", "p3", "p4"]
    await until(lambda: writer.appended == 4)  # the writer counts after its reply; the reader may be first
    assert backend(b).repeats_skipped == 0
