"""Shared fixtures: a real rotel collector, the real bridge process, fixed clocks."""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.rotel import Rotel
from tests.support.server import BridgeProcess


@pytest.fixture(autouse=True, scope="session")
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes to the real state folder (the durable export queue's default home)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture
def rotel(tmp_path: pathlib.Path) -> Iterator[Rotel]:
    """A real rotel collector forwarding to an in-process receiver (traces only)."""
    collector = Rotel(tmp_path / "rotel.log")
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture
def rotel_with_metrics(tmp_path: pathlib.Path) -> Iterator[Rotel]:
    """A real rotel collector that also receives metrics."""
    collector = Rotel(tmp_path / "rotel-metrics.log", metrics=True)
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture
def bridge_server(tmp_path: pathlib.Path) -> Iterator[Callable[..., BridgeProcess]]:
    """Factory: ``bridge_server(env={...}, args=[...])`` starts the real ``otel-bridge serve``."""
    started: list[BridgeProcess] = []
    counter = itertools.count()

    def start(**kwargs: Any) -> BridgeProcess:
        proc = BridgeProcess(tmp_path / f"bridge-{next(counter)}.log", **kwargs)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


class FakeClock:
    """A deterministic clock: ``time_ns()`` advances 1 ms per call; ``monotonic()`` is set by hand."""

    def __init__(self, start_ns: int = 1_800_000_000_000_000_000) -> None:
        self._ns = start_ns
        self.now = 0.0

    def time_ns(self) -> int:
        self._ns += 1_000_000
        return self._ns

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
