"""The feed of a fleet on one Redis stream (``feed.backend = "redis://..."``): append here, read everyone's.

Every sidecar appends its enriched, encoded events (encoded on the ingest path,
:meth:`RedisBackend.append`: the stream crosses processes) to one stream and reads the
whole stream back, so each serves the fleet's feed and an SSE id (the stream's
id, ``<ms>-<n>``) means the same event on every sidecar, across restarts, for as
long as the stream keeps it.

Two background tasks per process (started by :meth:`RedisBackend.start`):

* **the writer** takes events from a bounded local buffer and sends them in
  pipelined batches of ``feed.redis.batch_size`` ``XADD`` commands (each trims
  with ``MAXLEN ~ max_len``), plus one ``XTRIM MINID ~`` for ``max_age_s``. The
  ingest path only appends to the buffer (:meth:`RedisBackend.append` never
  awaits); past ``buffer_size`` the oldest waiting events are dropped and counted
  (``dropped.feed_not_appended``). A batch that fails goes back to the front.
* **the reader**: one ``XREAD BLOCK`` loop from the stream's tail at startup,
  handing each entry, framed once, to the hub's ``publish`` (every subscriber,
  with their filters and formats).

While Redis is away (refused, reset, timed out) ingest and export go on: the
first failure tells every subscriber with a ``missed`` notice (reason
``unavailable``), this process's own events are served to its subscribers at
once (no ``id:``, they have no place in the stream yet) and stay buffered; both
tasks reconnect with :class:`~otel_bridge.backoff.Backoff`. Once Redis is back
the buffered events are appended, marked as already served here so this
process's reader does not show them twice (other processes show them), and the
reader goes on from the last id it read: with persistence (AOF) nothing read
before is lost and resume ids stay valid.

Each entry names its process and that process's sequence number (:mod:`.redis_entries`). Before a batch
that failed is sent again, the writer reads the stream's tail back for its own
newest entry and leaves out what Redis had applied (a reply lost as Redis went
away), so the stream holds each event once; past ``RETRY_SCAN`` entries appended
since by others it sends the batch whole, and the readers (live and resume) skip
an entry already seen from that process, so a retry never shows twice.

A resume (:meth:`RedisBackend.read_from`) reads ``XRANGE`` pages; an id older than
the stream's first entry (trimmed away), or than ``XINFO STREAM``'s
``max-deleted-entry-id`` (an ``XDEL``), gets the ``missed`` notice (reason
``evicted``; the count is unknown: Redis does not say how many of the removed came
after that id). Id ``0`` means "the newest
``feed.ring_size`` events kept" (the viewer follows a running trace that way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from otel_bridge.aio import wait_event
from otel_bridge.backoff import Backoff
from otel_bridge.config import FeedRedisSettings, redact_url
from otel_bridge.sinks.feed.backend import Backlog, Gap, GapNotice, MakeItem, Publish, WireId
from otel_bridge.sinks.feed.record import FeedRecord
from otel_bridge.sinks.feed.redis_entries import DATA, SEQ_MASK, SERVED, entry_fields, origin_of, pack_id, unpack_id
from otel_bridge.stats import Stats

if TYPE_CHECKING:
    from otel_bridge.sinks.feed.item import FeedItem

log = logging.getLogger(__name__)

_MAX_ORIGINS = 10_000
"""Processes whose last sequence number the reader remembers (for retried batches); least recent forgotten."""
RETRY_SCAN = 10_000
"""Entries read back from the stream's tail, at most, before a failed batch is sent again."""
_RETRY_PAGE = 500

_decoder = msgspec.json.Decoder(FeedRecord)


class RedisBackend:
    """A :class:`~.backend.FeedBackend` on one Redis stream shared by every process of a fleet."""

    def __init__(self, url: str, settings: FeedRedisSettings, stats: Stats, *, recent: int) -> None:
        """``recent``: how many of the newest events a resume from id ``0`` gets (``feed.ring_size``)."""
        self._url = url
        self.settings = settings
        self._stats = stats
        self._recent = recent
        self.origin = uuid.uuid4().hex[:16].encode()
        self._origin_seq = 0
        self._buffer: deque[tuple[bytes, bool, int]] = deque()  # (data, served here already, our sequence number)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set by the writer whenever the buffer is empty (shutdown waits on it)
        self._client: Any = None  # redis.asyncio.Redis; its command methods are typed for both clients at once
        self._reader_client: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._publish: Publish | None = None
        self._make_item: MakeItem | None = None
        self._gap: GapNotice | None = None
        self._seen: OrderedDict[bytes, int] = OrderedDict()  # origin -> last sequence number read
        self._newest: int | None = None
        self.up = False
        self.last_error: str | None = None
        self.appended = 0
        self.not_appended = 0
        self.served_while_away = 0
        self.reconnects = 0
        self._connected_once = False
        self.repeats_skipped = 0
        self.bad_entries = 0

    def bind(self, publish: Publish, make_item: MakeItem, gap: GapNotice) -> None:
        self._publish, self._make_item, self._gap = publish, make_item, gap

    # --- appending (the ingest path: never awaits) -----------------------------

    def append(self, items: Sequence[FeedItem]) -> None:
        served = not self.up
        buffer = self._buffer
        for item in items:  # the stream stores the encoded record: made here, on the ingest path
            self._origin_seq += 1
            buffer.append((item.data, served, self._origin_seq))
        overflow = len(buffer) - self.settings.buffer_size
        if overflow > 0:
            for _ in range(overflow):
                buffer.popleft()
            self._not_appended(overflow)
        if served and self._make_item is not None and self._publish is not None:
            # Redis is away: this process's own events still reach its subscribers, without a stream id.
            seq = self._newest if self._newest is not None else 0
            self._publish([self._make_item(item.record, item.data, seq, None) for item in items])
            self.served_while_away += len(items)
        self._wake.set()

    def _not_appended(self, n: int) -> None:
        self.not_appended += n
        self._stats.drop("feed_not_appended", n)

    # --- background tasks ---------------------------------------------------------

    async def start(self) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        s = self.settings
        common: dict[str, Any] = {
            "socket_connect_timeout": s.timeout_s,
            "retry": Retry(NoBackoff(), 0),  # our own loops retry, with the project's backoff
        }
        self._client = redis.Redis.from_url(self._url, socket_timeout=s.timeout_s, **common)
        self._reader_client = redis.Redis.from_url(self._url, socket_timeout=s.timeout_s + s.block_ms / 1000, **common)
        self._tasks = [
            asyncio.create_task(self._write_forever(), name="feed-redis-writer"),
            asyncio.create_task(self._read_forever(), name="feed-redis-reader"),
        ]

    async def shutdown(self) -> None:
        """Stop reading, give the writer one ``timeout_s`` to append what is buffered, then close."""
        tasks, self._tasks = self._tasks, []
        if tasks:
            writer, reader = tasks
            await _stop(reader, self.settings.timeout_s)
            if self._buffer and self.up:
                self._drained.clear()
                await wait_event(self._drained, self.settings.timeout_s)
            self._stopping = True
            await _stop(writer, self.settings.timeout_s)
            if self._buffer:
                self._not_appended(len(self._buffer))
                self._buffer.clear()
        for client in (self._client, self._reader_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._client = self._reader_client = None

    def _went_away(self, what: str, exc: BaseException) -> None:
        self.last_error = f"{what}: {type(exc).__name__}: {exc}"
        if self.up:
            self.up = False
            log.warning("feed: Redis at %s is unavailable (%s); serving this process's events only", self._where, exc)
            if self._gap is not None:
                self._gap("unavailable")

    def _came_back(self) -> None:
        if not self.up:
            self.up = True
            self.last_error = None
            self.reconnects += self._connected_once
            self._connected_once = True
            log.info("feed: connected to Redis at %s, stream %s", self._where, self.settings.stream)

    @property
    def _where(self) -> str:
        return redact_url(self._url)

    async def _write_forever(self) -> None:
        s = self.settings
        backoff = Backoff(s.backoff_initial_s, s.backoff_max_s)
        buffer = self._buffer
        retrying = False
        while True:
            if not buffer:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [buffer.popleft() for _ in range(min(s.batch_size, len(buffer)))]
            try:
                if retrying:  # the failed send may have been applied (the reply lost): those entries are not sent again
                    newest = await self._newest_own_seq()
                    retrying = False
                    fresh = [entry for entry in batch if newest is None or entry[2] > newest]
                    self.appended += len(batch) - len(fresh)
                    batch = fresh
                if batch:
                    await self._send(batch)
            except asyncio.CancelledError:
                buffer.extendleft(reversed(batch))
                raise
            except Exception as exc:  # redis.RedisError and OSError: the batch goes back to the front
                buffer.extendleft(reversed(batch))
                retrying = True
                _raise_if_cancelled(self._stopping)
                overflow = len(buffer) - s.buffer_size
                for _ in range(max(0, overflow)):
                    buffer.popleft()
                if overflow > 0:
                    self._not_appended(overflow)
                self._went_away("append", exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            self.appended += len(batch)

    async def _send(self, batch: list[tuple[bytes, bool, int]]) -> None:
        s = self.settings
        pipe = self._client.pipeline(transaction=False)
        maxlen = s.max_len or None
        for data, served, n in batch:
            pipe.xadd(s.stream, entry_fields(data, self.origin, n, served), maxlen=maxlen, approximate=True)
        if s.max_age_s:
            pipe.xtrim(s.stream, minid=f"{int((time.time() - s.max_age_s) * 1000)}-0", approximate=True)
        await pipe.execute()

    async def _newest_own_seq(self) -> int | None:
        """The sequence number of this process's newest entry in the stream (``None``: none among the newest
        ``RETRY_SCAN`` entries). Read before a failed batch is sent again: what Redis applied is not appended twice."""
        stream = self.settings.stream
        newest: bytes = b"+"
        scanned = 0
        while scanned < RETRY_SCAN:
            page = await self._client.xrevrange(stream, max=newest, count=_RETRY_PAGE)
            for _, fields in page:
                tag = origin_of(fields)
                if tag is not None and tag[0] == self.origin:
                    return tag[1]
            if len(page) < _RETRY_PAGE:
                return None
            scanned += len(page)
            newest = b"(" + page[-1][0]
        return None

    async def _read_forever(self) -> None:
        s = self.settings
        backoff = Backoff(s.backoff_initial_s, s.backoff_max_s)
        client = self._reader_client
        last: bytes | None = None
        while True:
            try:
                if last is None:
                    # Live from the tail: what is there already is history, for resumes.
                    tail = await client.xrevrange(s.stream, count=1)
                    last = tail[0][0] if tail else b"0-0"
                    if tail:
                        self._newest = pack_id(last)
                    self._came_back()
                response = await client.xread({s.stream: last}, count=s.read_count, block=s.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis.RedisError and OSError
                _raise_if_cancelled(self._stopping)
                self._went_away("read", exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            self._came_back()
            for _, entries in response or ():
                if not entries:
                    continue
                items = [item for item in (self._live_item(eid, fields) for eid, fields in entries) if item is not None]
                if items and self._publish is not None:
                    self._publish(items)
                last = entries[-1][0]
                self._newest = pack_id(last)

    def _live_item(self, entry_id: bytes, fields: dict[bytes, bytes]) -> FeedItem | None:
        tag = origin_of(fields)
        if tag is not None:
            origin, seq = tag
            seen = self._seen.get(origin)
            if seen is not None and seq <= seen:
                self.repeats_skipped += 1  # a batch sent again after a failure
                return None
            self._seen[origin] = seq
            self._seen.move_to_end(origin)
            if len(self._seen) > _MAX_ORIGINS:
                self._seen.popitem(last=False)
        if fields.get(SERVED) == self.origin:
            return None  # this process's subscribers had it while Redis was away
        return self._item(entry_id, fields)

    def _item(self, entry_id: bytes, fields: dict[bytes, bytes]) -> FeedItem | None:
        data = fields.get(DATA)
        try:
            record = _decoder.decode(data) if data is not None else None
        except (msgspec.DecodeError, ValueError):
            record = None
        if record is None or self._make_item is None:
            self.bad_entries += 1  # not ours: another writer's entry in the stream
            return None
        text = entry_id.decode()
        try:
            return self._make_item(record, data or b"", pack_id(text), text)
        except ValueError:  # an unknown kind
            self.bad_entries += 1
            return None

    # --- reading back (resume, resync) ----------------------------------------------

    async def read_from(self, after: int, until: int | None, limit: int) -> Backlog:
        client = self._client
        if client is None:
            return Backlog(gap=Gap("unavailable", None, None))
        s = self.settings
        top = "+" if until is None else unpack_id(until)
        if after == 0:
            entries = await client.xrevrange(s.stream, max=top, min="-", count=min(limit, self._recent))
            return self._backlog(list(reversed(entries)), None, until, more=False)
        try:
            info = await client.xinfo_stream(s.stream)
        except Exception as exc:
            if "no such key" in str(exc):  # no stream (yet, or Redis lost it): nothing to replay
                return Backlog(gap=Gap("unknown_id", None, None))
            raise
        first = info.get("first-entry")
        oldest = first[0].decode() if first else None
        if after > pack_id(info["last-generated-id"]):
            return Backlog(gap=Gap("unknown_id", None, oldest))
        if until is not None and after >= until:
            # Valid, but this process has not read that far yet: skip live events up to it.
            return Backlog(skip_through=after if after > until else None)
        gap = None
        # Trimming removes from the head (and does not move max-deleted-entry-id); XDEL may remove any entry.
        trimmed = first is not None and after < pack_id(first[0])
        if trimmed or after < pack_id(info.get("max-deleted-entry-id", b"0-0")):
            gap = Gap("evicted", None, oldest)
        entries = await client.xrange(s.stream, min="(" + unpack_id(after), max=top, count=limit)
        return self._backlog(entries, gap, until, more=len(entries) == limit)

    def _backlog(
        self, entries: list[tuple[bytes, dict[bytes, bytes]]], gap: Gap | None, until: int | None, *, more: bool
    ) -> Backlog:
        backlog = Backlog(self._items(entries), gap, more)
        if until is None and entries and not more:
            # Read before this process read anything live: the live events up to here were replayed.
            backlog.skip_through = pack_id(entries[-1][0])
        return backlog

    def _items(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[FeedItem]:
        seen: dict[bytes, int] = {}
        items: list[FeedItem] = []
        for entry_id, fields in entries:
            tag = origin_of(fields)
            if tag is not None:
                if seen.get(tag[0], -1) >= tag[1]:
                    continue  # a batch sent again after a failure
                seen[tag[0]] = tag[1]
            item = self._item(entry_id, fields)
            if item is not None:
                items.append(item)
        return items

    @property
    def newest_id(self) -> int | None:
        return self._newest

    def wire_id(self, seq: int) -> WireId:
        return unpack_id(seq)

    def parse_id(self, text: str) -> int:
        text = text.strip()
        if text == "0":
            return 0
        ms, sep, n = text.partition("-")
        if sep and ms.isdigit() and n.isdigit() and int(n) <= SEQ_MASK:
            return pack_id(text)
        raise ValueError(f"Last-Event-ID must be a stream id from this feed (<ms>-<n>, or 0), got {text!r}")

    def snapshot(self) -> dict[str, object]:
        return {
            "backend": "redis",
            "stream": self.settings.stream,
            "connected": self.up,
            "buffered": len(self._buffer),
            "appended": self.appended,
            "not_appended": self.not_appended,
            "served_while_away": self.served_while_away,
            "reconnects": self.reconnects,
            "repeats_skipped": self.repeats_skipped,
            "bad_entries": self.bad_entries,
            "last_error": self.last_error,
        }


def _raise_if_cancelled(stopping: bool) -> None:
    """A cancellation the client turned into a connection error (it disconnects on cancel) is still one."""
    task = asyncio.current_task()
    if stopping or (task is not None and task.cancelling()):
        raise asyncio.CancelledError


async def _stop(task: asyncio.Task[None], seconds: float) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        async with asyncio.timeout(seconds):
            await task
