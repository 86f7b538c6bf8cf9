"""The one shared backoff: a peer's own wait is a floor, never shortened by the jitter."""

from __future__ import annotations

import random

from otel_bridge.backoff import Backoff


def test_a_peer_hint_longer_than_the_backoff_wins() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(3))
    assert backoff.next_delay(at_least_s=7.5) == 7.5
    assert backoff.attempt == 1  # the hint does not stop the exponent from growing


def test_a_peer_hint_shorter_than_the_backoff_is_only_a_floor() -> None:
    seeded, plain = Backoff(2.0, 4.0, random.Random(3)), Backoff(2.0, 4.0, random.Random(3))
    assert seeded.next_delay(at_least_s=0.1) == plain.next_delay()
    assert 1.0 <= plain.next_delay() <= 4.0
