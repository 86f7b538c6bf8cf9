"""OpenIntent event-log pages with an entry nested too deeply: rejected as ``too_deep``, the rest still read.

The JSON decoder recurses, so before this guard one such entry made the whole
page unreadable: the reconciler's task died, the source restarted every few
seconds and nothing after the entry ever reached the bridge.

The log here is served by a small local stand-in for the OpenIntent server's
two routes (the event log, paged newest first, and a quiet intent stream): the
real server parses event payloads with a decoder that has the same depth limit,
so it cannot be made to store such an entry, yet a page may still carry one
(another implementation, a proxy, a corrupted database).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from otel_bridge.assembly import assemble
from otel_bridge.config import Settings, SourceSettings
from otel_bridge.dialects.stream import TOO_DEEP
from otel_bridge.sources.manager import SourceManager
from otel_bridge.sources.openintent import OpenIntentSource
from otel_bridge.sources.openintent_intent import decode_page, split_array
from tests.support.golden import FIXTURES
from tests.support.sse_server import ThreadedServer
from tests.test_upstream_sources import eventually

LOG = FIXTURES / "openintent" / "event-log.json"
DEPTH = 5_000  # far past the decoder's limit (about 1,000)
DEEP_ENTRY = b'{"id":"deep","event_type":"state_patched","payload":' + b"[" * DEPTH + b"]" * DEPTH + b"}"


def _entries() -> list[bytes]:
    return [bytes(raw) for raw in msgspec.json.decode(LOG.read_bytes(), type=list[msgspec.Raw])]


def test_a_page_with_an_entry_too_deep_still_yields_every_entry() -> None:
    good = _entries()
    page = b"[" + b",".join([good[0], DEEP_ENTRY, *good[1:]]) + b"]"
    with pytest.raises(RecursionError):
        msgspec.json.decode(page, type=list[msgspec.Raw])
    assert decode_page(page) == [good[0], DEEP_ENTRY, *good[1:]]


@pytest.mark.parametrize(
    "body",
    [
        LOG.read_bytes(),
        b"[]",
        b' [ 1 , [2, {"a": "],\\"["}], "\\\\" ] ',
        b'[{"a":"\\\\"},{"b":"\\u005d"}]',
    ],
)
def test_the_splitter_agrees_with_the_decoder(body: bytes) -> None:
    assert split_array(body) == [bytes(raw) for raw in msgspec.json.decode(body, type=list[msgspec.Raw])]


@pytest.mark.parametrize("body", [b"", b"{}", b"[1", b"x[1]", b"[1] x", b'["]'])
def test_the_splitter_rejects_what_is_not_an_array(body: bytes) -> None:
    with pytest.raises(msgspec.DecodeError, match="an event log page must be a JSON array"):
        split_array(body)


def _stand_in(entries_newest_first: list[bytes]) -> Starlette:
    async def events(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "200"))
        offset = int(request.query_params.get("offset", "0"))
        page = entries_newest_first[offset : offset + limit]
        return Response(b"[" + b",".join(page) + b"]", media_type="application/json")

    async def stream(_: Request) -> Response:
        async def quiet() -> AsyncIterator[bytes]:
            yield b": connected\n\n"
            await asyncio.Event().wait()  # quiet until the client goes (starlette then cancels this)

        return StreamingResponse(quiet(), media_type="text/event-stream")

    return Starlette(routes=[Route("/api/v1/intents/i1/events", events), Route("/api/v1/subscribe/intents/i1", stream)])


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    good = _entries()
    newest_first = list(reversed(good))
    newest_first.insert(len(newest_first) // 2, DEEP_ENTRY)
    running = ThreadedServer(_stand_in(newest_first))
    try:
        yield running
    finally:
        running.stop()


async def test_an_entry_too_deep_is_rejected_once_and_the_log_is_still_read(server: ThreadedServer) -> None:
    pipeline = assemble(Settings(), pricer=None)
    settings = SourceSettings(url=f"{server.url}/api/v1/subscribe/intents/i1", reconcile_interval_s=0.1, page_size=5)
    manager = SourceManager(pipeline.bridge, [settings])
    source = manager.sources[0]
    assert isinstance(source, OpenIntentSource)
    await manager.start()
    try:
        await eventually(lambda: "i1" in source.followers, what="the intent followed")
        follower = source.followers["i1"]
        await eventually(lambda: follower.counters.log_events == len(_entries()), what="every good entry")
        reconciles = follower.counters.reconciles
        await eventually(lambda: follower.counters.reconciles >= reconciles + 3, what="more reads of the log")
    finally:
        await manager.shutdown()
    assert pipeline.stats.events_rejected[TOO_DEEP] == 1  # counted once, not at every read
    assert pipeline.stats.events_received > 0
    assert follower.counters.full_reads == 0  # it counts as read: the length check does not re-read the log
    snapshot = follower.snapshot()
    assert "event log entry: JSON nested too deeply" in str(snapshot["last_error"]), snapshot
    assert source.rejected == 1
