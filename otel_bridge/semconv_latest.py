"""The GenAI names of semantic-conventions-genai v0.1.0, where they differ from v1.41.0 (``semconv``).

The GenAI conventions left the main semantic-conventions repository after v1.41.0;
v0.1.0 is the first release of their own repository (its changelog lists the changes
since v1.41.0). The bridge emits these names only under
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``: the conventions' transition
plan says an instrumentation keeps the version it emitted by default and offers the
newest one behind that value, instead of, never beside, the old names.

What changed in v0.1.0 for what the bridge emits, and nothing else:

* ``gen_ai.usage.cache_creation.input_tokens`` is ``gen_ai.usage.cache_write.input_tokens``
  (semantic-conventions-genai #440).
* The agent span (``invoke_agent``, INTERNAL, which the bridge makes of a run) no longer
  carries the cache token counts (#469): summed over models and calls they mislead, and
  consumers sum them from the inference spans, which keep them. Its input and output
  token counts stay.
* The inference metrics are ``gen_ai.client.inference.*``: ``gen_ai.client.operation.duration``
  is ``gen_ai.client.inference.duration`` for inference calls, and the streaming
  metrics moved likewise. The ``gen_ai.client.token.usage`` histogram, split by
  ``gen_ai.token.type``, is one histogram per direction,
  ``gen_ai.client.inference.operation.{input,output}_tokens``, which carry ``error.type``
  on a failed call like the duration does.
* ``gen_ai.invoke_agent.duration`` and ``gen_ai.execute_tool.duration`` keep their names.

The v0.1.0 changes that touch nothing the bridge emits are left out: ``gen_ai.agent.id``
and ``gen_ai.agent.version`` leave the internal agent span (the bridge sets neither),
``gen_ai.workflow.name`` becomes ``gen_ai.agent.name`` on ``invoke_workflow`` (the bridge
makes no workflow span), ``gen_ai.request.top_k`` becomes an int (the bridge does not set it).
The new per-token-category counters (``gen_ai.client.inference.usage.*``) require
``gen_ai.token.modality``, which no stream the bridge reads reports; they are not emitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from otel_bridge import semconv as sc

SEMCONV_GENAI_VERSION: Final = "0.1.0"

GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
METRIC_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
METRIC_INFERENCE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"
METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.inference.time_per_output_chunk"
METRIC_INFERENCE_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
METRIC_INFERENCE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"
FEED_USAGE_CACHE_WRITE: Final = "cache_write"

LATEST: Final = sc.Naming(
    version=SEMCONV_GENAI_VERSION,
    usage_cache_write=GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    run_span_cache_tokens=False,
    metric_duration=METRIC_INFERENCE_DURATION,
    metric_time_to_first_chunk=METRIC_INFERENCE_TIME_TO_FIRST_CHUNK,
    metric_input_tokens=METRIC_INFERENCE_INPUT_TOKENS,
    metric_output_tokens=METRIC_INFERENCE_OUTPUT_TOKENS,
    token_type_attribute=False,
    token_error_type=True,
    feed_usage_cache_write=FEED_USAGE_CACHE_WRITE,
)
"""What the bridge emits under ``gen_ai_latest_experimental``."""

_NAMINGS: Final = (sc.V1_41, LATEST)


def naming(latest: bool) -> sc.Naming:
    """The names to emit: v0.1.0 when ``latest`` (the opt-in), else v1.41.0."""
    return _NAMINGS[latest]


# --- the difference as tables (the README's reference table and the golden tests read these) ---

SPAN_ATTRIBUTE_RENAMES: Final[Mapping[str, str]] = MappingProxyType(
    {sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS}
)
"""Span attributes (on every span and span event) renamed, old name -> new name."""

RUN_SPAN_REMOVED: Final = frozenset({sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS})
"""Attributes (by their new names) no longer set on the agent span a run becomes (INTERNAL ``invoke_agent``)."""

METRIC_RENAMES: Final[Mapping[tuple[str, str | None], str]] = MappingProxyType(
    {
        (sc.METRIC_OPERATION_DURATION, None): METRIC_INFERENCE_DURATION,
        (sc.METRIC_TIME_TO_FIRST_CHUNK, None): METRIC_INFERENCE_TIME_TO_FIRST_CHUNK,
        (sc.METRIC_TIME_PER_OUTPUT_CHUNK, None): METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK,
        (sc.METRIC_TOKEN_USAGE, sc.TOKEN_TYPE_INPUT): METRIC_INFERENCE_INPUT_TOKENS,
        (sc.METRIC_TOKEN_USAGE, sc.TOKEN_TYPE_OUTPUT): METRIC_INFERENCE_OUTPUT_TOKENS,
    }
)
"""Metrics renamed: (old name, its ``gen_ai.token.type`` when the old metric was split by it) -> new name."""

FEED_USAGE_RENAMES: Final[Mapping[str, str]] = MappingProxyType({sc.FEED_USAGE_CACHE_CREATION: FEED_USAGE_CACHE_WRITE})
"""Keys of a feed record's ``usage`` object renamed."""
