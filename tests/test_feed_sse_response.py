"""The feed's SSE response on its own: the send timeout's cut, heartbeats in line, disconnect, HEAD.

The ASGI server here is a pair of functions standing in for uvicorn's ``send`` and ``receive``
(``tests/support/asgi_client.py``: a frozen client cannot be made on a real socket on cue, and the
order of the messages the response sends is what these tests check). The feed, its subscriber and
the response are the real ones.
"""

from __future__ import annotations

import asyncio

from otel_bridge.web.stream import FeedResponse
from tests.support.asgi_client import SCOPE, Client, feed, publish, whole_frames


async def test_the_send_timeout_cuts_a_frozen_client_and_sends_nothing_after() -> None:
    f = feed(send_timeout_s=0.05, heartbeat_s=0.03)
    subscriber = f.subscribe()
    client = Client(freeze_at=3)  # the retry hint and one chunk go out; the next write never completes
    response = FeedResponse(f, subscriber)
    task = asyncio.create_task(response(SCOPE, client.receive, client.send))
    publish(f, 3)
    while b"id: 3\n" not in client.body:
        client.wrote.clear()
        await asyncio.wait_for(client.wrote.wait(), 1)
    sent_before = list(client.messages)
    publish(f, 3, start=3)  # the chunk that freezes
    await asyncio.wait_for(client.frozen.wait(), 1)
    publish(f, 3, start=6)  # queued behind the frozen write
    await asyncio.wait_for(task, 1)  # the response returns: the server closes the connection
    await asyncio.sleep(0.1)  # a heartbeat or a later chunk would have been sent by now
    assert client.messages == sent_before  # nothing after the cut: no heartbeat, no chunk, no end of body
    assert not any(m.get("more_body") is False for m in client.messages)
    frames = whole_frames(client.body)
    assert [frame.split(b"\n")[0] for frame in frames if frame.startswith(b"id:")] == [b"id: 1", b"id: 2", b"id: 3"]
    assert (f.send_timeouts, f.subscribers, response.timed_out) == (1, 0, True)


async def test_heartbeats_come_between_frames_once_the_stream_is_idle() -> None:
    f = feed(heartbeat_s=0.02, send_timeout_s=1.0)
    client = Client()
    response = FeedResponse(f, f.subscribe())
    task = asyncio.create_task(response(SCOPE, client.receive, client.send))
    for i in range(5):
        publish(f, 2, start=2 * i)
        await asyncio.sleep(0.015)  # busier than the heartbeat interval
    busy = client.body.count(b": heartbeat\n\n")
    await asyncio.sleep(0.1)  # idle
    client.gone.set()
    await asyncio.wait_for(task, 1)
    body = client.body
    assert busy <= 1
    assert body.count(b": heartbeat\n\n") >= 3
    frames = whole_frames(body)
    assert sum(1 for frame in frames if frame.startswith(b"id:")) == 10
    assert all(frame == b": heartbeat" or b"\n:" not in frame for frame in frames)  # never inside a frame
    assert client.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_client_disconnect_ends_the_response_and_the_subscription() -> None:
    f = feed(heartbeat_s=10.0)
    client = Client()
    task = asyncio.create_task(FeedResponse(f, f.subscribe())(SCOPE, client.receive, client.send))
    await asyncio.sleep(0.01)
    assert f.subscribers == 1
    client.gone.set()
    await asyncio.wait_for(task, 1)
    assert (f.subscribers, f.send_timeouts) == (0, 0)


async def test_head_gets_the_headers_and_no_stream() -> None:
    f = feed()
    client = Client()
    await asyncio.wait_for(FeedResponse(f, f.subscribe())({**SCOPE, "method": "HEAD"}, client.receive, client.send), 1)
    assert client.messages[0]["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in client.messages[0]["headers"]
    assert client.messages[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]
    assert f.subscribers == 0
