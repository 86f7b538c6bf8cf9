"""``GET /v1/traces`` (search the embedded store) and ``GET /v1/traces/{trace_id}`` (one trace as OTLP/JSON).

The list's query parameters are read as text and validated here, so a bad
value gets the project's error body (``{"error": "invalid_query", "message"}``,
400) naming the parameter, never the framework's ``{"detail": ...}`` 422.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from otel_bridge import semconv as sc
from otel_bridge.model import AttributeValue
from otel_bridge.sinks import otlp_json
from otel_bridge.sinks.store import SortKey, TraceQuery, TraceStatus, TraceStore
from otel_bridge.web.problem import problem

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
_EPOCH_MS = re.compile(r"\d{1,16}")
_Choice = TypeVar("_Choice", TraceStatus, SortKey)


class QueryError(ValueError):
    """A bad query parameter; the message names it and says what it takes."""


def _time_ns(name: str, raw: str) -> int:
    """RFC 3339 (``2025-01-02T03:04:05Z``, with an offset) or epoch milliseconds."""
    text = raw.strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text) * 1_000_000
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise QueryError(
            f"{name} must be an RFC 3339 time with a zone (2025-01-02T03:04:05Z) or epoch milliseconds, got {raw!r}"
        )
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1_000


def _duration_ns(name: str, raw: str) -> int:
    try:
        ms = float(raw)
    except ValueError:
        ms = math.nan
    if not math.isfinite(ms) or ms < 0:
        raise QueryError(f"{name} must be a number of milliseconds >= 0, got {raw!r}")
    return round(ms * 1_000_000)


def _choice(name: str, raw: str, enum: type[_Choice]) -> _Choice:
    try:
        return enum(raw)
    except ValueError:
        raise QueryError(f"{name} must be one of: {', '.join(e.value for e in enum)}; got {raw!r}") from None


def _text(raw: str | None) -> str | None:
    return raw if raw not in (None, "") else None


def parse_query(
    *,
    limit: str | None = None,
    run_id: str | None = None,
    agent: str | None = None,
    model: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    min_duration_ms: str | None = None,
    max_duration_ms: str | None = None,
    q: str | None = None,
    sort: str | None = None,
) -> TraceQuery:
    """The store query the parameters ask for; an empty parameter is no filter. Raises :class:`QueryError`."""
    n = DEFAULT_LIMIT
    if limit:
        if not limit.strip().isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise QueryError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
        n = int(limit)
    key, descending = SortKey.TIME, True
    if sort:
        descending = sort.startswith("-")
        key = _choice("sort", sort.removeprefix("-"), SortKey)
    query = TraceQuery(
        run_id=_text(run_id),
        agent=_text(agent),
        model=_text(model),
        status=_choice("status", status, TraceStatus) if status else None,
        since_ns=_time_ns("since", since) if since else None,
        until_ns=_time_ns("until", until) if until else None,
        min_duration_ns=_duration_ns("min_duration_ms", min_duration_ms) if min_duration_ms else None,
        max_duration_ns=_duration_ns("max_duration_ms", max_duration_ms) if max_duration_ms else None,
        q=_text(q),
        sort=key,
        descending=descending,
        limit=n,
    )
    if query.since_ns is not None and query.until_ns is not None and query.since_ns > query.until_ns:
        raise QueryError("since must not be later than until")
    if (
        query.min_duration_ns is not None
        and query.max_duration_ns is not None
        and query.min_duration_ns > query.max_duration_ns
    ):
        raise QueryError("min_duration_ms must not be greater than max_duration_ms")
    return query


_STATUS_DOC = "`ok`, `error`, `incomplete` (evicted by a bound or open at shutdown) or `running`."
_TIME_DOC = "RFC 3339 with a zone (`2025-01-02T03:04:05Z`) or epoch milliseconds; selects on the run's start time."


STORE_DISABLED = "the embedded trace store is disabled (store.enabled = false)"
FEED_ONLY = (
    "this is a feed-only process (otel-bridge feed): it keeps no traces; search them on a sidecar"
    " (GET /v1/traces there) or in your tracing backend"
)


def traces_router(
    store: TraceStore | None,
    resource: dict[str, AttributeValue],
    scope: tuple[str, str],
    no_store: str = STORE_DISABLED,
) -> APIRouter:
    """The routes over ``store``; documents carry ``resource`` and ``scope``.

    Without a store both answer 404 ``store_disabled`` with ``no_store`` as the message, which
    the viewer shows in place of the list.
    """
    router = APIRouter()

    @router.get(
        "/v1/traces",
        responses={400: {"description": 'A bad parameter: `{"error": "invalid_query", "message": ...}`'}},
    )
    async def list_traces(
        limit: Annotated[str | None, Query(description=f"At most this many (1-{MAX_LIMIT}; default 50).")] = None,
        run_id: Annotated[str | None, Query(description="Exactly this run id.")] = None,
        agent: Annotated[str | None, Query(description="Exactly this agent name.")] = None,
        model: Annotated[str | None, Query(description="Runs with an LLM call to this model.")] = None,
        status: Annotated[str | None, Query(description=_STATUS_DOC)] = None,
        since: Annotated[str | None, Query(description="Started at or after: " + _TIME_DOC)] = None,
        until: Annotated[str | None, Query(description="Started at or before: " + _TIME_DOC)] = None,
        min_duration_ms: Annotated[str | None, Query(description="Lasting at least this many ms.")] = None,
        max_duration_ms: Annotated[str | None, Query(description="Lasting at most this many ms.")] = None,
        q: Annotated[
            str | None,
            Query(description="Free text, case-insensitive: in the run id, trace id or any attribute value."),
        ] = None,
        sort: Annotated[
            str | None,
            Query(description="`time`, `duration`, `tokens` or `cost`; a leading `-` for descending. Default `-time`."),
        ] = None,
    ) -> JSONResponse:
        """Search the embedded store: runs matching every given filter, newest first unless ``sort`` says."""
        if store is None:
            return problem(404, "store_disabled", no_store)
        try:
            query = parse_query(
                limit=limit,
                run_id=run_id,
                agent=agent,
                model=model,
                status=status,
                since=since,
                until=until,
                min_duration_ms=min_duration_ms,
                max_duration_ms=max_duration_ms,
                q=q,
                sort=sort,
            )
        except QueryError as exc:
            return problem(400, "invalid_query", str(exc))
        return JSONResponse({"traces": [s.as_json() for s in store.search(query)]})

    @router.get("/v1/traces/{trace_id}")
    async def get_trace(trace_id: str) -> Response:
        """One trace as an OTLP/JSON ``ExportTraceServiceRequest``."""
        if store is None:
            return problem(404, "store_disabled", no_store)
        try:
            raw_id = bytes.fromhex(trace_id)
        except ValueError:
            raw_id = b""
        if len(raw_id) != 16:
            return problem(400, "invalid_trace_id", "trace id must be 32 hex characters")
        spans = store.get(raw_id)
        if spans is None:
            return problem(
                404, "trace_not_found", f"no trace {trace_id} in the embedded store (it keeps recent traces only)"
            )
        body = otlp_json.encode_request(spans, resource, scope[0], scope[1], sc.SCHEMA_URL)
        return Response(body, media_type="application/json")

    return router
