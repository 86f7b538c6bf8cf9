"""The canonical, typed, immutable records that flow between stages.

Raw dicts stop at the dialect: everything past :mod:`otel_bridge.dialects` sees
only :class:`AgentEvent`, and everything past :mod:`otel_bridge.mapping` sees
only :class:`SpanRecord`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import NamedTuple, TypeAlias

import msgspec


class EventKind(StrEnum):
    """What happened, independent of the dialect that said it."""

    RUN_STARTED = "run.started"
    RUN_FINISHED = "run.finished"
    RUN_FAILED = "run.failed"
    AGENT_STARTED = "agent.started"  # a sub-agent or specialist inside a run
    AGENT_FINISHED = "agent.finished"
    AGENT_FAILED = "agent.failed"
    STEP_STARTED = "step.started"
    STEP_FINISHED = "step.finished"
    LLM_STARTED = "llm.started"
    LLM_CHUNK = "llm.chunk"
    LLM_COMPLETED = "llm.completed"
    LLM_FAILED = "llm.failed"
    STREAM_STARTED = "llm.stream.started"  # a producer's own stream bookkeeping
    STREAM_ENDED = "llm.stream.ended"
    TOOL_STARTED = "tool.started"
    TOOL_COMPLETED = "tool.completed"
    TOOL_FAILED = "tool.failed"
    # A protocol request the producer served (an MCP call): a leaf span named by its method, not a GenAI operation.
    REQUEST_STARTED = "request.started"
    REQUEST_FINISHED = "request.finished"
    REQUEST_FAILED = "request.failed"
    # The model asked for a tool call (raw LLM streams): recorded on the chat span, not a span of its own.
    TOOL_REQUESTED = "tool.requested"
    THINKING = "thinking"
    STATE_CHANGED = "state.changed"
    STATUS_CHANGED = "status.changed"
    PROGRESS = "progress"
    MESSAGE = "message"
    ERROR = "error"
    CUSTOM = "custom"  # anything else: kept, never rejected


TERMINAL_RUN_KINDS = frozenset({EventKind.RUN_FINISHED, EventKind.RUN_FAILED})


# gc=False: the model's structs hold only scalars, strings and other such structs,
# so they can never be part of a reference cycle; leaving them untracked keeps the
# cyclic GC from walking every event and span (it was a third of ingest time).
class TokenUsage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Token counts of one LLM call. ``None`` is absence; ``0`` is data."""

    input: int | None = None  # includes cached input, per the conventions
    output: int | None = None  # includes reasoning output
    cache_read: int | None = None
    cache_creation: int | None = None
    reasoning: int | None = None

    def is_empty(self) -> bool:
        return (
            self.input is None
            and self.output is None
            and self.cache_read is None
            and self.cache_creation is None
            and self.reasoning is None
        )

    def plus(self, other: TokenUsage | None) -> TokenUsage:
        """Field-wise sum that keeps ``None`` only where both sides are ``None``."""
        if other is None:
            return self
        return TokenUsage(
            input=_add(self.input, other.input),
            output=_add(self.output, other.output),
            cache_read=_add(self.cache_read, other.cache_read),
            cache_creation=_add(self.cache_creation, other.cache_creation),
            reasoning=_add(self.reasoning, other.reasoning),
        )


def _add(a: int | None, b: int | None) -> int | None:
    """``a + b``, where ``None`` (absent) adds nothing; ``None`` only when both are."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class AgentEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One thing an agent said it did, in canonical form.

    ``timestamp_ns`` is the event's own time when the dialect carries one
    (``timestamp_from_source``), else the time it arrived.
    """

    kind: EventKind
    run_id: str
    timestamp_ns: int
    dialect: str
    original_type: str
    timestamp_from_source: bool = True
    inferred: bool = False  # synthesised by the dialect, not on the wire
    source: str = "http"
    event_id: str | None = None  # the producer's own event id, for dedup
    parent_run_id: str | None = None
    agent: str | None = None
    agent_description: str | None = None  # what the agent says it is (an A2A agent card)
    provider: str | None = None
    model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    tool_name: str | None = None
    tool_type: str | None = None
    call_id: str | None = None  # LLM request id or tool call id
    parent_call_id: str | None = None  # the LLM call that requested this tool; for a sub-agent, the tool running it
    name: str | None = None  # step, sub-agent or custom-event name
    status: str | None = None
    usage: TokenUsage | None = None
    finish_reasons: tuple[str, ...] | None = None
    stream: bool | None = None
    duration_ms: float | None = None
    error: str | None = None
    error_type: str | None = None
    cost_usd: float | None = None  # cost the producer itself reported
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    conversation_id: str | None = None
    traceparent: str | None = None
    text: str | None = None  # message/thinking/response content (sensitive)
    arguments: str | None = None  # tool arguments as JSON text (sensitive)
    result: str | None = None  # tool result as JSON text (sensitive)
    payload: msgspec.Raw | None = None  # the original JSON, untouched
    # Protocol attributes the dialect read (names from semconv.PROTOCOL_ATTRIBUTES; others are ignored),
    # for the span the event opens or ends, or the span event it becomes.
    attributes: tuple[tuple[str, str | int | bool], ...] | None = None


class SpanKind(IntEnum):
    """OTLP ``Span.SpanKind`` numbers."""

    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(IntEnum):
    """OTLP ``Status.StatusCode`` numbers."""

    UNSET = 0
    OK = 1
    ERROR = 2


# One array type (not one per element type): msgspec can then decode span records
# sent between processes, and OTLP arrays may hold any scalar anyway.
AttributeValue: TypeAlias = str | bool | int | float | tuple[str | bool | int | float, ...]
Attributes: TypeAlias = dict[str, AttributeValue]


class SpanEventRecord(msgspec.Struct, frozen=True, gc=False):
    name: str
    time_ns: int
    attributes: Attributes


class SpanLinkRecord(msgspec.Struct, frozen=True, gc=False):
    trace_id: bytes
    span_id: bytes
    attributes: Attributes


class SpanRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A finished span, ready to encode. Ids are raw bytes (16 and 8)."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    attributes: Attributes
    events: tuple[SpanEventRecord, ...] = ()
    links: tuple[SpanLinkRecord, ...] = ()
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    dropped_events: int = 0


class Placement(NamedTuple):
    """Where an event landed in the trace: the ids the live feed carries."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    duration_ms: float | None = None  # on completions: the span's duration
    cost_usd: float | None = None  # on LLM completions: the priced cost, if the model has a price
