"""The table of in-flight runs and spans, keyed by the producers' ids.

A :class:`Run` (one agent run) holds its root span and its open child spans in
start order. A span's key (``chat:<call id>``, ``step:<name>``, ``run``...) is
derived from the event that opens or ends it, and its span id from the key
(:mod:`.ids`), so an end finds its start and a rebuilt span keeps its id. This
module holds the records and the lookups over them; :mod:`.lifecycle` decides
what each event does to them and :mod:`.closing` ends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from otel_bridge import semconv as sc
from otel_bridge.mapping import attributes as attrs
from otel_bridge.mapping.ids import span_id_for
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
    events: list[SpanEventRecord] = field(default_factory=list)
    links: list[SpanLinkRecord] = field(default_factory=list)
    dropped_events: int = 0
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    first_chunk_ns: int | None = None
    chunk_count: int = 0
    streaming: bool = False
    inferred: bool = False
    stream_paired: bool = False
    parent: Span | None = None  # the open span it nests under: a child's end extends it

    def name(self) -> str:
        return attrs.span_name(self.op, self.attributes)

    def kind(self) -> SpanKind:
        return attrs.span_kind(self.op, self.attributes)

    def touch(self, event: AgentEvent) -> None:
        """The span has seen ``event``: it lasts at least until then."""
        self.last_ns = max(self.last_ns, event.timestamp_ns)


@dataclass(eq=False, slots=True)
class Run:
    """An open run: its root span, its open spans in start order and what their keys need."""

    run_id: str
    trace_id: bytes
    root: Span
    open: dict[str, Span] = field(default_factory=dict)  # insertion order = start order
    key_uses: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    stream_spans: dict[str, str] = field(default_factory=dict)  # stream id -> span key
    end_ns: int | None = None
    ending_deadline: float | None = None
    usage: TokenUsage | None = None
    cost: float | None = None
    seen_event_ids: set[str] = field(default_factory=set)
    created_by: AgentEvent | None = None  # the event that opened the run
    opened_at: float = 0.0  # the mapper's clock when the run opened
    marked: bool = False  # its "in progress" marker span was emitted
    # Ended chat spans that named no model, with their ends: emitted when the run ends, by when
    # the run may have named one (AG-UI names it only in RUN_FINISHED's usage).
    held: list[tuple[Span, int]] = field(default_factory=list)

    def child_span_id(self, key: str) -> bytes:
        """The id of the child span keyed ``key``. A continuation (a finished run's late events) keys its
        children under its own root, so they never reuse the ids of the finished run's spans."""
        return span_id_for(self.trace_id, key if self.root.key == "run" else f"{self.root.key}/{key}")


@dataclass(frozen=True)
class Finished:
    """A finished run, remembered so that a late event joins its trace."""

    trace_id: bytes
    root_span_id: bytes
    agent: str | None
    continuations: int


def ancestors(run: Run, span: Span) -> Iterator[Attributes]:
    """The attributes of the spans ``span`` nests under, innermost first, ending with the run's root."""
    parent = span.parent
    while parent is not None:
        yield parent.attributes
        parent = parent.parent
    yield run.root.attributes


def span_key(run: Run, op: str, event: AgentEvent, *, starting: bool) -> str:
    """The key of the span ``event`` starts or ends (the same key for both, ``#n`` for a reused id)."""
    ident = event.call_id if op != OP_STEP else (event.name or event.call_id)
    if ident is None:
        if starting:
            run.seq += 1
            return f"{op}#{run.seq}"
        # An end with no id closes the innermost open span of its operation.
        for span in reversed(run.open.values()):
            if span.op == op:
                return span.key
        run.seq += 1
        return f"{op}#{run.seq}"
    base = f"{op}:{ident}"
    uses = run.key_uses.get(base, 0)
    if starting and base in run.open:
        # The same id started twice while open: a retry or a re-sent event.
        # Keep the first span; the duplicate start becomes a span event.
        return base
    if starting:
        run.key_uses[base] = uses + 1
        return base if uses == 0 else f"{base}#{uses}"
    return base if uses <= 1 else f"{base}#{uses - 1}"


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
        key = run.stream_spans.get(call_id)
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
