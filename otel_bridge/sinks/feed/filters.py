"""Which events one subscriber wants: exact run, thread, agent, dialect and source; kinds by prefix or glob.

Every filter is a set decided once, when the subscriber connects; matching an
event is a few set look-ups. Each parameter may hold several comma-separated
values (or be repeated): an event matches a parameter if it matches any of its
values, and must match every parameter given.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from otel_bridge.model import EventKind

_GLOB_CHARS = frozenset("*?[")


class FilterError(ValueError):
    """A filter that can never match (an unknown kind, say). The message says which."""


class Filterable(Protocol):
    """What a filter reads from a feed event."""

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> EventKind: ...
    @property
    def run_id(self) -> str: ...
    @property
    def thread_id(self) -> str: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def dialect(self) -> str: ...
    @property
    def source(self) -> str: ...


class ItemFilter(Protocol):
    """What a subscriber is given to pick its events: a :class:`FeedFilter`, or a stateful one
    (following one run of a thread: :class:`otel_bridge.sinks.feed.runs.FollowThread`)."""

    @property
    def is_everything(self) -> bool: ...

    def matches(self, item: Filterable) -> bool: ...


def _values(raw: Iterable[str] | None) -> frozenset[str] | None:
    if raw is None:
        return None
    values = frozenset(v.strip() for item in raw for v in item.split(",") if v.strip())
    return values or None


def kinds_matching(pattern: str) -> frozenset[EventKind]:
    """``llm.*`` (a glob) or ``llm`` (the kind itself and every kind under it: ``llm.started``...)."""
    if _GLOB_CHARS.intersection(pattern):
        return frozenset(k for k in EventKind if fnmatch.fnmatchcase(k.value, pattern))
    return frozenset(k for k in EventKind if k.value == pattern or k.value.startswith(pattern + "."))


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """``None`` means "any" for that field."""

    run_ids: frozenset[str] | None = None
    agents: frozenset[str] | None = None
    kinds: frozenset[EventKind] | None = None
    dialects: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    thread_ids: frozenset[str] | None = None  # the conversation (a run without one is its own thread)

    @classmethod
    def parse(
        cls,
        *,
        run_id: Iterable[str] | None = None,
        agent: Iterable[str] | None = None,
        kind: Iterable[str] | None = None,
        dialect: Iterable[str] | None = None,
        source: Iterable[str] | None = None,
        thread_id: Iterable[str] | None = None,
    ) -> FeedFilter:
        """Build from query parameters; a kind pattern that names no kind is a :class:`FilterError`."""
        patterns = _values(kind)
        kinds: frozenset[EventKind] | None = None
        if patterns is not None:
            kinds = frozenset()
            for pattern in sorted(patterns):
                matched = kinds_matching(pattern)
                if not matched:
                    known = ", ".join(k.value for k in EventKind)
                    raise FilterError(f"kind {pattern!r} matches no event kind; kinds are: {known}")
                kinds |= matched
        return cls(
            run_ids=_values(run_id),
            agents=_values(agent),
            kinds=kinds,
            dialects=_values(dialect),
            sources=_values(source),
            thread_ids=_values(thread_id),
        )

    @property
    def is_everything(self) -> bool:
        return (
            self.run_ids is None
            and self.agents is None
            and self.kinds is None
            and self.dialects is None
            and self.sources is None
            and self.thread_ids is None
        )

    def matches(self, item: Filterable) -> bool:
        return (
            (self.kinds is None or item.kind in self.kinds)
            and (self.run_ids is None or item.run_id in self.run_ids)
            and (self.agents is None or item.agent in self.agents)
            and (self.dialects is None or item.dialect in self.dialects)
            and (self.sources is None or item.source in self.sources)
            and (self.thread_ids is None or item.thread_id in self.thread_ids)
        )
