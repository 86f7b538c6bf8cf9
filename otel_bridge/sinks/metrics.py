"""GenAI metrics derived from finished spans, as the snapshot model of :mod:`.metric_model`.

:class:`GenAiMetrics` is a :class:`~otel_bridge.pipeline.SpanSink`: each finished
span updates cumulative aggregates in memory (a dict update per span, no SDK
objects). A span finds its series by its attribute values in a fixed order
(``_Instrument.fast``); the sorted attribute key a series is reported under is
built once, when the series first appears. An inference span feeds up to five
series: one lookup by those values finds a :class:`_Plan` holding them all.

What each span kind yields (v1.41.0 names by default, bucket boundaries from :mod:`semconv`):

* inference spans (``chat``...): ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``
  (one point per ``gen_ai.token.type``), ``gen_ai.client.operation.time_to_first_chunk`` when streamed,
  and ``gen_ai.client.cost`` when the call was priced;
* ``invoke_agent`` spans: ``gen_ai.invoke_agent.duration``;
* ``execute_tool`` spans: ``gen_ai.execute_tool.duration``.

The inference metrics' names come from the :class:`~otel_bridge.semconv.Naming` given at
assembly: under ``gen_ai_latest_experimental`` (v0.1.0) they are ``gen_ai.client.inference.duration``,
``gen_ai.client.inference.time_to_first_chunk`` and one token histogram per direction,
``gen_ai.client.inference.operation.{input,output}_tokens`` (no ``gen_ai.token.type``; ``error.type``
on a failed call), see :mod:`otel_bridge.semconv_latest`.

Token counts and cost are taken from the inference spans only: the run span
carries their sums, and counting it too would count every token twice.

Bound: ``max_series_per_metric`` attribute sets per metric. Past it a measurement
goes to the one series whose only attribute is ``otel.metric.overflow=true`` (the
SDK convention) and is counted in ``Stats.dropped["metrics_series_limit"]``: the
value is kept, its attributes are not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from otel_bridge import semconv as sc
from otel_bridge.config import MetricsSettings
from otel_bridge.model import AttributeValue, SpanRecord, StatusCode
from otel_bridge.sinks.metric_model import AttributeKey, Histogram, MetricFamily, MetricKind, Series, Snapshot
from otel_bridge.stats import Stats

_OVERFLOW: AttributeKey = ((sc.OTEL_METRIC_OVERFLOW, True),)
_ABSENT = object()
"""An attribute a span does not carry, in the per-span lookup keys (``None`` is no attribute value either)."""
_SERIES_LIMIT_REASON = "metrics_series_limit"
_TOKEN_BOUNDS = tuple(float(b) for b in sc.TOKEN_BUCKETS)
_DURATION_BOUNDS = tuple(float(b) for b in sc.DURATION_BUCKETS)
# Span attributes copied onto each metric, as the conventions list them per metric.
_INFERENCE_KEYS = (
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_RESPONSE_MODEL,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
)
_AGENT_KEYS = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_AGENT_NAME)
_TOOL_KEYS = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_TOOL_NAME, sc.GEN_AI_TOOL_TYPE)
# The per-span path's names, bound once (a module global is one dict lookup; an enum member, a slow class lookup).
_ERROR = StatusCode.ERROR
_OPERATION = sc.GEN_AI_OPERATION_NAME
_PROVIDER = sc.GEN_AI_PROVIDER_NAME
_REQUEST_MODEL = sc.GEN_AI_REQUEST_MODEL
_RESPONSE_MODEL = sc.GEN_AI_RESPONSE_MODEL
_SERVER_ADDRESS = sc.SERVER_ADDRESS
_SERVER_PORT = sc.SERVER_PORT
_AGENT_NAME = sc.GEN_AI_AGENT_NAME
_TOOL_NAME = sc.GEN_AI_TOOL_NAME
_TOOL_TYPE = sc.GEN_AI_TOOL_TYPE
_ERROR_TYPE = sc.ERROR_TYPE
_TTFC = sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
_INPUT_TOKENS = sc.GEN_AI_USAGE_INPUT_TOKENS
_OUTPUT_TOKENS = sc.GEN_AI_USAGE_OUTPUT_TOKENS
_COST = sc.GEN_AI_USAGE_COST
_INFERENCE_OPERATIONS = sc.INFERENCE_OPERATIONS
_OP_EXECUTE_TOOL = sc.OP_EXECUTE_TOOL
_OP_INVOKE_AGENT = sc.OP_INVOKE_AGENT


class _Plan:
    """An inference span's series by instrument, for one set of its attribute values (``None``: not found yet)."""

    __slots__ = ("cost", "duration", "tokens_in", "tokens_out", "ttfc")

    def __init__(self) -> None:
        self.duration: Histogram | None = None
        self.ttfc: Histogram | None = None
        self.tokens_in: Histogram | None = None
        self.tokens_out: Histogram | None = None
        self.cost: list[float] | None = None


@dataclass
class _Instrument:
    name: str
    description: str
    unit: str
    kind: MetricKind
    bounds: tuple[float, ...] = ()
    series: dict[AttributeKey, Histogram | list[float]] = field(default_factory=dict)
    fast: dict[object, Histogram | list[float]] = field(default_factory=dict)
    """The same series by their attribute values in a fixed order (no sort, no pairs): the per-span lookup."""


class GenAiMetrics:
    """A span sink that keeps the GenAI client/agent/tool metrics, cumulative, in memory."""

    def __init__(
        self,
        settings: MetricsSettings,
        stats: Stats,
        *,
        names: sc.Naming = sc.V1_41,
        time_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._limit = settings.max_series_per_metric
        self._stats = stats
        self._time_ns = time_ns
        self.start_ns = time_ns()
        if names.metric_input_tokens == names.metric_output_tokens:
            self._tokens_in = self._tokens_out = _Instrument(
                names.metric_input_tokens,
                "Tokens used per GenAI operation",
                sc.UNIT_TOKEN,
                MetricKind.HISTOGRAM,
                _TOKEN_BOUNDS,
            )
            tokens: tuple[_Instrument, ...] = (self._tokens_in,)
        else:
            self._tokens_in = _Instrument(
                names.metric_input_tokens,
                "Input tokens per inference call",
                sc.UNIT_TOKEN,
                MetricKind.HISTOGRAM,
                _TOKEN_BOUNDS,
            )
            self._tokens_out = _Instrument(
                names.metric_output_tokens,
                "Output tokens per inference call",
                sc.UNIT_TOKEN,
                MetricKind.HISTOGRAM,
                _TOKEN_BOUNDS,
            )
            tokens = (self._tokens_in, self._tokens_out)
        self._token_type = names.token_type_attribute
        self._token_error = names.token_error_type
        self._duration = _Instrument(
            names.metric_duration,
            "Duration of GenAI operations",
            sc.UNIT_SECONDS,
            MetricKind.HISTOGRAM,
            _DURATION_BOUNDS,
        )
        self._ttfc = _Instrument(
            names.metric_time_to_first_chunk,
            "Time from request to the first streamed chunk",
            sc.UNIT_SECONDS,
            MetricKind.HISTOGRAM,
            _DURATION_BOUNDS,
        )
        self._agent = _Instrument(
            sc.METRIC_INVOKE_AGENT_DURATION,
            "Duration of agent invocations",
            sc.UNIT_SECONDS,
            MetricKind.HISTOGRAM,
            _DURATION_BOUNDS,
        )
        self._tool = _Instrument(
            sc.METRIC_EXECUTE_TOOL_DURATION,
            "Duration of tool executions",
            sc.UNIT_SECONDS,
            MetricKind.HISTOGRAM,
            _DURATION_BOUNDS,
        )
        self._cost = _Instrument(
            sc.METRIC_COST, "Cost of GenAI operations, from the price table", sc.UNIT_USD, MetricKind.COUNTER
        )
        self._plans: dict[tuple[object, ...], _Plan] = {}
        self._instruments = (*tokens, self._duration, self._ttfc, self._agent, self._tool, self._cost)

    # -- SpanSink -------------------------------------------------------------
    def consume(self, spans: Sequence[SpanRecord]) -> None:
        plans = self._plans
        for span in spans:
            get = span.attributes.get
            op = get(_OPERATION)
            # The series' attribute values in a fixed order (absent ones as _ABSENT), the error type last
            # (_ABSENT but on a failed span): a cheap lookup key.
            error = _ABSENT if span.status_code is not _ERROR else _error_type(get(_ERROR_TYPE))
            if op in _INFERENCE_OPERATIONS:
                raw: tuple[object, ...] = (
                    op,
                    get(_PROVIDER, _ABSENT),
                    get(_REQUEST_MODEL, _ABSENT),
                    get(_RESPONSE_MODEL, _ABSENT),
                    get(_SERVER_ADDRESS, _ABSENT),
                    get(_SERVER_PORT, _ABSENT),
                    error,
                )
                plan = plans.get(raw) or _Plan()
                (plan.duration or self._plan_duration(plan, raw, span)).record(_seconds(span))
                ttfc = get(_TTFC)
                if ttfc is not None and isinstance(ttfc, (int, float)) and not isinstance(ttfc, bool):
                    (plan.ttfc or self._plan_ttfc(plan, raw, span)).record(float(ttfc))
                tokens = get(_INPUT_TOKENS)
                if type(tokens) is int or (isinstance(tokens, int) and not isinstance(tokens, bool)):  # 0 is data
                    (plan.tokens_in or self._plan_tokens_in(plan, raw, span)).record(float(tokens))
                tokens = get(_OUTPUT_TOKENS)
                if type(tokens) is int or (isinstance(tokens, int) and not isinstance(tokens, bool)):
                    (plan.tokens_out or self._plan_tokens_out(plan, raw, span)).record(float(tokens))
                cost = get(_COST)
                if type(cost) is float or (isinstance(cost, (int, float)) and not isinstance(cost, bool)):
                    (plan.cost or self._plan_cost(plan, raw, span))[0] += float(cost)
            elif op == _OP_EXECUTE_TOOL:
                raw = (op, get(_TOOL_NAME, _ABSENT), get(_TOOL_TYPE, _ABSENT), error)
                self._record_duration(self._tool, raw, span, _TOOL_KEYS)
            elif op == _OP_INVOKE_AGENT:
                raw = (op, get(_PROVIDER, _ABSENT), get(_REQUEST_MODEL, _ABSENT), get(_AGENT_NAME, _ABSENT), error)
                self._record_duration(self._agent, raw, span, _AGENT_KEYS)

    def _record_duration(
        self, inst: _Instrument, raw: tuple[object, ...], span: SpanRecord, keys: tuple[str, ...]
    ) -> None:
        state = inst.fast.get(raw)
        if state is None:
            state = self._histogram(inst, raw, span, keys, True)
        assert type(state) is Histogram
        state.record(_seconds(span))

    # An inference span's series, found once per attribute values (``raw``) and kept on a :class:`_Plan`.
    # A slot stays ``None`` while its series is the overflow one (not remembered, as in ``_Instrument.fast``),
    # so such a span takes the lookup each time and is counted each time, exactly as without the plan.

    def _plan_duration(self, plan: _Plan, raw: tuple[object, ...], span: SpanRecord) -> Histogram:
        state = self._histogram(self._duration, raw, span, _INFERENCE_KEYS, True)
        if self._duration.fast.get(raw) is state:
            plan.duration = state
            if len(self._plans) < self._limit:  # bounded: one plan per duration series, never the overflow one
                self._plans[raw] = plan
        return state

    def _plan_ttfc(self, plan: _Plan, raw: tuple[object, ...], span: SpanRecord) -> Histogram:
        state = self._histogram(self._ttfc, raw, span, _INFERENCE_KEYS, True)
        if self._ttfc.fast.get(raw) is state:
            plan.ttfc = state
        return state

    def _plan_tokens_in(self, plan: _Plan, raw: tuple[object, ...], span: SpanRecord) -> Histogram:
        token_raw = raw if self._token_error else raw[:-1]
        state = self._tokens(self._tokens_in, token_raw, span, sc.TOKEN_TYPE_INPUT)
        if self._tokens_in.fast.get((token_raw, sc.TOKEN_TYPE_INPUT)) is state:
            plan.tokens_in = state
        return state

    def _plan_tokens_out(self, plan: _Plan, raw: tuple[object, ...], span: SpanRecord) -> Histogram:
        token_raw = raw if self._token_error else raw[:-1]
        state = self._tokens(self._tokens_out, token_raw, span, sc.TOKEN_TYPE_OUTPUT)
        if self._tokens_out.fast.get((token_raw, sc.TOKEN_TYPE_OUTPUT)) is state:
            plan.tokens_out = state
        return state

    def _plan_cost(self, plan: _Plan, raw: tuple[object, ...], span: SpanRecord) -> list[float]:
        base = raw[:-1]
        state = self._cost.fast.get(base)
        if state is None:
            state = self._found(self._cost, base, _key(span, _INFERENCE_KEYS, error=False))
        assert isinstance(state, list)
        if self._cost.fast.get(base) is state:
            plan.cost = state
        return state

    def _histogram(
        self, inst: _Instrument, raw: tuple[object, ...], span: SpanRecord, keys: tuple[str, ...], error: bool
    ) -> Histogram:
        state = inst.fast.get(raw)
        if state is None:
            state = self._found(inst, raw, _key(span, keys, error=error))
        assert type(state) is Histogram
        return state

    def _tokens(self, inst: _Instrument, raw: tuple[object, ...], span: SpanRecord, token_type: str) -> Histogram:
        fast = (raw, token_type)
        state = inst.fast.get(fast)
        if state is None:
            key = _key(span, _INFERENCE_KEYS, error=self._token_error)
            state = self._found(inst, fast, _with(key, sc.GEN_AI_TOKEN_TYPE, token_type) if self._token_type else key)
        assert type(state) is Histogram
        return state

    def _found(self, inst: _Instrument, raw: object, key: AttributeKey) -> Histogram | list[float]:
        """The series ``key`` names (made if new); remembered under ``raw`` unless it went to the overflow series."""
        state = self._series(inst, key)
        if inst.series.get(key) is state:
            # Bounded by the series themselves: one raw key per series (equal raw keys make equal keys).
            inst.fast[raw] = state
        return state

    def _series(self, inst: _Instrument, key: AttributeKey) -> Histogram | list[float]:
        found = inst.series.get(key)
        if found is not None:
            return found
        if len(inst.series) >= self._limit:
            self._stats.drop(_SERIES_LIMIT_REASON)
            key = _OVERFLOW
            found = inst.series.get(key)
            if found is not None:
                return found
        created: Histogram | list[float] = Histogram.empty(inst.bounds) if inst.bounds else [0.0]
        inst.series[key] = created
        return created

    # -- reading ----------------------------------------------------------------
    def snapshot(self, extra: Iterable[MetricFamily] = ()) -> Snapshot:
        """The GenAI metrics plus ``extra`` (the health figures), stamped now."""
        return Snapshot(self.start_ns, self._time_ns(), (*self.families(), *extra))

    def families(self) -> list[MetricFamily]:
        """A copy of the current state (safe to encode while spans keep arriving)."""
        out = []
        for inst in self._instruments:
            series = tuple(
                Series(key, state.copy() if isinstance(state, Histogram) else state[0])
                for key, state in sorted(inst.series.items(), key=lambda item: _sort_key(item[0]))
            )
            out.append(MetricFamily(inst.name, inst.description, inst.unit, inst.kind, series))
        return out


def _seconds(span: SpanRecord) -> float:
    d = span.end_ns - span.start_ns
    return d / 1e9 if d > 0 else 0.0


def _error_type(error_type: object) -> str:
    """The ``error.type`` a failed span's series carry, from its attribute of that name."""
    return error_type if isinstance(error_type, str) else sc.ERROR_TYPE_OTHER


def _key(span: SpanRecord, keys: Iterable[str], *, error: bool) -> AttributeKey:
    attrs = span.attributes
    pairs = [(k, attrs[k]) for k in keys if k in attrs]
    if error and span.status_code is StatusCode.ERROR:
        error_type = attrs.get(sc.ERROR_TYPE)
        pairs.append((sc.ERROR_TYPE, error_type if isinstance(error_type, str) else sc.ERROR_TYPE_OTHER))
    pairs.sort(key=lambda kv: kv[0])
    return tuple(pairs)


def _with(key: AttributeKey, name: str, value: AttributeValue) -> AttributeKey:
    return tuple(sorted((*key, (name, value)), key=lambda kv: kv[0]))


def _sort_key(key: AttributeKey) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(v)) for k, v in key)
