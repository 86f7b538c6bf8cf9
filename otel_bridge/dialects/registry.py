"""Every dialect by name, and detection from the first frames of a stream.

A response header that names a protocol (:data:`HEADER_DIALECTS`, where a
source sees the headers) settles detection before the first frame. Otherwise
detection sniffs up to :data:`SNIFF_FRAMES` frames and asks each dialect, in
the order below (most specific first), whether a frame could only be its own.
A stream that matches nothing is decoded by the ``generic`` dialect: kept as
custom events, never rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otel_bridge.dialects import (
    a2a,
    adk,
    ag_ui,
    agent_event_stream,
    agentlang,
    anthropic,
    generic,
    langgraph,
    locus,
    locus_agentserver,
    mcp,
    openai_chat,
    openai_responses,
    openintent,
    vercel_ai,
)
from otel_bridge.dialects.base import Dialect
from otel_bridge.dialects.framing import Frame

SNIFF_FRAMES = 8

# Order matters: the generic dialect's canonical form is checked first because
# its `kind` field is unambiguous; it is also the fallback.
DIALECTS: dict[str, Dialect] = {
    generic.NAME: generic.DIALECT,
    openintent.NAME: openintent.DIALECT,
    # Each sniff below claims only frames no other dialect produces (tests/test_detect.py
    # checks every capture against every dialect); the JSON-keyed ones come first.
    locus.NAME: locus.DIALECT,
    openai_chat.NAME: openai_chat.DIALECT,
    openai_responses.NAME: openai_responses.DIALECT,
    anthropic.NAME: anthropic.DIALECT,
    ag_ui.NAME: ag_ui.DIALECT,
    locus_agentserver.NAME: locus_agentserver.DIALECT,
    agentlang.NAME: agentlang.DIALECT,
    agent_event_stream.NAME: agent_event_stream.DIALECT,
    a2a.NAME: a2a.DIALECT,
    adk.NAME: adk.DIALECT,
    vercel_ai.NAME: vercel_ai.DIALECT,
    langgraph.NAME: langgraph.DIALECT,
    mcp.NAME: mcp.DIALECT,
}
FALLBACK = generic.NAME

# Response headers that name the protocol of the stream they come with (lowercase names).
HEADER_DIALECTS: dict[str, str] = {
    vercel_ai.HEADER: vercel_ai.NAME,
}


class UnknownDialectError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown dialect {name!r}; known: {', '.join(sorted(DIALECTS))}")
        self.name = name


def get(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise UnknownDialectError(name) from None


def from_headers(headers: Mapping[str, str]) -> Dialect | None:
    """The dialect a stream's response headers name, if one does (before any frame is seen)."""
    for name in headers:
        dialect = HEADER_DIALECTS.get(name.lower())
        if dialect is not None:
            return DIALECTS[dialect]
    return None


def _sniffs(dialect: Dialect, frame: Frame, obj: Any) -> bool:
    # A sniff reads foreign JSON (`{"kind": ["x"]}` is unhashable, for one): one that
    # raises on a frame has not recognised it.
    try:
        return bool(dialect.sniff(frame, obj))
    except Exception:
        return False


def claims(frame: Frame, obj: Any) -> bool:
    """True if some dialect recognises this frame as its own (detection can stop sniffing)."""
    return any(_sniffs(d, frame, obj) for d in DIALECTS.values())


def detect(frames: Sequence[tuple[Frame, Any]]) -> Dialect:
    """The first dialect that claims one of the first frames, else the fallback."""
    for frame, obj in frames[:SNIFF_FRAMES]:
        for dialect in DIALECTS.values():
            if _sniffs(dialect, frame, obj):
                return dialect
    return DIALECTS[FALLBACK]
