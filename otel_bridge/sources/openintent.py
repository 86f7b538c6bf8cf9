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

Bad entries: one nested deeper than the JSON decoder's limit is rejected as
``too_deep`` (counted once, shown as the intent's last error) and the rest of
its page is still read; an entry without an id is rejected as
``openintent_entry_without_id``. With a memory budget, every stream and every
log read waits while the budget refuses work (:mod:`otel_bridge.limits`).

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
from otel_bridge.config import SourceSettings, redact_url
from otel_bridge.dialects import openintent as openintent_dialect
from otel_bridge.dialects.framing import Frame
from otel_bridge.dialects.stream import TOO_DEEP
from otel_bridge.limits import MemoryGuard
from otel_bridge.model import AgentEvent
from otel_bridge.pipeline import EventConsumer
from otel_bridge.sources.openintent_intent import (
    API,
    IntentFollower,
    get_json,
    latest_error,
)
from otel_bridge.sources.upstream import (
    Gate,
    SSEStream,
    StreamStatus,
    UpstreamError,
    gate_for,
    iso_time,
    new_client,
    source_name,
)

log = logging.getLogger(__name__)

_SUBSCRIBE_URL = re.compile(r"^(?P<base>.*?)/api/v1/subscribe/(?P<what>intents|agents|portfolios)/(?P<id>[^/?#]+)/?$")

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
        if base.endswith(API):
            base = base[: -len(API)]
    else:
        base = match["base"]
        {"intents": intents, "agents": agents, "portfolios": portfolios}[match["what"]].append(match["id"])

    def unique(ids: list[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ids))

    return Targets(base, unique(intents), unique(agents), unique(portfolios))


class _Assignment(msgspec.Struct):
    intent_id: str | None = None


class _Member(msgspec.Struct):
    id: str | None = None


_decode_assignment = msgspec.json.Decoder(_Assignment).decode
_decode_members = msgspec.json.Decoder(list[_Member]).decode


def _members(body: bytes) -> list[_Member]:
    try:
        return _decode_members(body)
    except RecursionError:  # the decoder's depth limit: a clear error like every other parser's
        raise msgspec.DecodeError(
            "JSON nested too deeply (the limit is about 1,000 levels of arrays and objects)"
        ) from None


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
        guard: MemoryGuard | None = None,
    ) -> None:
        self.name = source_name(settings)
        self.settings = settings
        self.gate: Gate | None = gate_for(guard)  # awaited before each read: the memory budget
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
                except RecursionError:  # the decoder's depth limit: the same reason as every other parser
                    self.reject(TOO_DEEP)
                    continue
                if assignment.intent_id:
                    watch.found.add(assignment.intent_id)
                    self.follow(assignment.intent_id)

        path = f"{API}/subscribe/agents/{quote(agent_id, safe='')}"
        watch.stream = SSEStream(
            self.client,
            path,
            headers={},
            backoff=self.backoff(),
            on_frames=on_frames,
            status=StreamStatus(redact_url(self.targets.base_url + path)),
            gate=self.gate,
        )
        self._watches.append(watch)
        self._tasks.create_task(watch.stream.run_forever(), name=f"openintent-agent:{agent_id}")

    def _watch_portfolio(self, portfolio_id: str) -> None:
        assert self._tasks is not None
        watch = _Watch("portfolio", portfolio_id)
        wake = asyncio.Event()
        wake.set()
        path = f"{API}/subscribe/portfolios/{quote(portfolio_id, safe='')}"
        members_path = f"{API}/portfolios/{quote(portfolio_id, safe='')}/intents"
        watch.stream = SSEStream(
            self.client,
            path,
            headers={},
            backoff=self.backoff(),
            on_frames=lambda _frames: wake.set(),  # membership frames carry no intent id: re-read the members
            on_connect=wake.set,
            status=StreamStatus(redact_url(self.targets.base_url + path)),
            gate=self.gate,
        )

        async def discover_forever() -> None:
            backoff = self.backoff()
            while True:
                await wait_event(wake, self.settings.reconcile_interval_s)
                wake.clear()
                try:
                    members = _members(await get_json(self.client, members_path))
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
