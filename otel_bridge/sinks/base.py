"""The one narrow interface between the mapper and everything downstream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from otel_bridge.model import SpanRecord


class SpanSink(Protocol):
    """Takes finished spans. Must not block and must not raise into the caller."""

    def consume(self, spans: Sequence[SpanRecord]) -> None: ...


class Lifecycle(Protocol):
    """A component with background work. ``shutdown`` is safe even if ``start`` never ran."""

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


class ListSink:
    """In-memory sink for tests and for ``replay``: keeps every span it is given."""

    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self.spans.extend(spans)


class FanoutSink:
    """Gives the same spans to several sinks; one failing sink does not starve the others."""

    def __init__(self, sinks: Sequence[SpanSink]) -> None:
        self._sinks = tuple(sinks)

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        for sink in self._sinks:
            sink.consume(spans)
