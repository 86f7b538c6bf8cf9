"""Which run an MCP message belongs to: the sessions, the runs each holds, and the runs already started.

One session is one run; a request whose ``params._meta.traceparent`` names the
caller's trace joins its session's run in that trace (one run per session and
trace). A request outside any session joins the run of its trace, else is a run
of its own, named by what the log says of it (its exchange, and its time when
logged with one) so that a replay of the log rebuilds the same ids.

A :class:`Session` keeps what the client said of itself (its name, the protocol
version) and its runs by caller trace. Bounds: at most :data:`MAX_SESSIONS`
sessions (a client that never sends ``DELETE`` must not grow the table: the
oldest is forgotten) and :data:`MAX_STARTED` runs remembered as started (the
oldest first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

MAX_SESSIONS = 10_000
MAX_STARTED = 10_000


@dataclass
class Session:
    client: str | None = None
    version: str | None = None
    # The runs of this session, by caller trace id ("" without one), in order. The run an ``initialize``
    # opened (before the session had an id) is the session's own.
    runs: dict[str, str] | None = None

    def join(self, trace: str, run_id: str) -> None:
        """``run_id`` is this session's run in ``trace``, unless it has one there already."""
        if self.runs is None:
            self.runs = {}
        self.runs.setdefault(trace, run_id)


class Runs:
    """The sessions of one log (or one proxy) and the runs given their start."""

    __slots__ = ("_sessions", "_started", "_stream_key")

    def __init__(self, stream_key: str) -> None:
        self._stream_key = stream_key
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._started: OrderedDict[str, None] = OrderedDict()

    def get(self, session: str) -> Session | None:
        return self._sessions.get(session)

    def session(self, session: str) -> Session:
        """The session of this id, begun now if it is new."""
        state = self._sessions.get(session)
        if state is None:
            state = self._sessions[session] = Session()
            if len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return state

    def run_id(self, session: str | None, exchange: str, trace: str | None, ts: tuple[int, bool]) -> str:
        """The run of a request in ``session`` (or none) and the caller's ``trace`` (or none)."""
        if session is not None:
            state = self._sessions.get(session)
            known = state.runs.get(trace or "") if state is not None and state.runs else None
            if known is not None:
                return known
            return f"mcp:{session}" if trace is None else f"mcp:{session}:{trace}"
        if trace is not None:
            return f"mcp:trace:{trace}"
        where = f"{exchange}@{ts[0]}" if ts[1] else f"{self._stream_key}:{exchange}"
        return f"mcp:{where}"

    def start(self, run_id: str, session: str | None, trace: str) -> bool:
        """Whether ``run_id`` starts now (``False``: it had started); a session's run joins the session."""
        if run_id in self._started:
            self._started.move_to_end(run_id)
            return False
        self._started[run_id] = None
        if len(self._started) > MAX_STARTED:
            self._started.popitem(last=False)
        if session is not None:
            self.session(session).join(trace, run_id)
        return True

    def finished(self, run_id: str) -> None:
        self._started.pop(run_id, None)

    def latest(self, session: str) -> str | None:
        """The session's latest run (where a message that names no request goes)."""
        state = self._sessions.get(session)
        if state is not None and state.runs:
            return next(reversed(state.runs.values()))
        return None

    def end_session(self, session: str) -> list[str]:
        """The session ended (its ``DELETE``): its runs, which end with it."""
        state = self._sessions.pop(session, None)
        if state is None or not state.runs:
            return []
        for run_id in state.runs.values():
            self._started.pop(run_id, None)
        return list(state.runs.values())
