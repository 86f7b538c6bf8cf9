"""One followed OpenIntent intent: its SSE hint stream and the reconciler that reads its event log.

The design (the log is the source of truth, SSE frames are hints, how a read
pages and when the whole log is read again) is described in
:mod:`otel_bridge.sources.openintent`, which owns the followers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import msgspec

from otel_bridge.aio import wait_event
from otel_bridge.config import redact_url
from otel_bridge.dialects import openintent as openintent_dialect
from otel_bridge.dialects.base import StreamContext, parse_timestamp
from otel_bridge.dialects.framing import Frame
from otel_bridge.dialects.stream import TOO_DEEP, StreamDecoder
from otel_bridge.sources.upstream import SSEStream, StreamStatus, UpstreamError, iso_time

if TYPE_CHECKING:
    from otel_bridge.sources.openintent import OpenIntentSource

log = logging.getLogger(__name__)

API = "/api/v1"

LATE_COMMIT_S = 0.5
"""How far behind the newest entry already read a log read keeps paging.

The server stamps ``created_at`` before it commits; with concurrent writers an
older entry can become visible after a newer one. Half a second covers the
INSERT-to-COMMIT gap many times over while keeping each read small under load
(the entries of the last half second plus the new ones). Anything later still
(clock skew between server replicas) is caught by the length check of
:meth:`IntentFollower.reconcile` once the log goes quiet.
"""
MAX_SEEN_IDS = 200_000
"""Event ids remembered per intent for deduplication. Past it the older half is
forgotten and anything at or before the newest forgotten ``created_at`` counts
as seen: a read never pages back that far (see :data:`LATE_COMMIT_S`)."""


class _LogEntry(msgspec.Struct):
    """The fields of a log entry the reconciler needs; the whole entry goes to the dialect untouched."""

    id: str | None = None
    created_at: str | None = None
    event_type: str | None = None


_decode_raw_page = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_entry = msgspec.json.Decoder(_LogEntry).decode

TOO_DEEP_MESSAGE = "event log entry: JSON nested too deeply (the limit is about 1,000 levels of arrays and objects)"
MAX_TOO_DEEP_REMEMBERED = 10_000
"""Too-deep entries remembered (by digest) per intent so each is counted once, not at every read; past it
the memory starts afresh (an entry may then be counted again, never lost silently)."""
_ARRAY_TOKENS = re.compile(rb'[][{}",\\]')


def split_array(body: bytes) -> list[bytes]:
    """The elements of a JSON array, in one pass with no recursion however deep they are nested.

    The decoder recurses, so one entry nested past its limit would make a whole
    page unreadable; this finds each element's bytes so the others still decode.
    Raises :class:`msgspec.DecodeError` for a body that is not a JSON array.
    """
    elements: list[bytes] = []
    depth = 0
    in_string = False
    escaped_at = -1
    start = -1
    for match in _ARRAY_TOKENS.finditer(body):
        at, token = match.start(), match.group()
        if in_string:
            if at == escaped_at:
                continue
            if token == b"\\":
                escaped_at = at + 1
            elif token == b'"':
                in_string = False
            continue
        if token == b'"':
            in_string = True
        elif token in b"[{":
            if depth == 0:
                if token != b"[" or body[:at].strip():
                    break
                start = at + 1
            depth += 1
        elif token in b"]}":
            depth -= 1
            if depth == 0:
                if body[start:at].strip():
                    elements.append(body[start:at].strip())
                if body[at + 1 :].strip():
                    break
                return elements
        elif token == b"," and depth == 1:
            elements.append(body[start:at].strip())
            start = at + 1
    raise msgspec.DecodeError("an event log page must be a JSON array")


def decode_page(body: bytes) -> list[bytes]:
    """A page of the event log: each entry's bytes (undecoded), even when an entry is nested too deeply."""
    try:
        return [bytes(raw) for raw in _decode_raw_page(body)]
    except RecursionError:
        return split_array(body)


@dataclass
class _IntentCounters:
    log_events: int = 0  # log entries sent to the bridge
    duplicates: int = 0  # log entries read again and skipped (already sent)
    sse_events: int = 0  # SSE frames that were events with an id (what the SSE alone delivered)
    sse_other_frames: int = 0  # SSE frames without an event id: Intent objects and the like (hints only)
    reconciles: int = 0
    full_reads: int = 0  # whole-log reads after the length check found an entry the incremental reads missed
    last_reconcile_at: float | None = None
    last_event_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None


class IntentFollower:
    """One intent: an SSE hint stream and a reconciler that reads the event log."""

    def __init__(self, source: OpenIntentSource, intent_id: str) -> None:
        self.intent_id = intent_id
        self._source = source
        settings = source.settings
        self._path = f"{API}/intents/{quote(intent_id, safe='')}/events"
        self._wake = asyncio.Event()
        self._wake.set()  # read the log once straight away, before the stream even connects
        self._reconnected = asyncio.Event()
        self._stream_path = f"{API}/subscribe/intents/{quote(intent_id, safe='')}"
        self.status = StreamStatus(redact_url(f"{source.targets.base_url}{self._stream_path}"))
        self._decoder = StreamDecoder(
            StreamContext(source=source.name, stream_key=intent_id, clock_ns=source.clock_ns),
            openintent_dialect.DIALECT,
            on_reject=source.reject,
        )
        self._interval = settings.reconcile_interval_s
        self._page_size = settings.page_size
        self._seen: dict[str, int] = {}  # event id -> created_at (ns)
        self._floor_ns = -1  # entries at or before this time count as seen (forgotten ids)
        self._newest_ns: int | None = None
        self._too_deep_seen: set[bytes] = set()  # digests of entries rejected as nested too deeply
        self._total_sent = 0  # distinct entries ever sent, forgotten ids included: the log's length if none is missing
        self._last_length_check = time.monotonic()
        self.counters = _IntentCounters()

    async def run(self) -> None:
        """Stream and reconciler until cancelled. Run again (after a restart), it keeps what it has sent."""
        stream = SSEStream(
            self._source.client,
            self._stream_path,
            headers={},
            backoff=self._source.backoff(),
            on_frames=self._on_frames,
            on_connect=self._on_connect,
            status=self.status,
            gate=self._source.gate,
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(stream.run_forever(), name=f"openintent-sse:{self.intent_id}")
            tasks.create_task(self._reconcile_forever(), name=f"openintent-log:{self.intent_id}")

    def _on_connect(self) -> None:
        # Anything logged while the stream was down is in the log only.
        self._wake.set()
        self._reconnected.set()

    def _on_frames(self, frames: Sequence[Frame]) -> None:
        for frame in frames:
            try:
                entry = _decode_entry(frame.data)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                entry = _LogEntry()  # only a hint: the log entry is what gets decoded (and rejected, if bad)
            if entry.id is not None and entry.event_type is not None:
                self.counters.sse_events += 1
            else:
                self.counters.sse_other_frames += 1
        self._wake.set()

    async def _reconcile_forever(self) -> None:
        backoff = self._source.backoff()
        while True:
            await wait_event(self._wake, self._interval)
            self._wake.clear()
            try:
                await self.reconcile()
                backoff.reset()
            except (httpx.HTTPError, UpstreamError, msgspec.DecodeError) as exc:
                self._error(exc)
                if isinstance(exc, UpstreamError) and not exc.retry_soon:
                    backoff.give_up_fast()
                # Retry after the pause, or as soon as the stream reconnects: the server is back.
                self._reconnected.clear()
                await wait_event(self._reconnected, backoff.next_delay())
                self._wake.set()

    def _error(self, exc: Exception) -> None:
        message = str(exc) or type(exc).__name__
        self.counters.last_error = f"event log: {message}"
        self.counters.last_error_at = time.time()

    async def reconcile(self) -> int:
        """Read the log's new entries and send them to the bridge, oldest first. Returns how many.

        When a read finds nothing new (the log is quiet), at most once per
        ``reconcile_interval_s`` the log's length is checked against the number
        of entries sent; if the log holds more, an entry became visible later
        than :data:`LATE_COMMIT_S` allows for, and the whole log is read again.
        """
        horizon = None if self._newest_ns is None else self._newest_ns - int(LATE_COMMIT_S * 1e9)
        found = await self._read(horizon)
        now = time.monotonic()
        if found == 0 and horizon is not None and now - self._last_length_check >= self._interval:
            self._last_length_check = now
            beyond = decode_page(
                await get_json(self._source.client, self._path, {"limit": 1, "offset": self._total_sent})
            )
            if beyond:
                self.counters.full_reads += 1
                found = await self._read(None)
        self.counters.reconciles += 1
        self.counters.last_reconcile_at = time.time()
        return found

    async def _read(self, horizon: int | None) -> int:
        """Page from the newest entry back to ``horizon`` (``None``: the whole log); send what is new."""
        new: list[tuple[int, int, _LogEntry, bytes]] = []
        picked: set[str] = set()
        offset = 0
        position = 0
        while True:
            if self._source.gate is not None:
                await self._source.gate()  # the memory budget: no new page while it refuses work
            page = decode_page(
                await get_json(self._source.client, self._path, {"limit": self._page_size, "offset": offset})
            )
            oldest: int | None = None
            for raw in page:
                position += 1
                try:
                    entry = _decode_entry(raw)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    entry = _LogEntry()
                except RecursionError:
                    self._too_deep(raw, position - 1)
                    continue
                ts = parse_timestamp(entry.created_at)
                if ts is not None:
                    oldest = ts if oldest is None else min(oldest, ts)
                if entry.id is None:
                    self._source.reject("openintent_entry_without_id")
                    continue
                if entry.id in self._seen or entry.id in picked or (ts is not None and ts <= self._floor_ns):
                    self.counters.duplicates += 1
                    continue
                picked.add(entry.id)
                # Newest first on the wire: a later position is older, which breaks created_at ties.
                new.append((ts if ts is not None else 0, -position, entry, raw))
            offset += len(page)
            if len(page) < self._page_size:
                break  # the end of the log
            if horizon is not None and oldest is not None and oldest < horizon:
                break  # everything older was read by an earlier pass
        if not new:
            return 0
        new.sort(key=lambda item: (item[0], item[1]))
        frames = [Frame(entry.event_type, raw, entry.id) for _, _, entry, raw in new]
        events = self._decoder.feed(frames)
        self._decoder.rejections.clear()  # counted as they happened (on_reject); the log is long-lived
        for ts, _, entry, _ in new:
            assert entry.id is not None
            self._seen[entry.id] = ts
            if self._newest_ns is None or ts > self._newest_ns:
                self._newest_ns = ts
        self._total_sent += len(new)
        self._forget_old_ids()
        if events:
            self._source.submit(events)
            self.counters.log_events += len(new)
            self.counters.last_event_at = time.time()
        return len(new)

    def _too_deep(self, raw: bytes, position: int) -> None:
        """An entry nested too deeply to decode: rejected and counted once (it has no readable id)."""
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if digest in self._too_deep_seen:
            return
        if len(self._too_deep_seen) >= MAX_TOO_DEEP_REMEMBERED:
            self._too_deep_seen.clear()
        self._too_deep_seen.add(digest)
        self._total_sent += 1  # it is in the log: the length check must not read the whole log for it
        self._source.reject(TOO_DEEP)
        self.counters.last_error = f"{TOO_DEEP_MESSAGE} (position {position} from the newest)"
        self.counters.last_error_at = time.time()

    def _forget_old_ids(self) -> None:
        if len(self._seen) <= MAX_SEEN_IDS:
            return
        times = sorted(self._seen.values())
        self._floor_ns = max(self._floor_ns, times[len(times) // 2])
        self._seen = {k: v for k, v in self._seen.items() if v > self._floor_ns}

    def snapshot(self) -> dict[str, object]:
        c = self.counters
        return {
            "intent_id": self.intent_id,
            "connected": self.status.connected,
            "events": c.log_events,
            "sse_frames": self.status.frames,
            "sse_events": c.sse_events,
            "sse_other_frames": c.sse_other_frames,
            "duplicates_skipped": c.duplicates,
            "reconciles": c.reconciles,
            "full_reads": c.full_reads,
            "reconnects": self.status.reconnects,
            "last_event_time": iso_time(c.last_event_at),
            "last_reconcile_time": iso_time(c.last_reconcile_at),
            "last_error": last[1] if (last := self.last_error()) is not None else None,
        }

    def last_error(self) -> tuple[float, str] | None:
        """The newer of the SSE stream's and the event log's last errors: ``(time, message)``."""
        return latest_error(
            (self.status.last_error_at, self.status.last_error),
            (self.counters.last_error_at, self.counters.last_error),
        )


def latest_error(*errors: tuple[float | None, str | None]) -> tuple[float, str] | None:
    """The most recent of several ``(time, message)`` last errors; unset ones are skipped."""
    return max(((at, message) for at, message in errors if at is not None and message is not None), default=None)


async def get_json(client: httpx.AsyncClient, path: str, params: dict[str, int] | None = None) -> bytes:
    response = await client.get(path, params=params)
    if response.status_code != 200:
        code = response.status_code
        raise UpstreamError(f"GET {path}: HTTP {code}: {response.text[:200].strip()}", retry_soon=code >= 500)
    return response.content
