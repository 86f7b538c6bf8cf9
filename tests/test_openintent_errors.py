"""The OpenIntent source reports the newest of its streams' and event logs' last errors."""

from __future__ import annotations

from otel_bridge.sources.openintent import latest_error


def test_the_newest_set_error_wins_and_unset_ones_are_skipped() -> None:
    assert latest_error() is None
    assert latest_error((None, None), (None, "never timed"), (5.0, None)) is None
    assert latest_error((1.0, "old"), (None, None), (2.0, "new")) == (2.0, "new")
    assert latest_error((3.0, "stream"), (2.0, "log")) == (3.0, "stream")
