"""The one retry backoff: jittered exponential, never shorter than what the other side asked for.

Used wherever the sidecar waits before trying a remote peer again: an upstream
SSE or OpenIntent source reconnecting, and an OTLP export retrying a batch.
"""

from __future__ import annotations

import random


class Backoff:
    """Jittered exponential backoff: attempt ``n`` waits uniformly in ``[d/2, d]``, ``d = min(max, initial * 2**n)``.

    The jitter keeps many sidecars (or many streams of one source) from
    retrying in lockstep after a peer restarts. A peer's own hint (HTTP
    ``Retry-After``, SSE ``retry:``, gRPC ``RetryInfo``) is a floor: the wait is
    never shorter than what it asked for.
    """

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self, at_least_s: float | None = None) -> float:
        """The wait before the next attempt; ``at_least_s`` is the peer's hint, if it gave one."""
        ceiling = min(self.max_s, self.initial_s * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 62)  # 2**63 would overflow a float multiply soon after
        delay = self._rng.uniform(ceiling / 2, ceiling)
        return delay if at_least_s is None else max(delay, at_least_s)

    def give_up_fast(self) -> None:
        """The next wait is the longest: for errors that retrying soon will not fix."""
        self.attempt = 62

    def reset(self) -> None:
        self.attempt = 0
