"""An A2A stream's clock: only status updates carry the producer's time; everything else is placed on it.

A task snapshot, a message and an artifact carry no time. Their events are
placed on the producer's clock by the last offset seen (producer time minus
arrival time), and the events of the first frames, before any producer time, are
held (up to :data:`MAX_HELD_FRAMES`) so that a run does not start on the arrival
clock and go on on the producer's.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from otel_bridge.dialects.base import parse_timestamp
from otel_bridge.model import AgentEvent

MAX_HELD_FRAMES = 4
"""Frames held for a producer time at most: a stream whose frames carry none is mapped on arrival times."""


class HoldingClock:
    """Times for one stream's frames; holds the first frames' events until the producer's clock is known.

    Not :class:`otel_bridge.dialects.base.ProducerClock`, which places every event at once: A2A's
    first frames usually carry no producer time, so this one holds them.
    """

    def __init__(self, arrival_ns: Callable[[], int]) -> None:
        self._arrival_ns = arrival_ns
        self.previous_ns: int | None = None  # the time of the frame before the current one
        self._latest_ns: int | None = None  # the time of the current frame
        self._offset_ns: int | None = None  # producer clock minus arrival clock
        self._held: list[AgentEvent] = []  # events of the frames before the first producer time
        self._held_frames = 0

    def time(self, stamp: object) -> tuple[int, bool]:
        """``(time, from the producer)`` of the current frame, whose own time is ``stamp`` (or none)."""
        arrival = self._arrival_ns()
        ts = parse_timestamp(stamp)
        if ts is not None:
            if self._offset_ns is None and self._latest_ns is not None:
                self._latest_ns += ts - arrival  # the held frame before: now on the producer's clock
            self._offset_ns = ts - arrival
        at = (ts, True) if ts is not None else (arrival + (self._offset_ns or 0), False)
        self.previous_ns, self._latest_ns = self._latest_ns, at[0]
        return at

    def release(self, events: list[AgentEvent]) -> list[AgentEvent]:
        """One frame's events, held while no producer time is known, else with those held before them."""
        if self._offset_ns is None and self._held_frames < MAX_HELD_FRAMES:
            self._held_frames += 1
            self._held.extend(events)
            return []
        if not self._held:
            return events
        offset = self._offset_ns or 0
        held, self._held = self._held, []
        return [
            msgspec.structs.replace(e, timestamp_ns=e.timestamp_ns + offset) if not e.timestamp_from_source else e
            for e in held
        ] + events

    def flush(self) -> list[AgentEvent]:
        """What is still held at the end of the stream."""
        held, self._held = self._held, []
        return held
