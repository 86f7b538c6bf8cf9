"""A stand-in for an ASGI server's ``send`` and ``receive``, for the feed's SSE response.

A frozen or slow client (a ``send`` that does not return, as uvicorn's does while its write
buffer is full) cannot be made on a real socket on cue, and the order of the messages the
response sends is what the tests check; so the tests that need one use this. Like uvicorn's,
its ``send`` returns without suspending unless it is told to hold or freeze.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from otel_bridge.config import FeedSettings
from otel_bridge.model import AgentEvent, EventKind, Placement
from otel_bridge.sinks.feed import Feed

TRACE, SPAN = bytes(range(16)), bytes([1] * 8)
SCOPE: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v1/stream", "headers": []}


def feed(**settings: object) -> Feed:
    return Feed(msgspec.convert(settings, FeedSettings), first_seq=1)


def publish(f: Feed, n: int, start: int = 0, kind: EventKind = EventKind.PROGRESS, run_id: str = "r") -> None:
    events = [
        msgspec.convert(
            {
                "kind": kind,
                "run_id": run_id,
                "timestamp_ns": 1,
                "dialect": "generic",
                "original_type": kind.value,
                "name": f"e{start + i}",
            },
            AgentEvent,
        )
        for i in range(n)
    ]
    f.observe(events, [Placement(TRACE, SPAN, SPAN) for _ in events])


class Client:
    """Records what the response sends.

    ``freeze_at``: the body message whose send never returns; ``hold_at``: the one whose send waits
    for :attr:`release`; ``fail_at``: the one whose send raises ``fail_with``. Body messages count from 1
    (the first is the ``retry:`` hint)."""

    def __init__(
        self,
        freeze_at: int | None = None,
        hold_at: int | None = None,
        fail_at: int | None = None,
        fail_with: BaseException | None = None,
    ) -> None:
        self.messages: list[dict[str, Any]] = []
        self.freeze_at, self.hold_at, self.fail_at, self.fail_with = freeze_at, hold_at, fail_at, fail_with
        self.frozen = asyncio.Event()
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.gone = asyncio.Event()
        self.bodies = 0
        self.wrote = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            self.bodies += 1
            if self.bodies == self.freeze_at:
                self.frozen.set()
                await asyncio.Event().wait()  # the socket's buffer never drains
            if self.bodies == self.hold_at:
                self.held.set()
                await self.release.wait()  # a slow reader: the buffer drains later
            if self.bodies == self.fail_at:
                assert self.fail_with is not None
                raise self.fail_with
        self.messages.append(message)
        self.wrote.set()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")

    @property
    def ids(self) -> list[int]:
        """The ``id:`` of every frame received, in order."""
        return [int(line[4:]) for line in self.body.split(b"\n") if line.startswith(b"id: ")]


def whole_frames(body: bytes) -> list[bytes]:
    """The frames of a body that must end on a frame boundary."""
    assert body.endswith(b"\n\n"), body[-80:]
    return body[:-2].split(b"\n\n")
