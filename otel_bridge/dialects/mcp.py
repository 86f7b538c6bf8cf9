"""MCP (Model Context Protocol) over Streamable HTTP, read from an exchange log.

MCP is request/response, not a narration: only a party in the path sees both
sides. Its frames are the records of an exchange log (what the sidecar's MCP
proxy writes, ``--mcp-record``): one JSON object per HTTP request or response,
in order, with ``exchange`` (pairs them), ``direction`` (``request`` |
``response``), ``http_session`` (the ``Mcp-Session-Id``), ``http_method``,
``path``, ``status``, ``headers``, ``content_type``, ``body`` (the JSON-RPC
message or batch; a response's parsed JSON, or its raw SSE text) and,
optionally, ``time`` (when the proxy saw it; else the arrival time counts). A
streamed response may be logged as several response records of one exchange,
each holding some of its SSE events.

Both protocol eras: the 2025-11-25 handshake (``initialize``, a session id in
the ``mcp-session-id`` header, the standalone GET stream, ``DELETE`` ends the
session) and the stateless 2026-07-28 era (``server/discover``, no session,
``params._meta["io.modelcontextprotocol/..."]``).

Mapping (the GenAI conventions' MCP page):

* One request = one span, paired with its response by JSON-RPC id (within its
  session, else its exchange): ``tools/call`` is ``execute_tool {tool}``, any
  other method a request span named ``{mcp.method.name} {target}`` (the prompt
  or resource). Attributes ``mcp.method.name``, ``jsonrpc.request.id``,
  ``mcp.session.id``, ``mcp.protocol.version``, ``network.transport``.
* A result with ``isError`` fails its tool span (``error.type = tool_error``);
  a JSON-RPC error fails its span with the code as ``error.type`` and
  ``rpc.response.status_code``; an HTTP error fails what its exchange left open.
* Progress (``notifications/progress``, by ``progressToken``) and log
  (``notifications/message``) notifications are span events on their request's
  span; other notifications are events of the run.
* Runs: one session = one run, ended by its ``DELETE``. A request whose
  ``params._meta.traceparent`` names the caller's trace joins it: its session's
  run in that trace (one run per session and trace). A stateless request with
  no trace context is a run of its own. The client's ``clientInfo.name`` (from
  ``initialize`` or the stateless ``_meta``) names the run's agent.

The requests awaiting their responses are in :mod:`._mcp_pending`, the sessions and
their runs in :mod:`._mcp_runs`, the wire readers in :mod:`._mcp_wire`.
"""

from __future__ import annotations

from typing import Any, Unpack

from otel_bridge import semconv as sc
from otel_bridge.dialects._mcp_pending import EXCHANGE, SERVER, Pending, PendingRequests
from otel_bridge.dialects._mcp_runs import Runs
from otel_bridge.dialects._mcp_wire import (
    error_text,
    header,
    messages_of,
    progress_status,
    request_attributes,
    tool_result,
    trace_id_of,
    valid_id,
)
from otel_bridge.dialects._shapes import obj, text
from otel_bridge.dialects.base import (
    DecodeError,
    EventFields,
    StreamContext,
    json_text,
    make_event,
    opt_int,
    opt_str,
    parse_timestamp,
    require_object,
)
from otel_bridge.dialects.framing import Frame
from otel_bridge.model import AgentEvent, EventKind

NAME = "mcp"

_DIRECTIONS = frozenset({"request", "response"})
_META_PREFIX = "io.modelcontextprotocol/"
_PROGRESS = "notifications/progress"
_CANCELLED = "notifications/cancelled"
_INITIALIZE = "initialize"


class McpDialect:
    name = NAME

    def sniff(self, frame: Frame, obj_: Any) -> bool:
        return (
            isinstance(obj_, dict)
            and text(obj_, "direction") in _DIRECTIONS
            and "exchange" in obj_
            and isinstance(obj_.get("http_method"), str)
        )

    def decoder(self, ctx: StreamContext) -> McpDecoder:
        return McpDecoder(ctx)


class McpDecoder:
    """Pairs requests with their responses across the records of one log (or one proxy)."""

    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._pending = PendingRequests()
        self._runs = Runs(ctx.stream_key)

    def close(self) -> list[AgentEvent]:
        return []

    # -- records ------------------------------------------------------------------
    def feed(self, frame: Frame, obj_: Any) -> list[AgentEvent]:
        record = require_object(obj_, "MCP exchange record")
        direction = text(record, "direction")
        if direction not in _DIRECTIONS:
            raise DecodeError("MCP exchange record: direction must be 'request' or 'response'")
        exchange = valid_id(record.get("exchange"))
        if exchange is None:
            raise DecodeError("MCP exchange record: exchange must be a number or a string")
        stamp = parse_timestamp(record.get("time"))
        ts = (stamp, True) if stamp is not None else (self._ctx.arrival_ns(), False)
        session = text(record, "http_session") or header(record.get("headers"), "mcp-session-id")
        http_method = text(record, "http_method") or ""
        messages = messages_of(record)
        out: list[AgentEvent] = []
        if direction == "request":
            version = header(record.get("headers"), "mcp-protocol-version")
            for message, data in messages:
                out.extend(self._client_message(message, data, session, exchange, version, ts))
            return out
        scope = session or EXCHANGE + exchange
        for message, data in messages:
            out.extend(self._server_message(message, data, session, scope, exchange, ts))
        status = opt_int(record, "status")
        if status is not None and status >= 400:
            out.extend(self._fail_exchange(exchange, str(status), f"HTTP {status}", ts, frame))
        if http_method == "DELETE" and session is not None and (status is None or status < 300):
            out.extend(self._end_session(session, ts, frame))
        return out

    # -- the client's messages ------------------------------------------------------
    def _client_message(
        self,
        message: dict[str, Any],
        data: bytes,
        session: str | None,
        exchange: str,
        header_version: str | None,
        ts: tuple[int, bool],
    ) -> list[AgentEvent]:
        method = text(message, "method")
        rid = valid_id(message.get("id"))
        params = obj(message, "params")
        frame = Frame(None, data)
        scope = session or EXCHANGE + exchange
        if method is None:
            if rid is not None:  # the client's answer to a request the server sent
                pending = self._pending.drop((SERVER + scope, rid))
                return self._answer(pending, message, frame, ts) if pending is not None else []
            raise DecodeError("MCP request: a JSON-RPC message with neither method nor id")
        state = self._runs.session(session) if session is not None else None
        meta = obj(params, "_meta")
        client = text(obj(params, "clientInfo"), "name") or text(obj(meta, _META_PREFIX + "clientInfo"), "name")
        version = (
            header_version
            or text(meta, _META_PREFIX + "protocolVersion")
            or (text(params, "protocolVersion") if method == _INITIALIZE else None)
        )
        if state is not None:
            state.client = client or state.client
            state.version = state.version or version
            version = version or state.version
            client = client or state.client
        traceparent = text(meta, "traceparent")
        if rid is None:
            return self._client_notification(method, params, scope, frame, ts)
        trace = trace_id_of(traceparent)
        own_run = session is None and trace is None and method != _INITIALIZE
        run_id = self._runs.run_id(session, exchange, trace, ts)
        out = self._start_run(run_id, session, trace or "", client, traceparent, ts)
        call_id = f"{rid}#{exchange}" if self._pending.in_flight(run_id, rid) else rid  # one id in flight twice
        attributes = request_attributes(method, rid, session, version, params, message)
        tool = text(params, "name") if method == sc.MCP_TOOL_METHOD else None
        token = valid_id(meta.get("progressToken"))
        pending = Pending(run_id, call_id, method, tool, exchange, attributes, own_run, trace or "", client, token)
        self._pending.remember((scope, rid), pending)
        tool_call = method == sc.MCP_TOOL_METHOD
        out.append(
            self._event(
                run_id,
                EventKind.TOOL_STARTED if tool_call else EventKind.REQUEST_STARTED,
                method,
                ts,
                frame,
                tool_name=tool,
                name=None if tool_call else method,
                call_id=call_id,
                arguments=json_text(params.get("arguments")) if tool_call else None,
                attributes=attributes,
            )
        )
        return out

    def _client_notification(
        self, method: str, params: dict[str, Any], scope: str, frame: Frame, ts: tuple[int, bool]
    ) -> list[AgentEvent]:
        if method == _CANCELLED:
            rid = valid_id(params.get("requestId"))
            pending = self._pending.drop((scope, rid)) if rid is not None else None
            if pending is not None:
                reason = opt_str(params, "reason") or "cancelled by the client"
                return [self._end(pending, ts, frame, error=reason, error_type="cancelled")]
        run_id = self._latest_run(scope)
        if run_id is None:
            return []  # nothing of this session or exchange was seen: nothing to attach it to
        return [self._event(run_id, EventKind.CUSTOM, method, ts, frame, name=method)]

    # -- the server's messages ------------------------------------------------------
    def _server_message(
        self,
        message: dict[str, Any],
        data: bytes,
        session: str | None,
        scope: str,
        exchange: str,
        ts: tuple[int, bool],
    ) -> list[AgentEvent]:
        method = text(message, "method")
        rid = valid_id(message.get("id"))
        frame = Frame(None, data)
        if method is None:
            if rid is not None:
                # An initialize is sent before its session exists: its answer names the session.
                pending = self._pending.drop((scope, rid)) or self._pending.drop((EXCHANGE + exchange, rid))
                if pending is not None:
                    return self._answer(pending, message, frame, ts, session)
            error = obj(message, "error")
            if error:  # an error with no request id ("server-error"): it fails what the exchange left open
                code = opt_str(error, "code") or sc.ERROR_TYPE_OTHER
                return self._fail_exchange(exchange, code, opt_str(error, "message") or "", ts, frame, code)
            run_id = self._latest_run(scope)
            if run_id is None:
                return []
            return [self._event(run_id, EventKind.CUSTOM, "response", ts, frame, name="unpaired response")]
        params = obj(message, "params")
        if rid is not None:  # a request the server sends the client (sampling, elicitation, roots)
            run_id = self._latest_run(scope)
            if run_id is None:
                return []
            key = (SERVER + scope, rid)
            state = self._runs.get(session) if session is not None else None
            version = state.version if state is not None else None
            attributes = request_attributes(method, rid, session, version, params, message)
            self._pending.remember(key, Pending(run_id, f"{SERVER}{rid}", method, None, exchange, attributes, False))
            return [
                self._event(
                    run_id,
                    EventKind.REQUEST_STARTED,
                    method,
                    ts,
                    frame,
                    name=method,
                    call_id=f"{SERVER}{rid}",
                    attributes=attributes,
                )
            ]
        target = self._notified(method, params, scope, exchange)
        if target is None:
            run_id = self._latest_run(scope)
            if run_id is None:
                return []
            return [self._event(run_id, EventKind.CUSTOM, method, ts, frame, name=method)]
        if method == _PROGRESS:
            return [
                self._event(
                    target.run_id,
                    EventKind.PROGRESS,
                    method,
                    ts,
                    frame,
                    call_id=target.call_id,
                    status=progress_status(params),
                    text=opt_str(params, "message"),
                )
            ]
        return [
            self._event(
                target.run_id,
                EventKind.CUSTOM,
                method,
                ts,
                frame,
                call_id=target.call_id,
                status=opt_str(params, "level"),
            )
        ]

    def _notified(self, method: str, params: dict[str, Any], scope: str, exchange: str) -> Pending | None:
        """The request a server notification is about: by progress token, else the one its exchange
        (the response stream it came on) is the answer of."""
        if method == _PROGRESS:
            token = valid_id(params.get("progressToken"))
            pending = self._pending.by_progress(scope, token) if token is not None else None
            if pending is not None:
                return pending
        return self._pending.last_client_request(exchange)

    def _answer(
        self,
        pending: Pending,
        message: dict[str, Any],
        frame: Frame,
        ts: tuple[int, bool],
        session: str | None = None,
    ) -> list[AgentEvent]:
        """The response to a request (already forgotten by the table): its span ends, as does its own run."""
        error = message.get("error")
        if isinstance(error, dict):
            code = opt_str(error, "code") or sc.ERROR_TYPE_OTHER
            out = [self._end(pending, ts, frame, error=opt_str(error, "message") or "", error_type=code, code=code)]
        else:
            result = obj(message, "result")
            if pending.method == _INITIALIZE and session is not None:
                self._negotiated(pending, result, session)
            if pending.tool is not None and result.get("isError") is True:
                out = [self._end(pending, ts, frame, error=error_text(result), error_type=sc.ERROR_TOOL)]
            else:
                out = [self._end(pending, ts, frame, result=json_text(tool_result(result)))]
        if pending.own_run:
            out.append(self._event(pending.run_id, EventKind.RUN_FINISHED, "response", ts, None, inferred=True))
            self._runs.finished(pending.run_id)
        return out

    def _negotiated(self, pending: Pending, result: dict[str, Any], session: str) -> None:
        """A session begins: it keeps the run its initialize opened, and the version the server chose."""
        state = self._runs.session(session)
        state.version = text(result, "protocolVersion") or state.version
        state.client = state.client or pending.client
        state.join(pending.trace, pending.run_id)

    def _end(
        self,
        pending: Pending,
        ts: tuple[int, bool],
        frame: Frame | None,
        *,
        error: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
        result: str | None = None,
    ) -> AgentEvent:
        attributes = pending.attributes
        if code is not None:
            attributes = (*attributes, (sc.RPC_RESPONSE_STATUS_CODE, code))
        failed = error_type is not None
        tool = pending.tool
        if tool is not None:
            kind = EventKind.TOOL_FAILED if failed else EventKind.TOOL_COMPLETED
        else:
            kind = EventKind.REQUEST_FAILED if failed else EventKind.REQUEST_FINISHED
        return self._event(
            pending.run_id,
            kind,
            pending.method,
            ts,
            frame,
            tool_name=tool,
            name=pending.method if tool is None else None,
            call_id=pending.call_id,
            error=error,
            error_type=error_type,
            result=result if tool is not None else None,  # a request span records no result
            attributes=attributes,
        )

    def _fail_exchange(
        self,
        exchange: str,
        error_type: str,
        error: str,
        ts: tuple[int, bool],
        frame: Frame | None,
        code: str | None = None,
    ) -> list[AgentEvent]:
        """Fail every request its exchange left open (an HTTP error, an error with no request id)."""
        out: list[AgentEvent] = []
        for pending in self._pending.drop_exchange(exchange):
            out.append(self._end(pending, ts, None, error=error, error_type=error_type, code=code))
            if pending.own_run:
                out.append(self._event(pending.run_id, EventKind.RUN_FAILED, "response", ts, frame, error=error))
        return out

    def _end_session(self, session: str, ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        return [
            self._event(run_id, EventKind.RUN_FINISHED, "DELETE", ts, frame, status="session_deleted")
            for run_id in self._runs.end_session(session)
        ]

    # -- runs and state ---------------------------------------------------------------
    def _start_run(
        self,
        run_id: str,
        session: str | None,
        trace: str,
        client: str | None,
        traceparent: str | None,
        ts: tuple[int, bool],
    ) -> list[AgentEvent]:
        if not self._runs.start(run_id, session, trace):
            return []
        return [
            self._event(
                run_id,
                EventKind.RUN_STARTED,
                "request",
                ts,
                None,
                inferred=True,
                agent=client,
                traceparent=traceparent,
            )
        ]

    def _latest_run(self, scope: str) -> str | None:
        """The run a message of this session (or exchange) belongs to when it names no request."""
        run_id = self._runs.latest(scope)
        if run_id is not None or not scope.startswith(EXCHANGE):
            return run_id
        pending = self._pending.first_of_exchange(scope[len(EXCHANGE) :])
        return pending.run_id if pending is not None else None

    def _event(
        self,
        run_id: str,
        kind: EventKind,
        original_type: str,
        ts: tuple[int, bool],
        frame: Frame | None,
        **fields: Unpack[EventFields],
    ) -> AgentEvent:
        return make_event(self._ctx, NAME, run_id, kind, original_type, ts[0], frame, ts[1], **fields)


DIALECT = McpDialect()
