"""The table of in-flight runs and spans, keyed by the producers' ids.

A :class:`Run` (one agent run) holds its root span and its open child spans in
start order. A span's key (``chat:<call id>``, ``step:<name>``, ``run``...) is
derived from the event that opens or ends it, and its span id from the key
(:mod:`.ids`), so an end finds its start and a rebuilt span keeps its id. This
module holds the records and the lookups over them; :mod:`.lifecycle` decides
what each event does to them and :mod:`.closing` ends them.

Memory (an open span should cost well under 1 KB, bench/bench_open_spans.py):
the records use slots, and every container that most spans or runs never need
(span events, links, the reused-key counts, stream pairings, held chat spans) is
``None`` until first used. A span is found by its *lookup key* (``chat:<call
id>``: only one span per producer id is open at once); the key its id was
derived from differs only for a reused id (``chat:<call id>#1``), and is not
kept once the id is. A run remembers how often each producer id was used only
once its span has ended, and at most :data:`MAX_KEY_USES` of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from otel_bridge import semconv as sc
from otel_bridge.mapping.ids import span_id_for
from otel_bridge.mapping.span_names import span_kind, span_name
from otel_bridge.model import (
    AgentEvent,
    Attributes,
    EventKind,
    SpanEventRecord,
    SpanKind,
    SpanLinkRecord,
    StatusCode,
    TokenUsage,
)

OP_LLM = sc.OP_CHAT
OP_TOOL = sc.OP_EXECUTE_TOOL
OP_AGENT = sc.OP_INVOKE_AGENT
OP_STEP = sc.SPAN_STEP
OP_REQUEST = sc.SPAN_REQUEST

START_KINDS = {
    EventKind.LLM_STARTED: OP_LLM,
    EventKind.TOOL_STARTED: OP_TOOL,
    EventKind.AGENT_STARTED: OP_AGENT,
    EventKind.STEP_STARTED: OP_STEP,
    EventKind.REQUEST_STARTED: OP_REQUEST,
}
END_KINDS = {
    EventKind.LLM_COMPLETED: OP_LLM,
    EventKind.LLM_FAILED: OP_LLM,
    EventKind.TOOL_COMPLETED: OP_TOOL,
    EventKind.TOOL_FAILED: OP_TOOL,
    EventKind.AGENT_FINISHED: OP_AGENT,
    EventKind.AGENT_FAILED: OP_AGENT,
    EventKind.STEP_FINISHED: OP_STEP,
    EventKind.REQUEST_FINISHED: OP_REQUEST,
    EventKind.REQUEST_FAILED: OP_REQUEST,
}
FAILURE_KINDS = frozenset(
    {
        EventKind.LLM_FAILED,
        EventKind.TOOL_FAILED,
        EventKind.AGENT_FAILED,
        EventKind.RUN_FAILED,
        EventKind.REQUEST_FAILED,
    }
)
# LLM, tool and request spans are leaves: new spans nest under the innermost agent or step.
CONTAINER_OPS = frozenset({OP_AGENT, OP_STEP})
ROOT_KEY = "run"
MAX_KEY_USES = 4096
"""Ended producer ids a run remembers (to give a reused id a new span id: ``chat:c1#1``). A run that ends
more distinct calls than this still never reuses a span id: a start whose id it can no longer check
gets a key made unique by the run's sequence (``chat:c1~57``), only not one a restart would rebuild."""


@dataclass(eq=False, slots=True)
class Span:
    """An open span: what its events said so far, and the bookkeeping its end needs."""

    key: str
    op: str
    span_id: bytes
    parent_span_id: bytes | None
    start_ns: int
    last_ns: int
    last_active: float
    attributes: Attributes = field(default_factory=dict)
    events: list[SpanEventRecord] | None = None  # None until the first one: most spans have none
    links: list[SpanLinkRecord] | None = None
    dropped_events: int = 0
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    first_chunk_ns: int | None = None
    chunk_count: int = 0
    streaming: bool = False
    inferred: bool = False
    stream_paired: bool = False
    parent: Span | None = None  # the open span it nests under: a child's end extends it
    counted: bool = False  # its key is a producer id whose use the run counts when it ends (see span_key)

    def name(self) -> str:
        return span_name(self.op, self.attributes)

    def kind(self) -> SpanKind:
        return span_kind(self.op, self.attributes)

    def touch(self, event: AgentEvent) -> None:
        """The span has seen ``event``: it lasts at least until then."""
        if event.timestamp_ns > self.last_ns:
            self.last_ns = event.timestamp_ns

    def add_event(self, record: SpanEventRecord) -> None:
        if self.events is None:
            self.events = [record]
        else:
            self.events.append(record)

    def event_count(self) -> int:
        return 0 if self.events is None else len(self.events)


@dataclass(eq=False, slots=True)
class Run:
    """An open run: its root span, its open spans in start order and what their keys need."""

    run_id: str
    trace_id: bytes
    root: Span
    open: dict[str, Span] = field(default_factory=dict)  # by lookup key; insertion order = start order
    key_uses: dict[str, int] | None = None  # ended producer ids -> times used (at most MAX_KEY_USES)
    seq: int = 0
    stream_spans: dict[str, str] | None = None  # stream id -> span lookup key
    end_ns: int | None = None
    ending_deadline: float | None = None
    usage: TokenUsage | None = None
    cost: float | None = None
    opened_at: float = 0.0  # the mapper's clock when the run opened
    marked: bool = False  # its "in progress" marker span was emitted
    sweep_due: float | None = None  # when its entry in the timeout heap falls due (None: it has none)
    # Ended chat spans that named no model, with their ends: emitted when the run ends, by when
    # the run may have named one (AG-UI names it only in RUN_FINISHED's usage).
    held: list[tuple[Span, int]] | None = None

    def child_span_id(self, key: str) -> bytes:
        """The id of the child span keyed ``key``. A continuation (a finished run's late events) keys its
        children under its own root, so they never reuse the ids of the finished run's spans."""
        return span_id_for(self.trace_id, key if self.root.key == ROOT_KEY else f"{self.root.key}/{key}")

    def count_use(self, span: Span) -> None:
        """``span`` (keyed by a producer id) has ended: a later start of the same id gets a new span id."""
        uses = self.key_uses
        if uses is None:
            self.key_uses = {span.key: 1}
        elif span.key in uses:
            uses[span.key] += 1
        elif len(uses) < MAX_KEY_USES:
            uses[span.key] = 1

    def hold(self, span: Span, end_ns: int) -> None:
        if self.held is None:
            self.held = [(span, end_ns)]
        else:
            self.held.append((span, end_ns))


class Finished(NamedTuple):
    """A finished run, remembered so that a late event joins its trace."""

    trace_id: bytes
    root_span_id: bytes
    agent: str | None
    continuations: int
    root_key: str = ROOT_KEY  # its first root's key: a continuation's key is derived from it


def ancestors(run: Run, span: Span) -> Iterator[Attributes]:
    """The attributes of the spans ``span`` nests under, innermost first, ending with the run's root."""
    parent = span.parent
    while parent is not None:
        yield parent.attributes
        parent = parent.parent
    yield run.root.attributes


class SpanKey(NamedTuple):
    """Which span an event starts or ends: how to find it, and what its span id is derived from."""

    lookup: str  # finds the open span (``chat:c1``): one span per producer id is open at once
    ident: str  # its span id is derived from this (``chat:c1#1`` for an id used again)
    counted: bool  # a use of a producer id: the run counts it when the span ends


def span_key(run: Run, op: str, event: AgentEvent, *, starting: bool) -> SpanKey:
    """The key of the span ``event`` starts or ends.

    A producer id used again after its span ended gets ``#n`` (``chat:c1#1``); one the run can no
    longer check (past :data:`MAX_KEY_USES`) a key unique within the run (``chat:c1~57``).
    """
    new = tuple.__new__  # SpanKey's own __new__ is a Python function (see .lifecycle)
    ident = event.call_id if op != OP_STEP else (event.name or event.call_id)
    if ident is None:
        if not starting:
            # An end with no id closes the innermost open span of its operation.
            for span in reversed(run.open.values()):
                if span.op == op:
                    return new(SpanKey, (span.key, span.key, False))
        run.seq += 1
        key = f"{op}#{run.seq}"
        return new(SpanKey, (key, key, False))
    base = f"{op}:{ident}"
    if base in run.open:
        # Starting: the same id started twice while open (a retry or a re-sent event): the duplicate
        # start becomes a span event of the first. Ending: the open span.
        return new(SpanKey, (base, base, False))
    uses = run.key_uses.get(base) if run.key_uses is not None else None
    if uses is None:
        if run.key_uses is not None and len(run.key_uses) >= MAX_KEY_USES:
            run.seq += 1
            return new(SpanKey, (base, f"{base}~{run.seq}", False))
        return new(SpanKey, (base, base, True))
    if starting:
        return new(SpanKey, (base, f"{base}#{uses}", True))
    # A completion whose span already ended (a re-sent end): the latest span of that id.
    return new(SpanKey, (base, base if uses <= 1 else f"{base}#{uses - 1}", False))


def ended_span(run: Run, op: str, event: AgentEvent) -> Span | None:
    """The open span ``event`` ends, taken out of the run's table; ``None`` when none is open.

    The span :func:`span_key` names for an end, found without building its key (every span end
    finds one): when none is open, that key is the one a span rebuilt from the end is given.
    """
    ident = event.call_id if op != OP_STEP else (event.name or event.call_id)
    if ident is not None:
        return run.open.pop(f"{op}:{ident}", None)
    for span in reversed(run.open.values()):  # an end with no id: the innermost open span of its operation
        if span.op == op:
            return run.open.pop(span.key)
    return None


def call_span(run: Run, call_id: str | None) -> Span | None:
    """The open tool or request span of call ``call_id``: where an event about that call is recorded."""
    if call_id is None:
        return None
    return run.open.get(f"{OP_TOOL}:{call_id}") or run.open.get(f"{OP_REQUEST}:{call_id}")


def innermost(run: Run) -> Span:
    """The latest open span (the root when none is open): where a non-span event is recorded."""
    if run.open:
        return next(reversed(run.open.values()))
    return run.root


def container(run: Run) -> Span:
    """The innermost open agent or step span (else the root): the parent of a new span."""
    for span in reversed(run.open.values()):
        if span.op in CONTAINER_OPS:
            return span
    return run.root


def llm_span_for(run: Run, call_id: str | None, *, fallback: bool = True) -> Span | None:
    """The open LLM span a chunk or stream event belongs to: by stream id, call id, else the latest."""
    if call_id is not None:
        key = run.stream_spans.get(call_id) if run.stream_spans is not None else None
        if key is not None:
            return run.open.get(key)
        span = run.open.get(f"{OP_LLM}:{call_id}")
        if span is not None:
            return span
    if not fallback:
        return None
    for span in reversed(run.open.values()):
        if span.op == OP_LLM:
            return span
    return None
