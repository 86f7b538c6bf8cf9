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
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Unpack

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.dialects._mcp_wire import (
    Pending,
    Session,
    error_text,
    header,
    progress_status,
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
from otel_bridge.dialects.framing import Frame, parse_sse
from otel_bridge.model import AgentEvent, EventKind

NAME = "mcp"

_DIRECTIONS = frozenset({"request", "response"})
_META_PREFIX = "io.modelcontextprotocol/"
_PROGRESS = "notifications/progress"
_CANCELLED = "notifications/cancelled"
_INITIALIZE = "initialize"
_TARGET_PARAM = {"prompts/get": (sc.GEN_AI_PROMPT_NAME, "name")}
_RESOURCE_METHODS = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
_TRANSPORT = ((sc.NETWORK_TRANSPORT, "tcp"), (sc.NETWORK_PROTOCOL_NAME, "http"))
# Requests awaiting their responses, remembered at most: a peer that never answers must not grow
# the table (its spans are closed by the mapper's span timeout).
MAX_PENDING = 10_000
MAX_SESSIONS = 10_000

_json_decode = msgspec.json.Decoder().decode
_json_encode = msgspec.json.Encoder().encode


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
        self._pending: OrderedDict[tuple[str, str], Pending] = OrderedDict()  # (scope, id)
        self._progress: dict[tuple[str, str], tuple[str, str]] = {}  # (scope, token) -> pending key
        self._by_exchange: dict[str, dict[tuple[str, str], None]] = {}  # exchange -> its pending keys, in order
        self._calls: set[tuple[str, str]] = set()  # (run id, call id) in flight
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._started: OrderedDict[str, None] = OrderedDict()  # runs given their start

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
        messages = self._messages(record)
        out: list[AgentEvent] = []
        if direction == "request":
            version = header(record.get("headers"), "mcp-protocol-version")
            for message, data in messages:
                out.extend(self._client_message(message, data, session, exchange, version, ts))
            return out
        scope = session or f"x{exchange}"
        for message, data in messages:
            out.extend(self._server_message(message, data, session, scope, exchange, ts))
        status = opt_int(record, "status")
        if status is not None and status >= 400:
            out.extend(self._fail_exchange(exchange, str(status), f"HTTP {status}", ts, frame))
        if http_method == "DELETE" and session is not None and (status is None or status < 300):
            out.extend(self._end_session(session, ts, frame))
        return out

    def _messages(self, record: dict[str, Any]) -> list[tuple[dict[str, Any], bytes]]:
        """The JSON-RPC messages a record's body holds, each with its JSON text (a span event's payload)."""
        body = record.get("body")
        if body is None:
            return []
        if isinstance(body, str):
            out: list[tuple[dict[str, Any], bytes]] = []
            for sse in parse_sse(body):
                if not sse.data.strip():
                    continue  # a priming event (resumable streams): no message
                try:
                    message = _json_decode(sse.data)
                except msgspec.DecodeError as exc:
                    raise DecodeError(f"MCP response: an SSE event is not JSON: {exc}") from None
                out.extend(self._batch(message, sse.data))
            return out
        return self._batch(body, None)

    @staticmethod
    def _batch(body: object, data: bytes | None) -> list[tuple[dict[str, Any], bytes]]:
        if isinstance(body, dict):
            return [(body, data if data is not None else _json_encode(body))]
        if isinstance(body, list):  # a JSON-RPC batch (protocol 2025-03-26)
            return [(m, _json_encode(m)) for m in body if isinstance(m, dict)]
        raise DecodeError(f"MCP exchange record: body must be a JSON-RPC message, got {type(body).__name__}")

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
        scope = session or f"x{exchange}"
        if method is None:
            if rid is not None:  # the client's answer to a request the server sent
                return self._answer(("srv:" + scope, rid), message, frame, ts)
            raise DecodeError("MCP request: a JSON-RPC message with neither method nor id")
        state = self._session(session) if session is not None else None
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
        own_run = session is None and trace_id_of(traceparent) is None and method != _INITIALIZE
        run_id = self._run_id(session, exchange, traceparent, ts)
        out = self._start_run(run_id, session, trace_id_of(traceparent) or "", client, traceparent, ts)
        key = (scope, rid)
        call_id = rid if (run_id, rid) not in self._calls else f"{rid}#{exchange}"  # one id in flight twice
        attributes = self._attributes(method, rid, session, version, params, message)
        tool = text(params, "name") if method == sc.MCP_TOOL_METHOD else None
        token = valid_id(meta.get("progressToken"))
        self._remember(
            key,
            Pending(
                run_id,
                call_id,
                method,
                tool,
                exchange,
                attributes,
                own_run,
                trace_id_of(traceparent) or "",
                client,
                token,
            ),
        )
        if method == sc.MCP_TOOL_METHOD:
            out.append(
                self._event(
                    run_id,
                    EventKind.TOOL_STARTED,
                    method,
                    ts,
                    frame,
                    tool_name=tool,
                    call_id=call_id,
                    arguments=json_text(params.get("arguments")),
                    attributes=attributes,
                )
            )
        else:
            out.append(
                self._event(
                    run_id,
                    EventKind.REQUEST_STARTED,
                    method,
                    ts,
                    frame,
                    name=method,
                    call_id=call_id,
                    attributes=attributes,
                )
            )
        return out

    def _client_notification(
        self, method: str, params: dict[str, Any], scope: str, frame: Frame, ts: tuple[int, bool]
    ) -> list[AgentEvent]:
        if method == _CANCELLED:
            rid = valid_id(params.get("requestId"))
            pending = self._drop((scope, rid)) if rid is not None else None
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
                key = (scope, rid) if (scope, rid) in self._pending else (f"x{exchange}", rid)
                if key in self._pending:
                    return self._answer(key, message, frame, ts, session)
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
            key = ("srv:" + scope, rid)
            state = self._sessions.get(session) if session is not None else None
            version = state.version if state is not None else None
            attributes = self._attributes(method, rid, session, version, params, message)
            self._remember(key, Pending(run_id, f"srv:{rid}", method, None, exchange, attributes, False))
            return [
                self._event(
                    run_id,
                    EventKind.REQUEST_STARTED,
                    method,
                    ts,
                    frame,
                    name=method,
                    call_id=f"srv:{rid}",
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
            key = self._progress.get((scope, token)) if token is not None else None
            if key is not None and key in self._pending:
                return self._pending[key]
        for key in reversed(self._by_exchange.get(exchange, {})):
            if not key[0].startswith("srv:"):
                return self._pending[key]
        return None

    def _answer(
        self,
        key: tuple[str, str],
        message: dict[str, Any],
        frame: Frame,
        ts: tuple[int, bool],
        session: str | None = None,
    ) -> list[AgentEvent]:
        pending = self._drop(key)
        if pending is None:
            return []
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
            self._started.pop(pending.run_id, None)
        return out

    def _negotiated(self, pending: Pending, result: dict[str, Any], session: str) -> None:
        """A session begins: it keeps the run its initialize opened, and the version the server chose."""
        state = self._session(session)
        state.version = text(result, "protocolVersion") or state.version
        state.client = state.client or pending.client
        if state.runs is None:
            state.runs = {}
        state.runs.setdefault(pending.trace, pending.run_id)

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
        if pending.tool is not None:
            kind = EventKind.TOOL_FAILED if failed else EventKind.TOOL_COMPLETED
            return self._event(
                pending.run_id,
                kind,
                pending.method,
                ts,
                frame,
                tool_name=pending.tool,
                call_id=pending.call_id,
                error=error,
                error_type=error_type,
                result=result,
                attributes=attributes,
            )
        kind = EventKind.REQUEST_FAILED if failed else EventKind.REQUEST_FINISHED
        return self._event(
            pending.run_id,
            kind,
            pending.method,
            ts,
            frame,
            name=pending.method,
            call_id=pending.call_id,
            error=error,
            error_type=error_type,
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
        for key in list(self._by_exchange.get(exchange, {})):
            pending = self._drop(key)
            if pending is None:
                continue
            out.append(self._end(pending, ts, None, error=error, error_type=error_type, code=code))
            if pending.own_run:
                out.append(self._event(pending.run_id, EventKind.RUN_FAILED, "response", ts, frame, error=error))
        return out

    def _end_session(self, session: str, ts: tuple[int, bool], frame: Frame) -> list[AgentEvent]:
        state = self._sessions.pop(session, None)
        if state is None or not state.runs:
            return []
        out = []
        for run_id in state.runs.values():
            out.append(self._event(run_id, EventKind.RUN_FINISHED, "DELETE", ts, frame, status="session_deleted"))
            self._started.pop(run_id, None)
        return out

    # -- runs and state ---------------------------------------------------------------
    def _run_id(self, session: str | None, exchange: str, traceparent: str | None, ts: tuple[int, bool]) -> str:
        trace = trace_id_of(traceparent)
        if session is not None:
            state = self._sessions.get(session)
            known = state.runs.get(trace or "") if state is not None and state.runs else None
            if known is not None:
                return known
            return f"mcp:{session}" if trace is None else f"mcp:{session}:{trace}"
        if trace is not None:
            return f"mcp:trace:{trace}"
        # A stateless request without trace context is a run of its own, named by what the log says of it
        # (its exchange and time when logged with one), so that a replay of the log rebuilds the same ids.
        where = f"{exchange}@{ts[0]}" if ts[1] else f"{self._ctx.stream_key}:{exchange}"
        return f"mcp:{where}"

    def _start_run(
        self,
        run_id: str,
        session: str | None,
        trace: str,
        client: str | None,
        traceparent: str | None,
        ts: tuple[int, bool],
    ) -> list[AgentEvent]:
        if run_id in self._started:
            self._started.move_to_end(run_id)
            return []
        self._started[run_id] = None
        if len(self._started) > MAX_PENDING:
            self._started.popitem(last=False)
        if session is not None:
            state = self._session(session)
            if state.runs is None:
                state.runs = {}
            state.runs.setdefault(trace, run_id)
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
        session = self._sessions.get(scope)
        if session is not None and session.runs:
            return next(reversed(session.runs.values()))
        for key in self._by_exchange.get(scope[1:], {}) if scope.startswith("x") else ():
            return self._pending[key].run_id
        return None

    def _session(self, session: str) -> Session:
        state = self._sessions.get(session)
        if state is None:
            state = self._sessions[session] = Session()
            if len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return state

    def _remember(self, key: tuple[str, str], pending: Pending) -> None:
        self._drop(key)  # the same id again before its answer: the first is given up
        self._pending[key] = pending
        self._calls.add((pending.run_id, pending.call_id))
        self._by_exchange.setdefault(pending.exchange, {})[key] = None
        if pending.token is not None:
            self._progress[(key[0], pending.token)] = key
        if len(self._pending) > MAX_PENDING:
            self._drop(next(iter(self._pending)))

    def _drop(self, key: tuple[str, str]) -> Pending | None:
        """Forget a request (answered, failed, cancelled or evicted): every index of it goes with it."""
        pending = self._pending.pop(key, None)
        if pending is None:
            return None
        self._calls.discard((pending.run_id, pending.call_id))
        keys = self._by_exchange.get(pending.exchange)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._by_exchange[pending.exchange]
        if pending.token is not None and self._progress.get((key[0], pending.token)) == key:
            del self._progress[(key[0], pending.token)]
        return pending

    @staticmethod
    def _attributes(
        method: str,
        rid: str,
        session: str | None,
        version: str | None,
        params: dict[str, Any],
        message: dict[str, Any],
    ) -> tuple[tuple[str, str | int | bool], ...]:
        out: list[tuple[str, str | int | bool]] = [(sc.MCP_METHOD_NAME, method), (sc.JSONRPC_REQUEST_ID, rid)]
        if session is not None:
            out.append((sc.MCP_SESSION_ID, session))
        if version is not None:
            out.append((sc.MCP_PROTOCOL_VERSION, version))
        jsonrpc = opt_str(message, "jsonrpc")
        if jsonrpc is not None and jsonrpc != "2.0":
            out.append((sc.JSONRPC_PROTOCOL_VERSION, jsonrpc))
        target = _TARGET_PARAM.get(method)
        if target is not None and (value := text(params, target[1])) is not None:
            out.append((target[0], value))
        if method in _RESOURCE_METHODS and (uri := text(params, "uri")) is not None:
            out.append((sc.MCP_RESOURCE_URI, uri))
        out.extend(_TRANSPORT)
        return tuple(out)

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
