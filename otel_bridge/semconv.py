"""Every attribute, span and metric name the bridge emits, in one place.

Pinned to the OpenTelemetry GenAI semantic conventions v1.41.0 (the last
release of the main semantic-conventions repository that holds them). The
names that differ in semantic-conventions-genai v0.1.0, their first release of
their own, are in :mod:`otel_bridge.semconv_latest`; they are emitted only when
``OTEL_SEMCONV_STABILITY_OPT_IN`` contains ``gen_ai_latest_experimental`` (see
:func:`latest_experimental`). Which of the two a sidecar emits is one
:class:`Naming`, chosen once at assembly.

No other module writes an attribute or span-event name as a string literal;
dialect modules may only spell the *foreign* names they read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SEMCONV_VERSION: Final = "1.41.0"
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"
OPT_IN_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
OPT_IN_LATEST: Final = "gen_ai_latest_experimental"

# --- operation names (gen_ai.operation.name values) -------------------------
OP_CHAT: Final = "chat"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
# Not a GenAI operation: a step of a run (AG-UI STEP_*, agentlang flow steps) is a
# plain INTERNAL span named "step {name}", without gen_ai.operation.name.
SPAN_STEP: Final = "step"

# --- GenAI attributes --------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
# Its v0.1.0 name (semconv_latest); spelled here too because readers accept either (viewer, OpenInference).
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
TOOL_TYPE_FUNCTION: Final = "function"

# A2A (the GenAI conventions' A2A page): the span of one A2A call is named by its method.
A2A_METHOD_NAME: Final = "a2a.method.name"
A2A_TASK_ID: Final = "a2a.task.id"
A2A_TASK_STATE: Final = "a2a.task.state"
A2A_METHOD_SEND_STREAMING: Final = "SendStreamingMessage"
A2A_METHOD_SUBSCRIBE: Final = "SubscribeToTask"
A2A_METHOD_STREAM_V03: Final = "message/stream"
A2A_METHOD_RESUBSCRIBE_V03: Final = "tasks/resubscribe"
A2A_METHODS: Final = frozenset(
    {A2A_METHOD_SEND_STREAMING, A2A_METHOD_SUBSCRIBE, A2A_METHOD_STREAM_V03, A2A_METHOD_RESUBSCRIBE_V03}
)

# MCP (the GenAI conventions' MCP page): one span per request, named "{mcp.method.name} {target}"
# (target: the tool, prompt or resource); a tools/call is an execute_tool span.
SPAN_REQUEST: Final = "request"  # the op of a protocol request span (no gen_ai.operation.name)
MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_SESSION_ID: Final = "mcp.session.id"
MCP_PROTOCOL_VERSION: Final = "mcp.protocol.version"
MCP_RESOURCE_URI: Final = "mcp.resource.uri"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
JSONRPC_REQUEST_ID: Final = "jsonrpc.request.id"
JSONRPC_PROTOCOL_VERSION: Final = "jsonrpc.protocol.version"
RPC_RESPONSE_STATUS_CODE: Final = "rpc.response.status_code"  # a JSON-RPC error's code, as a string
NETWORK_TRANSPORT: Final = "network.transport"
NETWORK_PROTOCOL_NAME: Final = "network.protocol.name"
MCP_TOOL_METHOD: Final = "tools/call"
ERROR_TOOL: Final = "tool_error"  # error.type of a tool result with isError
# MCP span events: the notifications the server sent about a request.
EVENT_MCP_LOG: Final = "notifications/message"
# The protocol attributes a dialect may put on an event (AgentEvent.attributes); the mapper keeps no others.
PROTOCOL_ATTRIBUTES: Final = frozenset(
    {
        MCP_METHOD_NAME,
        MCP_SESSION_ID,
        MCP_PROTOCOL_VERSION,
        MCP_RESOURCE_URI,
        GEN_AI_PROMPT_NAME,
        JSONRPC_REQUEST_ID,
        JSONRPC_PROTOCOL_VERSION,
        RPC_RESPONSE_STATUS_CODE,
        NETWORK_TRANSPORT,
        NETWORK_PROTOCOL_NAME,
    }
)

ERROR_TYPE: Final = "error.type"
ERROR_TYPE_OTHER: Final = "_OTHER"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
TELEMETRY_SDK_NAME: Final = "telemetry.sdk.name"
TELEMETRY_SDK_LANGUAGE: Final = "telemetry.sdk.language"
TELEMETRY_SDK_VERSION: Final = "telemetry.sdk.version"

GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
# The log/span event that carries content under SPAN_AND_EVENT / EVENT_ONLY.
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"
# Message parts (gen_ai.input.messages / gen_ai.output.messages structure).
ROLE_ASSISTANT: Final = "assistant"
ROLE_TOOL: Final = "tool"
PART_TEXT: Final = "text"
PART_TOOL_CALL: Final = "tool_call"
PART_TOOL_CALL_RESPONSE: Final = "tool_call_response"

# --- OpenInference (Arize Phoenix, Arize): added beside the GenAI names when asked -------
# openinference-semantic-conventions (Python package ``openinference.semconv``), the names
# Phoenix reads; never instead of the GenAI ones.
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_KIND_LLM: Final = "LLM"
OI_KIND_TOOL: Final = "TOOL"
OI_KIND_AGENT: Final = "AGENT"
OI_KIND_CHAIN: Final = "CHAIN"
OI_PROJECT_NAME: Final = "openinference.project.name"  # a resource attribute
OI_LLM_MODEL_NAME: Final = "llm.model_name"
OI_LLM_PROVIDER: Final = "llm.provider"
OI_LLM_SYSTEM: Final = "llm.system"
OI_LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
OI_TOKEN_PROMPT: Final = "llm.token_count.prompt"
OI_TOKEN_COMPLETION: Final = "llm.token_count.completion"
OI_TOKEN_TOTAL: Final = "llm.token_count.total"
OI_TOKEN_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
OI_TOKEN_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
OI_TOKEN_REASONING: Final = "llm.token_count.completion_details.reasoning"
OI_COST_TOTAL: Final = "llm.cost.total"
OI_INPUT_MESSAGES: Final = "llm.input_messages"  # + ".{i}." + a message suffix below
OI_OUTPUT_MESSAGES: Final = "llm.output_messages"
OI_MESSAGE_ROLE: Final = "message.role"
OI_MESSAGE_CONTENT: Final = "message.content"
OI_MESSAGE_TOOL_CALL_ID: Final = "message.tool_call_id"
OI_MESSAGE_TOOL_CALLS: Final = "message.tool_calls"  # + ".{j}." + a tool call suffix below
OI_TOOL_CALL_ID: Final = "tool_call.id"
OI_TOOL_CALL_FUNCTION_NAME: Final = "tool_call.function.name"
OI_TOOL_CALL_FUNCTION_ARGUMENTS: Final = "tool_call.function.arguments"
OI_INPUT_VALUE: Final = "input.value"
OI_INPUT_MIME_TYPE: Final = "input.mime_type"
OI_OUTPUT_VALUE: Final = "output.value"
OI_OUTPUT_MIME_TYPE: Final = "output.mime_type"
OI_MIME_JSON: Final = "application/json"
OI_MIME_TEXT: Final = "text/plain"
OI_TOOL_NAME: Final = "tool.name"
OI_TOOL_PARAMETERS: Final = "tool.parameters"
OI_SESSION_ID: Final = "session.id"
OI_AGENT_NAME: Final = "agent.name"
# gen_ai.provider.name -> OpenInference llm.provider / llm.system values.
OI_PROVIDERS: Final = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "cohere": "cohere",
    "mistral_ai": "mistralai",
    "x_ai": "xai",
    "deepseek": "deepseek",
}
OI_SYSTEMS: Final = {
    "openai": "openai",
    "azure.ai.openai": "openai",
    "anthropic": "anthropic",
    "gcp.vertex_ai": "vertexai",
    "gcp.gemini": "vertexai",
    "cohere": "cohere",
    "mistral_ai": "mistralai",
}

# --- redaction --------------------------------------------------------------------
REDACTED_MARK: Final = "[REDACTED:{}]"  # the detector's name goes in the braces
BRIDGE_TRUNCATED: Final = "otel_bridge.truncated"  # on a span whose captured content was cut: which attributes

# --- span events -------------------------------------------------------------
EVENT_EXCEPTION: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"

# --- the bridge's own attributes (no convention exists for these) ------------
# Cost: no GenAI attribute exists yet (proposal gen_ai.usage.cost); we emit the
# proposal's name, which Langfuse already ingests.
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"
BRIDGE_DIALECT: Final = "otel_bridge.dialect"
BRIDGE_SOURCE: Final = "otel_bridge.source"
BRIDGE_RUN_ID: Final = "otel_bridge.run.id"
BRIDGE_PARENT_RUN_ID: Final = "otel_bridge.run.parent_id"
BRIDGE_EVENT_TYPE: Final = "otel_bridge.event.type"
BRIDGE_EVENT_ID: Final = "otel_bridge.event.id"
BRIDGE_EVENT_PAYLOAD: Final = "otel_bridge.event.payload"
BRIDGE_STATUS: Final = "otel_bridge.status"
BRIDGE_CLOSE_REASON: Final = "otel_bridge.close_reason"
BRIDGE_CHUNK_COUNT: Final = "otel_bridge.chunk_count"
BRIDGE_CALL_ID: Final = "otel_bridge.call.id"
BRIDGE_STREAM_ID: Final = "otel_bridge.stream.id"
BRIDGE_STEP_NAME: Final = "otel_bridge.step.name"
BRIDGE_INFERRED: Final = "otel_bridge.inferred"
BRIDGE_REPORTED_COST: Final = "otel_bridge.reported_cost_usd"
BRIDGE_ERROR_MESSAGE: Final = "otel_bridge.error.message"
BRIDGE_RUN_IN_PROGRESS: Final = "otel_bridge.run.in_progress"  # on a long run's "in progress" marker span
RUN_MARKER_SUFFIX: Final = " (running)"  # the marker span's name: its run's root span name plus this

# error.type values the bridge itself assigns
ERROR_INCOMPLETE: Final = "incomplete"

# close reasons (otel_bridge.close_reason values)
CLOSE_RUN_ENDED: Final = "run_ended"
CLOSE_IDLE: Final = "idle_timeout"
CLOSE_SPAN_TIMEOUT: Final = "span_timeout"
CLOSE_SHUTDOWN: Final = "shutdown"
CLOSE_EVICTED: Final = "evicted"
CLOSE_END_OF_INPUT: Final = "end_of_input"
CLOSE_PARENT_ENDED: Final = "parent_ended"  # its agent or step span ended first

# A run the bridge closed itself (no end from its producer) is told to the observers as a synthetic
# run.finished / run.failed whose original type names why (mapping.closing.close_notice).
RUN_CLOSED_TYPES: Final = {
    CLOSE_IDLE: "otel_bridge.run_timeout",
    CLOSE_END_OF_INPUT: "otel_bridge.run_end_of_input",
    CLOSE_EVICTED: "otel_bridge.run_evicted",
    CLOSE_SHUTDOWN: "otel_bridge.run_shutdown",
}
RUN_CLOSED_OTHER: Final = "otel_bridge.run_closed"  # any other close reason
BRIDGE_NAMESPACE: Final = "otel_bridge"  # its dialect and source when its run named none
RUN_CLOSED_ALL: Final = frozenset({*RUN_CLOSED_TYPES.values(), RUN_CLOSED_OTHER})
RUN_CLOSED_FAILURES: Final = frozenset({CLOSE_EVICTED, CLOSE_SHUTDOWN})  # closes told as run.failed

# --- the live feed's own SSE event names (beside the canonical kinds) --------
FEED_EVENT_MISSED: Final = "missed"  # a resume id older than the ring, or from before a restart
FEED_EVENT_LAGGED: Final = "lagged"  # this subscriber fell behind and lost events
FEED_CUSTOM_PREFIX: Final = "otel_bridge."  # AG-UI CUSTOM names of the feed's notices

# --- metrics (v1.41.0 names; explicit bucket boundaries) -------------------
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
METRIC_INVOKE_AGENT_DURATION: Final = "gen_ai.invoke_agent.duration"
METRIC_EXECUTE_TOOL_DURATION: Final = "gen_ai.execute_tool.duration"
METRIC_COST: Final = "gen_ai.client.cost"
# Operation names that are inference calls (the client metrics' subject).
INFERENCE_OPERATIONS: Final = frozenset({OP_CHAT, "text_completion", "generate_content"})
# Units (UCUM; braces are annotations that Prometheus names drop).
UNIT_TOKEN: Final = "{token}"
UNIT_SECONDS: Final = "s"
# No UCUM unit exists for a currency; "USD" keeps the currency in the Prometheus name.
UNIT_USD: Final = "USD"
# The SDK convention for the one series that takes measurements past a cardinality limit.
OTEL_METRIC_OVERFLOW: Final = "otel.metric.overflow"
# The bridge's own health metrics (Prometheus names: dots to underscores, `_total` on counters).
METRIC_EVENTS_RECEIVED: Final = "otel_bridge.events.received"
METRIC_EVENTS_REJECTED: Final = "otel_bridge.events.rejected"
METRIC_DROPPED: Final = "otel_bridge.dropped"
METRIC_FEED_EVENTS_LOST: Final = "otel_bridge.feed.events.lost"
METRIC_SPANS_FINISHED: Final = "otel_bridge.spans.finished"
METRIC_SPANS_EXPORTED: Final = "otel_bridge.spans.exported"
METRIC_SPANS_EXPORT_FAILED: Final = "otel_bridge.spans.export_failed"
METRIC_SPANS_INCOMPLETE: Final = "otel_bridge.spans.incomplete"
METRIC_EXPORT_QUEUE_DEPTH: Final = "otel_bridge.export.queue_depth"
METRIC_RUNS_STARTED: Final = "otel_bridge.runs.started"
METRIC_RUNS_FINISHED: Final = "otel_bridge.runs.finished"
METRIC_RUNS_OPEN: Final = "otel_bridge.runs.open"
METRIC_RUNS_CONTINUED: Final = "otel_bridge.runs.continued"
METRIC_FEED_SUBSCRIBERS: Final = "otel_bridge.feed.subscribers"
METRIC_MEMORY_REFUSALS: Final = "otel_bridge.memory.refusals"
# Attributes of the health metrics (short on purpose: they become Prometheus labels).
METRIC_ATTR_REASON: Final = "reason"
METRIC_ATTR_SINK: Final = "sink"
METRIC_ATTR_WHERE: Final = "where"

TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)


# The key of TokenUsage.cache_creation in the live feed's JSON (its field name; v0.1.0 renames it).
FEED_USAGE_CACHE_CREATION: Final = "cache_creation"


@dataclass(frozen=True, slots=True)
class Naming:
    """The names one version of the GenAI conventions gives what the bridge emits, where versions differ.

    Chosen once at assembly (:func:`otel_bridge.semconv_latest.naming`) and handed to what
    produces the names: the mapping's attribute functions, the metrics sink, the feed's
    records. Everything not listed here is the same in both versions.
    """

    version: str
    """The conventions' version: ``1.41.0`` (semantic-conventions) or ``0.1.0`` (semantic-conventions-genai)."""
    usage_cache_write: str
    """The span attribute for the tokens written to a provider's prompt cache."""
    run_span_cache_tokens: bool
    """Cache token counts (read and write) go on a run's span (``invoke_agent``, INTERNAL) as well as on its calls."""
    metric_duration: str
    """Duration of an inference call (``chat``...)."""
    metric_time_to_first_chunk: str
    metric_input_tokens: str
    """Input tokens per inference call; the same name as :attr:`metric_output_tokens` when one metric holds both."""
    metric_output_tokens: str
    token_type_attribute: bool
    """The token metric tells input from output by ``gen_ai.token.type`` (one metric for both)."""
    token_error_type: bool
    """The token metrics carry ``error.type`` on a failed call."""
    feed_usage_cache_write: str
    """The key of the cache-write count in a feed record's ``usage`` object."""


V1_41: Final = Naming(
    version=SEMCONV_VERSION,
    usage_cache_write=GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    run_span_cache_tokens=True,
    metric_duration=METRIC_OPERATION_DURATION,
    metric_time_to_first_chunk=METRIC_TIME_TO_FIRST_CHUNK,
    metric_input_tokens=METRIC_TOKEN_USAGE,
    metric_output_tokens=METRIC_TOKEN_USAGE,
    token_type_attribute=True,
    token_error_type=False,
    feed_usage_cache_write=FEED_USAGE_CACHE_CREATION,
)
"""What the bridge emits by default."""


def latest_experimental(opt_in: str | None) -> bool:
    """True when the opt-in variable asks for the newer, unsettled GenAI names.

    The variable is a comma-separated list of category values (the GenAI conventions'
    transition plan); values of other categories (``http``, ``database/dup``...) are
    not ours and are ignored. The GenAI conventions define no ``/dup`` mode (emit both
    versions), so ``gen_ai_latest_experimental/dup`` does not opt in: see
    :func:`unknown_gen_ai_values`.
    """
    if not opt_in:
        return False
    return OPT_IN_LATEST in {part.strip() for part in opt_in.split(",")}


def unknown_gen_ai_values(opt_in: str | None) -> list[str]:
    """The ``gen_ai`` values of the opt-in variable that the bridge does not know (worth a warning)."""
    if not opt_in:
        return []
    parts = (part.strip() for part in opt_in.split(","))
    return [part for part in parts if part.startswith("gen_ai") and part != OPT_IN_LATEST]
