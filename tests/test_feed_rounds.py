"""A publish round writes to every parked subscriber from the round itself (``Subscriber.flush``).

What these pin: the round's writes go out without a task switch per subscriber; a subscriber whose
send suspends (a slow or frozen client) holds up nobody else, keeps its order and back-pressure, and is
still cut by the send timeout; a failing send ends only its own response; a UI form's stream still ends
at its run's end when the round writes it; a round over many subscribers lets the loop in between slices.
The responses, the feed and the subscribers are the real ones; the ASGI server is the stand-in of
``tests/support/asgi_client.py`` (a client that stops reading cannot be made on a socket on cue).
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from otel_bridge.config import FeedSettings
from otel_bridge.model import EventKind
from otel_bridge.sinks.feed import Feed, FeedFilter, rounds
from otel_bridge.sinks.feed.agui import AguiFormat
from otel_bridge.sinks.feed.item import FeedItem
from otel_bridge.sinks.feed.runs import END_OF_RUN
from otel_bridge.sinks.feed.subscriber import MAX_CHUNK, Subscriber
from otel_bridge.web.stream import FeedResponse
from tests.support.asgi_client import SCOPE, Client, feed, publish, whole_frames


async def start(f: Feed, client: Client, **subscribe: object) -> asyncio.Task[None]:
    """A response for a new subscriber, started and parked (its ``retry:`` hint written)."""
    response = FeedResponse(f, f.subscribe(**subscribe))  # type: ignore[arg-type]
    task = asyncio.create_task(response(SCOPE, client.receive, client.send))
    await asyncio.wait_for(client.wrote.wait(), 1)
    for _ in range(3):
        await asyncio.sleep(0)  # the writer parks
    return task


async def test_one_turn_of_the_loop_writes_every_parked_subscriber() -> None:
    f = feed(heartbeat_s=10.0)
    clients = [Client() for _ in range(5)]
    tasks = [await start(f, client) for client in clients]
    writes = f.writes
    publish(f, 3)
    await asyncio.sleep(0)  # the round runs; no writer task has run since
    assert [client.ids for client in clients] == [[1, 2, 3]] * 5
    assert f.writes - writes == 5  # one chunk each
    for client in clients:
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_a_slow_subscriber_delays_nobody_and_gets_everything_in_order_once_it_reads() -> None:
    f = feed(heartbeat_s=10.0, send_timeout_s=5.0)
    slow = Client(hold_at=2)  # its first chunk's send waits until the client reads again
    others = [Client() for _ in range(3)]
    tasks = [await start(f, client) for client in [slow, *others]]
    publish(f, 2)
    await asyncio.sleep(0)
    assert slow.held.is_set()
    for i in range(1, 5):  # rounds go on while the slow one's write is in flight
        publish(f, 2, start=2 * i)
        await asyncio.sleep(0.002)
    assert [client.ids for client in others] == [list(range(1, 11))] * 3
    assert slow.ids == []
    slow.release.set()
    while slow.ids != list(range(1, 11)):
        slow.wrote.clear()
        await asyncio.wait_for(slow.wrote.wait(), 1)
    publish(f, 1, start=10)  # and it is written from the round again
    await asyncio.sleep(0)
    assert all(client.ids == list(range(1, 12)) for client in [slow, *others])
    assert f.send_timeouts == 0
    for client in [slow, *others]:
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_a_slow_subscribers_queue_still_bounds_it_and_it_gets_the_lagged_notice() -> None:
    f = feed(heartbeat_s=10.0, send_timeout_s=5.0, queue_size=4, lag_policy="resync", ring_size=100)
    slow, other = Client(hold_at=2), Client()
    tasks = [await start(f, client) for client in (slow, other)]
    publish(f, 1)
    await asyncio.sleep(0)
    assert slow.held.is_set()
    for i in range(1, 4):
        publish(f, 3, start=1 + 3 * (i - 1))  # 9 more: past the slow one's queue of 4
        await asyncio.sleep(0.002)  # rounds are spaced by the number of subscribers
    assert other.ids == list(range(1, 11))
    slow.release.set()
    while b"event: lagged" not in slow.body or len(slow.ids) < 10:
        slow.wrote.clear()
        await asyncio.wait_for(slow.wrote.wait(), 1)
    assert slow.ids == list(range(1, 11))  # the queue's 4, the notice, then the rest resynced from the ring
    lagged = next(frame for frame in whole_frames(slow.body) if frame.startswith(b"event: lagged"))
    assert msgspec.json.decode(lagged.split(b"data: ")[1])["lost"] == 0
    assert f.lag_events == 1
    for client in (slow, other):
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_the_send_timeout_cuts_a_subscriber_frozen_in_a_rounds_write_and_nobody_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    f = feed(heartbeat_s=0.03, send_timeout_s=0.05)
    frozen, other = Client(freeze_at=2), Client()
    tasks = [await start(f, client) for client in (frozen, other)]
    publish(f, 2)
    await asyncio.sleep(0)
    assert frozen.frozen.is_set()  # the round's write to it suspended, for good
    sent = list(frozen.messages)
    for i in range(1, 4):
        publish(f, 2, start=2 * i)
        await asyncio.sleep(0.02)
    await asyncio.wait_for(tasks[0], 1)  # cut: its response returns, the server closes the connection
    assert frozen.messages == sent  # nothing after the cut: no chunk, no heartbeat, no end of body
    assert (f.send_timeouts, f.subscribers) == (1, 1)
    assert [r.getMessage() for r in caplog.records if r.name == "otel_bridge.web.stream"] == [
        "feed: a subscriber stopped reading for 0.05s; disconnected"
    ]
    publish(f, 1, start=8)
    await asyncio.sleep(0)
    assert other.ids == list(range(1, 10))
    other.gone.set()
    await asyncio.wait_for(tasks[1], 1)


async def test_a_client_gone_mid_write_ends_its_response_quietly() -> None:
    f = feed(heartbeat_s=10.0)
    gone, other = Client(fail_at=2, fail_with=ConnectionResetError()), Client()
    tasks = [await start(f, client) for client in (gone, other)]
    publish(f, 2)
    await asyncio.wait_for(tasks[0], 1)  # no exception: a client that went away is not an error
    assert (f.subscribers, f.send_timeouts) == (1, 0)
    assert other.ids == [1, 2]
    other.gone.set()
    await asyncio.wait_for(tasks[1], 1)


async def test_a_send_that_raises_otherwise_is_raised_by_its_response() -> None:
    f = feed(heartbeat_s=10.0)
    broken = Client(fail_at=2, fail_with=RuntimeError("Unexpected ASGI message"))
    task = await start(f, broken)
    publish(f, 1)
    with pytest.raises(RuntimeError, match="Unexpected ASGI message"):
        await asyncio.wait_for(task, 1)
    assert f.subscribers == 0


async def test_a_ui_stream_written_by_the_round_ends_at_its_runs_end() -> None:
    f = Feed(msgspec.convert({"heartbeat_s": 10.0}, FeedSettings), formats=[AguiFormat()], first_seq=1)
    client = Client()
    task = await start(f, client, flt=FeedFilter(run_ids=frozenset({"r"})), fmt="ag-ui", until_run_end=True)
    publish(f, 1, kind=EventKind.RUN_STARTED)
    publish(f, 1, start=1)
    publish(f, 1, start=2, kind=EventKind.RUN_FINISHED)
    publish(f, 1, start=3, kind=EventKind.RUN_STARTED)  # the run id's next generation: not this stream's
    publish(f, 1, start=4)
    await asyncio.wait_for(task, 1)  # the stream ended after the run's end
    body = client.body
    assert body.endswith(END_OF_RUN)
    assert body.count(b"RUN_STARTED") == 1
    assert body.count(b"RUN_FINISHED") == 1
    assert client.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert f.subscribers == 0


async def test_a_subscriber_resuming_gets_the_backlog_then_the_rounds_without_a_gap_or_a_repeat() -> None:
    f = feed(heartbeat_s=10.0)
    publish(f, 5)
    client = Client()
    response = FeedResponse(f, f.subscribe(last_event_id=2))
    task = asyncio.create_task(response(SCOPE, client.receive, client.send))
    publish(f, 2, start=5)  # before its writer ran: queued behind the backlog
    for i in range(3):
        await asyncio.sleep(0.001)
        publish(f, 1, start=7 + i)
    await asyncio.sleep(0.01)
    assert client.ids == list(range(3, 11))
    client.gone.set()
    await asyncio.wait_for(task, 1)


async def test_unfiltered_subscribers_in_step_share_a_chunk_and_a_filtered_one_gets_its_own() -> None:
    f = feed(heartbeat_s=10.0)
    a, b, llm = Client(), Client(), Client()
    tasks = [await start(f, a), await start(f, b), await start(f, llm, flt=FeedFilter.parse(kind=["llm"]))]
    publish(f, 2)
    publish(f, 1, start=2, kind=EventKind.LLM_COMPLETED)
    await asyncio.sleep(0)
    assert a.messages[-1]["body"] is b.messages[-1]["body"]  # the same bytes: framed and joined once
    assert (a.ids, b.ids, llm.ids) == ([1, 2, 3], [1, 2, 3], [3])
    for client in (a, b, llm):
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_a_round_over_many_subscribers_lets_the_loop_in_between_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rounds, "_ROUND_SLICE_S", 0.0)
    monkeypatch.setattr(rounds, "_SLICE_CHECK", 2)  # a slice of two subscribers, then the loop's next turn
    f = feed(heartbeat_s=10.0)
    clients = [Client() for _ in range(5)]
    tasks = [await start(f, client) for client in clients]
    publish(f, 1)
    await asyncio.sleep(0)
    assert [len(client.ids) for client in clients] == [1, 1, 0, 0, 0]
    for _ in range(3):
        await asyncio.sleep(0)
    assert [client.ids for client in clients] == [[1]] * 5
    for client in clients:
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_a_busy_rounds_chunks_are_cut_on_frames_once_and_a_slow_subscriber_gets_the_rest_after() -> None:
    f = feed(heartbeat_s=10.0, send_timeout_s=5.0, queue_size=1000)
    a, b, slow = Client(), Client(), Client(hold_at=2)
    tasks = [await start(f, client) for client in (a, b, slow)]
    publish(f, 400)  # more than one chunk's worth of frames
    await asyncio.sleep(0)
    chunks = [m["body"] for m in a.messages[2:]]  # after the response start and the retry hint
    assert len(chunks) >= 2
    assert all(len(chunk) <= MAX_CHUNK and chunk.endswith(b"\n\n") for chunk in chunks)
    assert all(x is y for x, y in zip(chunks, [m["body"] for m in b.messages[2:]], strict=True))
    assert a.ids == b.ids == list(range(1, 401))
    assert slow.held.is_set()
    slow.release.set()
    while len(slow.ids) < 400:
        slow.wrote.clear()
        await asyncio.wait_for(slow.wrote.wait(), 1)
    assert slow.ids == list(range(1, 401))
    for client in (a, b, slow):
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_publishes_between_rounds_are_offered_to_each_subscriber_once_per_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offers: list[int] = []
    offer = Subscriber.offer

    def counted(self: Subscriber, items: list[FeedItem], prev_seq: int | None = None) -> None:
        offers.append(len(items))
        offer(self, items, prev_seq)

    monkeypatch.setattr(Subscriber, "offer", counted)
    f = feed(heartbeat_s=10.0, queue_size=8)
    clients = [Client() for _ in range(3)]
    tasks = [await start(f, client) for client in clients]
    for i in range(5):  # one event per POST, all before the round: nothing per subscriber yet
        publish(f, 1, start=i)
    assert offers == []
    await asyncio.sleep(0)
    assert offers == [5, 5, 5]
    assert [client.ids for client in clients] == [[1, 2, 3, 4, 5]] * 3
    offers.clear()
    for i in range(10):  # past the queue's size: offered at once, so what waits for a round stays bounded
        publish(f, 1, start=5 + i)
    assert offers == [8, 8, 8]
    await asyncio.sleep(0.002)
    assert offers == [8, 8, 8, 2, 2, 2]
    assert [client.ids for client in clients] == [list(range(1, 16))] * 3
    for client in clients:
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_a_subscriber_that_comes_between_a_publish_and_its_round_gets_it_only_by_resuming() -> None:
    f = feed(heartbeat_s=10.0)
    early = Client()
    tasks = [await start(f, early)]
    publish(f, 2)
    late, resumed = Client(), Client()
    tasks.append(asyncio.create_task(FeedResponse(f, f.subscribe())(SCOPE, late.receive, late.send)))
    tasks.append(
        asyncio.create_task(FeedResponse(f, f.subscribe(last_event_id=0))(SCOPE, resumed.receive, resumed.send))
    )
    await asyncio.sleep(0.01)
    publish(f, 1, start=2)
    await asyncio.sleep(0.01)
    assert (early.ids, late.ids, resumed.ids) == ([1, 2, 3], [3], [1, 2, 3])
    for client in (early, late, resumed):
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
