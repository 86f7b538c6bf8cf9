"""Upstream SSE sources: the sidecar subscribes to a stream an agent already serves.

Two layers:

* :class:`SSEStream` is one reconnecting SSE subscription. It frames bytes with
  the project's own incremental :class:`~otel_bridge.dialects.framing.SSEParser`
  (comments, ``[DONE]``, CRLF and frames split across reads are all fine),
  reconnects with jittered exponential backoff, and resumes with
  ``Last-Event-ID`` when the upstream numbers its events. Which request opens
  each connection (a ``GET``, or a ``POST`` with a body and how it resumes) is its
  plan's (:mod:`.resume`). It knows nothing about dialects: it hands frames to a callback.
* :class:`UpstreamSource` is a configured ``sse`` source: one :class:`SSEStream`
  whose frames go through one :class:`StreamDecoder` (detection and rejection
  exactly as for HTTP ingest) and then to the consumer's ``submit``. The decoder and
  the plan live as long as the source, not the connection, so a reconnect continues
  the same run (and trace) with the same dialect state. An A2A source reads the
  agent's card first (:mod:`.agent_card`): the decoder names and describes the agent.

A source never raises into the sidecar: every failure becomes ``last_error``
on ``/v1/sources`` and a retry; a ``POST`` whose work is over, or cannot be resumed
without starting it again, is ``done`` and stays listed.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from otel_bridge.backoff import Backoff
from otel_bridge.config import SourceSettings, redact_url
from otel_bridge.dialects._a2a_wire import AgentCard
from otel_bridge.dialects.base import Dialect, StreamContext
from otel_bridge.dialects.framing import Frame, SSEParser
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.limits import MemoryGuard
from otel_bridge.model import AgentEvent
from otel_bridge.pipeline import EventConsumer
from otel_bridge.sources.agent_card import read_agent_card
from otel_bridge.sources.resume import A2aPlan, GetPlan, Request, ResumePlan, Stop, plan_for

log = logging.getLogger(__name__)

FrameHandler = Callable[[Sequence[Frame]], None]
ConnectHandler = Callable[[], Awaitable[None] | None]
HeadersHandler = Callable[[Mapping[str, str]], None]
Gate = Callable[[], Awaitable[None]]
"""Awaited before each read: returns at once, or when the memory budget admits work again."""


def gate_for(guard: MemoryGuard | None) -> Gate | None:
    """The memory budget's wait for a source (refusals counted under ``source``); ``None`` without a budget."""
    if guard is None:
        return None
    return lambda: guard.wait_admitted("source")


_ERROR_BODY_CHARS = 200
_SNIFF_QUIET_S = 1.0  # a stream quiet this long while its dialect is still being sniffed is decided now
# A 4xx other than these will not fix itself by retrying soon (bad key, wrong path):
# retry at the slowest pace instead of hammering the upstream.
_RETRYABLE_4XX = frozenset({408, 425, 429})


def iso_time(unix_s: float | None) -> str | None:
    if unix_s is None:
        return None
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UpstreamError(Exception):
    """The upstream answered, but not with an event stream. ``retry_soon`` says whether retrying soon can help."""

    def __init__(self, message: str, *, retry_soon: bool = True) -> None:
        super().__init__(message)
        self.retry_soon = retry_soon


@dataclass
class StreamStatus:
    """What ``/v1/sources`` shows for one SSE connection."""

    url: str  # redacted
    connected: bool = False
    frames: int = 0
    reconnects: int = 0
    last_frame_at: float | None = None  # unix seconds
    last_event_id: str | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    method: str = "GET"
    request: str = "subscribe"  # what the last request was for: subscribe, start, resubscribe <task>, join run <id>
    last_status: int | None = None  # the HTTP status of the last response
    done: bool = False  # a POST whose work is over, or that cannot be resumed: no request follows

    def error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time()

    def as_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "connected": self.connected,
            "frames": self.frames,
            "reconnects": self.reconnects,
            "last_frame_time": iso_time(self.last_frame_at),
            "last_event_id": self.last_event_id,
            "last_error": self.last_error,
            "last_error_time": iso_time(self.last_error_at),
            "method": self.method,
            "request": self.request,
            "last_status": self.last_status,
            "done": self.done,
        }


class SSEStream:
    """One SSE subscription that reconnects until its task is cancelled, or its plan says no request follows.

    The request of each connection comes from ``plan`` (:mod:`.resume`; default: the same
    ``GET`` of ``url`` forever); a ``POST`` plan ends the subscription when its work is over or
    cannot be resumed (``status.done``).

    ``on_frames`` gets every batch of complete frames as they arrive;
    ``on_headers`` gets each successful connection's response headers first (a header may
    name the stream's dialect); ``on_connect`` runs after each successful connect (the first included),
    before any frame of that connection. ``gate`` (the memory budget) is awaited before each
    chunk is taken, so a refusing budget pauses reading. A frame cut off by a dropped
    connection is discarded (as the SSE spec says); its id is not remembered,
    so ``Last-Event-ID`` asks for it again.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        headers: Mapping[str, str],
        backoff: Backoff,
        on_frames: FrameHandler,
        on_connect: ConnectHandler | None = None,
        on_headers: HeadersHandler | None = None,
        status: StreamStatus | None = None,
        last_event_id: str | None = None,
        plan: ResumePlan | None = None,
        gate: Gate | None = None,
    ) -> None:
        self._client = client
        self._gate = gate
        self._plan = plan or GetPlan(url)
        self._headers = dict(headers)
        self._backoff = backoff
        self._on_frames = on_frames
        self._on_connect = on_connect
        self._on_headers = on_headers
        self.status = status or StreamStatus(redact_url(url))
        self.last_event_id = last_event_id
        self._retry_ms: int | None = None
        self._got_frames = False

    async def run_forever(self) -> None:
        request = self._plan.first()
        first = True
        while True:
            if not first:
                self.status.reconnects += 1
            first = False
            self._got_frames = False
            clean = False
            try:
                await self._connect_once(request)
                clean = True
                self.status.error("the upstream closed the stream")
            except asyncio.CancelledError:
                raise
            except UpstreamError as exc:
                self.status.error(str(exc))
                if not exc.retry_soon:
                    self._backoff.give_up_fast()
            except httpx.HTTPError as exc:
                self.status.error(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            except Exception as exc:  # a handler bug must not end the subscription
                log.exception("upstream stream %s failed", self.status.url)
                self.status.error(f"{type(exc).__name__}: {exc}")
            finally:
                self.status.connected = False
            if self._got_frames:
                self._backoff.reset()  # the connection worked: a later drop starts the backoff afresh
            try:
                request = self._plan.after(clean=clean)
            except Stop as stop:
                self.status.done = True
                if clean:
                    self.status.last_error = None  # a POST whose run ended: nothing went wrong
                    self.status.last_error_at = None
                else:
                    self.status.error(str(stop))
                log.info("upstream stream %s: %s", self.status.url, stop)
                return
            # The upstream's own ``retry:`` is a floor on the wait.
            retry_s = self._retry_ms / 1000.0 if self._retry_ms is not None else None
            await asyncio.sleep(self._backoff.next_delay(retry_s))

    async def _connect_once(self, request: Request) -> None:
        """One connection, until the upstream closes it."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **self._headers}
        if request.body is not None:
            headers.setdefault("Content-Type", "application/json")
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        self.status.method, self.status.request = request.method, request.purpose
        async with self._client.stream(request.method, request.url, headers=headers, content=request.body) as response:
            self.status.last_status = response.status_code
            if response.status_code != 200:
                body = (await response.aread())[:_ERROR_BODY_CHARS].decode("utf-8", errors="replace")
                code = response.status_code
                retry_soon = code >= 500 or code in _RETRYABLE_4XX
                raise UpstreamError(f"HTTP {code}: {body.strip()}", retry_soon=retry_soon)
            media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "text/event-stream":
                raise UpstreamError(f"not an event stream (Content-Type {media or 'missing'!r})", retry_soon=False)
            self.status.connected = True
            if self._on_headers is not None:
                self._on_headers(response.headers)
            if self._on_connect is not None:
                pending = self._on_connect()
                if pending is not None:
                    await pending
            parser = SSEParser()
            text = codecs.getincrementaldecoder("utf-8")(errors="replace")
            async for chunk in response.aiter_bytes():
                if self._gate is not None:
                    await self._gate()  # held here, the next read waits too: the upstream is back-pressured
                frames = parser.feed(text.decode(chunk))
                if parser.retry_ms is not None:
                    self._retry_ms = parser.retry_ms
                if not frames:
                    continue
                self._got_frames = True
                self.status.frames += len(frames)
                self.status.last_frame_at = time.time()
                for frame in frames:
                    if frame.id is not None:
                        self.last_event_id = frame.id
                self.status.last_event_id = self.last_event_id
                self._plan.observe(frames)
                self._on_frames(frames)


def source_name(settings: SourceSettings) -> str:
    """The configured name, else ``host:port/path`` of the URL (no credentials)."""
    if settings.name:
        return settings.name
    parts = urlsplit(settings.url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}".rstrip("/") or settings.url


def new_client(settings: SourceSettings, read_timeout_s: float | None, base_url: str = "") -> httpx.AsyncClient:
    """An HTTP client for one source. Streams hold their connections, so the pool is unbounded."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers=settings.headers,
        timeout=httpx.Timeout(10.0, read=read_timeout_s),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
        follow_redirects=True,
    )


class UpstreamSource:
    """A configured ``sse`` source: one stream, one decoder, events to the consumer."""

    kind = "sse"

    def __init__(
        self,
        consumer: EventConsumer,
        settings: SourceSettings,
        dialect: Dialect | None,
        *,
        body: Any = None,
        clock_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
        guard: MemoryGuard | None = None,
    ) -> None:
        self.name = source_name(settings)
        self._consumer = consumer
        self._settings = settings
        self._forced = dialect
        self._gate = gate_for(guard)
        self._clock_ns = clock_ns
        # One decoder for the life of the source: reconnects continue the same
        # run (dialects without run ids group under stream_key) and dialect state.
        self._decoder = self._new_decoder()
        # One plan too: what a resumed POST asks for depends on every frame seen so far.
        self._plan = plan_for(settings.method, settings.url, body)
        self._rng = rng
        self._client: httpx.AsyncClient | None = None
        self._stream: SSEStream | None = None
        self.status = StreamStatus(redact_url(settings.url), method=settings.method)
        self.agent_card: AgentCard | None = None
        self.agent_card_error: str | None = None
        self._card_read = False
        self._closed = False
        self.events = 0
        self.rejected = 0
        self.last_event_at: float | None = None
        self.last_rejection: str | None = None
        self._last_frames_at = time.monotonic()

    def _new_decoder(self, card: AgentCard | None = None) -> StreamDecoder:
        ctx = StreamContext(
            source=self.name,
            stream_key=self.name,
            clock_ns=self._clock_ns,
            agent=card.name if card is not None else None,
            agent_description=card.description if card is not None else None,
        )
        return StreamDecoder(ctx, self._forced, on_reject=self._reject)

    async def run(self) -> None:
        """Subscribe until cancelled (the manager owns the task); a POST whose work is over then idles."""
        self._client = new_client(self._settings, self._settings.read_timeout_s)
        try:
            if isinstance(self._plan, A2aPlan) and not self._card_read:
                await self._read_agent_card(self._client)
            if self.status.done:
                await asyncio.Event().wait()  # a restarted source whose work was over: nothing to send
            backoff = Backoff(self._settings.backoff_initial_s, self._settings.backoff_max_s, self._rng)
            self._stream = SSEStream(
                self._client,
                self._settings.url,
                headers={},
                backoff=backoff,
                on_frames=self._on_frames,
                on_headers=self._on_headers,
                status=self.status,
                last_event_id=self.status.last_event_id,  # a restarted source resumes where it was
                plan=self._plan,
                gate=self._gate,
            )
            settler = asyncio.create_task(self._settle_when_quiet(), name=f"sniff-timeout:{self.name}")
            try:
                await self._stream.run_forever()
            finally:
                settler.cancel()
        finally:
            await self._client.aclose()
        self.close()  # the plan said no request follows: what the decoder holds is mapped now
        await asyncio.Event().wait()  # stay listed on /v1/sources (done) until shutdown

    async def _read_agent_card(self, client: httpx.AsyncClient) -> None:
        """An A2A agent's card names it (and describes it) on every run; a missing card is noted, not fatal."""
        self._card_read = True
        self.agent_card, self.agent_card_error = await read_agent_card(client, self._settings.url)
        if self.agent_card is not None and self._decoder.frames_seen == 0:
            self._decoder = self._new_decoder(self.agent_card)

    async def _settle_when_quiet(self) -> None:
        """A stream that goes quiet before detection has its held frames decoded anyway.

        Detection waits for up to ``SNIFF_FRAMES`` frames when none is claimed;
        an upstream that sends fewer and then nothing for ``_SNIFF_QUIET_S``
        must not have them held until shutdown.
        """
        while True:
            await asyncio.sleep(_SNIFF_QUIET_S)
            if self._decoder.sniffing and time.monotonic() - self._last_frames_at >= _SNIFF_QUIET_S:
                self._submit(self._decoder.settle())

    def _on_headers(self, headers: Mapping[str, str]) -> None:
        """A response header may name the stream's dialect (the Vercel AI SDK's does)."""
        self._submit(self._decoder.hint(headers))

    def _on_frames(self, frames: Sequence[Frame]) -> None:
        self._last_frames_at = time.monotonic()
        self._submit(self._decoder.feed(frames))

    def _submit(self, events: list[AgentEvent]) -> None:
        self._note_rejections()
        if events:
            self._consumer.submit(events)
            self.events += len(events)
            self.last_event_at = time.time()

    def _reject(self, reason: str) -> None:
        self._consumer.reject(reason)
        self.rejected += 1

    def _note_rejections(self) -> None:
        rejections = self._decoder.rejections
        if not rejections:
            return
        last = rejections[-1]
        self.last_rejection = f"frame {last.index}: {last.reason}: {last.message}"
        rejections.clear()  # counted as they happened; a long-lived stream must not keep every rejection

    def close(self) -> None:
        """End of the source: what the decoder still holds (frames still being sniffed) is mapped now. Once."""
        if self._closed:
            return
        self._closed = True
        events = self._decoder.close()
        self._note_rejections()
        if events:
            self._consumer.submit(events)
            self.events += len(events)

    def snapshot(self) -> dict[str, object]:
        body: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "url": self.status.url,
            "dialect": self._decoder.dialect,
            "dialect_forced": self._forced is not None,
            "connected": self.status.connected,
            "last_event_time": iso_time(self.last_event_at),
            "events": self.events,
            "frames": self.status.frames,
            "reconnects": self.status.reconnects,
            "rejected": self.rejected,
            "last_rejection": self.last_rejection,
            "last_event_id": self.status.last_event_id,
            "last_error": self.status.last_error,
            "last_error_time": iso_time(self.status.last_error_at),
            "method": self.status.method,
            "request": self.status.request,
            "last_status": self.status.last_status,
            "done": self.status.done,
        }
        if self.agent_card is not None or self.agent_card_error is not None:
            card = self.agent_card
            body["agent_card"] = {
                "name": card.name if card is not None else None,
                "description": card.description if card is not None else None,
                "error": self.agent_card_error,
            }
        return body
