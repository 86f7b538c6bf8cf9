"""OpenIntent sources: follow intents, agents and portfolios, and lose nothing.

The OpenIntent server's SSE is lossy (each subscriber has a 100-slot queue
shared by every intent's events; overflow is dropped silently), carries no
ids, and for ``intent_created``/``state_patched``/``status_changed`` sends the
whole Intent object rather than the event. Its event log
(``GET /api/v1/intents/{id}/events``, newest first, paged by offset) is
complete and every entry has an id. So:

* **The event log is the source of truth.** Only log entries reach the bridge,
  each exactly once (deduplicated by event id), each batch in ``created_at``
  order, so the mapper sees calls start before they end and the terminal
  status after the work it ends.
* **SSE frames are hints.** Any frame on an intent's stream (an event, an
  Intent object, anything) wakes that intent's reconciler, which reads the
  log's new entries. Intent-object frames are therefore never counted on
  their own: the log's real ``state_patched``/``status_changed``/
  ``intent_created`` events stand for them, so nothing is counted twice.
* **Reconcile** runs when the stream (re)connects, after every SSE hint
  (coalesced: hints that arrive during a read cause one more read), and every
  ``reconcile_interval_s`` even when the stream is quiet (events the server
  never broadcasts, such as leases and costs, and hints the server dropped).
  A read pages from the newest entry back until it passes the newest entry of
  the previous read by :data:`LATE_COMMIT_S`, so an entry committed a little
  after a newer one is still found; when the log is quiet, its length is
  compared with the number of entries sent, and a mismatch reads it all again.

Agents: ``/api/v1/subscribe/agents/{id}`` carries ``agent_assigned`` frames
with the intent id; each assigned intent is followed. The server has no
endpoint that lists an agent's assignments, so an assignment made while that
stream is disconnected is only found if the intent is also followed another
way (an intent or portfolio of the same source).

Portfolios: members come from ``GET /api/v1/portfolios/{id}/intents``, read on
(re)connect, on any portfolio frame (``intent_added`` frames carry no data)
and every ``reconcile_interval_s``; each member is followed.

Concurrency: one task per source (owned by the manager) runs a TaskGroup with
one task per agent stream, two per portfolio (stream, discovery) and two per
followed intent (stream, reconciler). Cancelling the source's task cancels
them all. Everything runs on the event loop, so the per-intent state needs no
locks; the consumer's ``submit`` is called from the reconcilers only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import msgspec

from otel_bridge.aio import wait_event
from otel_bridge.backoff import Backoff
from otel_bridge.config import SourceSettings
from otel_bridge.dialects import openintent as openintent_dialect
from otel_bridge.dialects.base import StreamContext, parse_timestamp
from otel_bridge.dialects.framing import Frame
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.model import AgentEvent
from otel_bridge.pipeline import EventConsumer
from otel_bridge.sources.upstream import (
    SSEStream,
    StreamStatus,
    UpstreamError,
    iso_time,
    new_client,
    redact_url,
    source_name,
)

log = logging.getLogger(__name__)

_API = "/api/v1"
_SUBSCRIBE_URL = re.compile(r"^(?P<base>.*?)/api/v1/subscribe/(?P<what>intents|agents|portfolios)/(?P<id>[^/?#]+)/?$")

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
DEFAULT_READ_TIMEOUT_S = 90.0
"""The server pings idle streams (every 15-30 s), so 90 s of silence means a dead connection."""


def is_openintent_url(url: str) -> bool:
    """True for an OpenIntent ``/api/v1/subscribe/{intents|agents|portfolios}/{id}`` URL."""
    return _SUBSCRIBE_URL.match(url) is not None


@dataclass(frozen=True)
class Targets:
    """What an ``openintent`` source follows, and the server's base URL."""

    base_url: str
    intents: tuple[str, ...]
    agents: tuple[str, ...]
    portfolios: tuple[str, ...]

    def empty(self) -> bool:
        return not (self.intents or self.agents or self.portfolios)


def targets_for(settings: SourceSettings) -> Targets:
    """Base URL and ids: the configured lists plus the one a subscribe URL names."""
    intents, agents, portfolios = list(settings.intents), list(settings.agents), list(settings.portfolios)
    match = _SUBSCRIBE_URL.match(settings.url)
    if match is None:
        base = settings.url.rstrip("/")
        if base.endswith(_API):
            base = base[: -len(_API)]
    else:
        base = match["base"]
        {"intents": intents, "agents": agents, "portfolios": portfolios}[match["what"]].append(match["id"])

    def unique(ids: list[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ids))

    return Targets(base, unique(intents), unique(agents), unique(portfolios))


class _LogEntry(msgspec.Struct):
    """The fields of a log entry the reconciler needs; the whole entry goes to the dialect untouched."""

    id: str | None = None
    created_at: str | None = None
    event_type: str | None = None


class _Assignment(msgspec.Struct):
    intent_id: str | None = None


class _Member(msgspec.Struct):
    id: str | None = None


_decode_page = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_entry = msgspec.json.Decoder(_LogEntry).decode
_decode_assignment = msgspec.json.Decoder(_Assignment).decode
_decode_members = msgspec.json.Decoder(list[_Member]).decode


async def _get_json(client: httpx.AsyncClient, path: str, params: dict[str, int] | None = None) -> bytes:
    response = await client.get(path, params=params)
    if response.status_code != 200:
        code = response.status_code
        raise UpstreamError(f"GET {path}: HTTP {code}: {response.text[:200].strip()}", retry_soon=code >= 500)
    return response.content


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
        self._path = f"{_API}/intents/{quote(intent_id, safe='')}/events"
        self._wake = asyncio.Event()
        self._wake.set()  # read the log once straight away, before the stream even connects
        self._reconnected = asyncio.Event()
        self._stream_path = f"{_API}/subscribe/intents/{quote(intent_id, safe='')}"
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
            except (msgspec.DecodeError, msgspec.ValidationError):
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
            beyond = _decode_page(
                await _get_json(self._source.client, self._path, {"limit": 1, "offset": self._total_sent})
            )
            if beyond:
                self.counters.full_reads += 1
                found = await self._read(None)
        self.counters.reconciles += 1
        self.counters.last_reconcile_at = time.time()
        return found

    async def _read(self, horizon: int | None) -> int:
        """Page from the newest entry back to ``horizon`` (``None``: the whole log); send what is new."""
        new: list[tuple[int, int, _LogEntry, msgspec.Raw]] = []
        picked: set[str] = set()
        offset = 0
        position = 0
        while True:
            page = _decode_page(
                await _get_json(self._source.client, self._path, {"limit": self._page_size, "offset": offset})
            )
            oldest: int | None = None
            for raw in page:
                position += 1
                try:
                    entry = _decode_entry(raw)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    entry = _LogEntry()
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
        frames = [Frame(entry.event_type, bytes(raw), entry.id) for _, _, entry, raw in new]
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


@dataclass
class _Watch:
    """An agent or portfolio stream and what it found."""

    kind: str  # "agent" | "portfolio"
    ident: str
    stream: SSEStream | None = None
    found: set[str] = field(default_factory=set)
    last_error: str | None = None
    last_error_at: float | None = None

    def newest_error(self) -> tuple[float, str] | None:
        """The newer of the stream's last error and the watch's own (member discovery): ``(time, message)``."""
        status = self.stream.status if self.stream is not None else None
        stream_error = (status.last_error_at, status.last_error) if status is not None else (None, None)
        return latest_error(stream_error, (self.last_error_at, self.last_error))

    def snapshot(self) -> dict[str, object]:
        assert self.stream is not None
        status = self.stream.status
        last = self.newest_error()
        return {
            f"{self.kind}_id": self.ident,
            "connected": status.connected,
            "intents": sorted(self.found),
            "reconnects": status.reconnects,
            "last_error": last[1] if last else None,
        }


class OpenIntentSource:
    """A configured ``openintent`` source: every intent it follows, with gap repair."""

    kind = "openintent"

    def __init__(
        self,
        consumer: EventConsumer,
        settings: SourceSettings,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
    ) -> None:
        self.name = source_name(settings)
        self.settings = settings
        self.targets = targets_for(settings)
        self.clock_ns = clock_ns
        self._consumer = consumer
        self._rng = rng or random.Random()
        read_timeout = settings.read_timeout_s if settings.read_timeout_s is not None else DEFAULT_READ_TIMEOUT_S
        self._read_timeout = read_timeout
        self._client: httpx.AsyncClient | None = None
        self.followers: dict[str, IntentFollower] = {}
        self._watches: list[_Watch] = []
        self._tasks: asyncio.TaskGroup | None = None
        self.rejected = 0

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "the source is not running"
        return self._client

    def backoff(self) -> Backoff:
        return Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s, self._rng)

    def reject(self, reason: str) -> None:
        self._consumer.reject(reason)
        self.rejected += 1

    def submit(self, events: Sequence[AgentEvent]) -> None:
        self._consumer.submit(events)

    async def run(self) -> None:
        """Follow everything configured until cancelled (the manager owns the task)."""
        self._client = new_client(self.settings, self._read_timeout, base_url=self.targets.base_url)
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                self._watches = []
                for follower in self.followers.values():  # run again after a restart, dedupe state kept
                    tasks.create_task(follower.run(), name=f"openintent-intent:{follower.intent_id}")
                for intent_id in self.targets.intents:
                    self.follow(intent_id)
                for agent_id in self.targets.agents:
                    self._watch_agent(agent_id)
                for portfolio_id in self.targets.portfolios:
                    self._watch_portfolio(portfolio_id)
        finally:
            self._tasks = None
            await self._client.aclose()

    def follow(self, intent_id: str) -> IntentFollower | None:
        """Start following an intent (once; later calls are no-ops)."""
        if intent_id in self.followers or self._tasks is None:
            return self.followers.get(intent_id)
        follower = IntentFollower(self, intent_id)
        self.followers[intent_id] = follower
        self._tasks.create_task(follower.run(), name=f"openintent-intent:{intent_id}")
        return follower

    def _watch_agent(self, agent_id: str) -> None:
        assert self._tasks is not None
        watch = _Watch("agent", agent_id)

        def on_frames(frames: Sequence[Frame]) -> None:
            for frame in frames:
                try:
                    assignment = _decode_assignment(frame.data)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    self.reject("openintent_bad_assignment")
                    continue
                if assignment.intent_id:
                    watch.found.add(assignment.intent_id)
                    self.follow(assignment.intent_id)

        path = f"{_API}/subscribe/agents/{quote(agent_id, safe='')}"
        watch.stream = SSEStream(
            self.client,
            path,
            headers={},
            backoff=self.backoff(),
            on_frames=on_frames,
            status=StreamStatus(redact_url(self.targets.base_url + path)),
        )
        self._watches.append(watch)
        self._tasks.create_task(watch.stream.run_forever(), name=f"openintent-agent:{agent_id}")

    def _watch_portfolio(self, portfolio_id: str) -> None:
        assert self._tasks is not None
        watch = _Watch("portfolio", portfolio_id)
        wake = asyncio.Event()
        wake.set()
        path = f"{_API}/subscribe/portfolios/{quote(portfolio_id, safe='')}"
        members_path = f"{_API}/portfolios/{quote(portfolio_id, safe='')}/intents"
        watch.stream = SSEStream(
            self.client,
            path,
            headers={},
            backoff=self.backoff(),
            on_frames=lambda _frames: wake.set(),  # membership frames carry no intent id: re-read the members
            on_connect=wake.set,
            status=StreamStatus(redact_url(self.targets.base_url + path)),
        )

        async def discover_forever() -> None:
            backoff = self.backoff()
            while True:
                await wait_event(wake, self.settings.reconcile_interval_s)
                wake.clear()
                try:
                    members = _decode_members(await _get_json(self.client, members_path))
                    backoff.reset()
                except (httpx.HTTPError, UpstreamError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                    watch.last_error = f"members: {exc}"
                    watch.last_error_at = time.time()
                    if isinstance(exc, UpstreamError) and not exc.retry_soon:
                        backoff.give_up_fast()
                    await asyncio.sleep(backoff.next_delay())
                    wake.set()
                    continue
                for member in members:
                    if member.id:
                        watch.found.add(member.id)
                        self.follow(member.id)

        self._watches.append(watch)
        self._tasks.create_task(watch.stream.run_forever(), name=f"openintent-portfolio:{portfolio_id}")
        self._tasks.create_task(discover_forever(), name=f"openintent-members:{portfolio_id}")

    def close(self) -> None:
        """Nothing is held back: every log entry read was sent when it was read."""

    def snapshot(self) -> dict[str, object]:
        streams = [f.status for f in self.followers.values()]
        streams += [w.stream.status for w in self._watches if w.stream is not None]
        errors = [f.last_error() for f in self.followers.values()] + [w.newest_error() for w in self._watches]
        last_error = max((e for e in errors if e is not None), default=None)
        last_events = [f.counters.last_event_at for f in self.followers.values() if f.counters.last_event_at]
        return {
            "name": self.name,
            "kind": self.kind,
            "url": redact_url(self.targets.base_url),
            "dialect": openintent_dialect.NAME,
            "dialect_forced": True,
            "connected": bool(streams) and all(s.connected for s in streams),
            "last_event_time": iso_time(max(last_events) if last_events else None),
            "events": sum(f.counters.log_events for f in self.followers.values()),
            "frames": sum(s.frames for s in streams),
            "reconnects": sum(s.reconnects for s in streams),
            "rejected": self.rejected,
            "last_error": last_error[1] if last_error else None,
            "last_error_time": iso_time(last_error[0] if last_error else None),
            "intents": [f.snapshot() for f in self.followers.values()],
            "agents": [w.snapshot() for w in self._watches if w.kind == "agent"],
            "portfolios": [w.snapshot() for w in self._watches if w.kind == "portfolio"],
        }
