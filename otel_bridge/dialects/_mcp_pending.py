"""The MCP decoder's requests awaiting their responses: one bounded table, and the indexes into it.

A request is remembered under ``(scope, JSON-RPC id)`` until its response (or a
cancellation, an HTTP error, an error with no id) ends it. The scope is the
session id, or ``x<exchange>`` for a request outside any session; a request the
server sends the client is kept under ``srv:<scope>`` (its ids are the server's,
so they may repeat the client's). Beside the table:

* the requests each exchange (one HTTP request and its response stream) carried,
  in order: a notification on a response stream is about the request it answers,
  and an HTTP error fails every request its exchange left open;
* progress tokens: a progress notification names its request by the token the
  request asked for, not by its id;
* the ``(run, call id)`` pairs in flight: a client that reuses an id while the
  first use is open gets a second span, not one that ends the other.

Forgetting a request removes it from every index at once, so they never name a
request that is gone. Bound: at most :data:`MAX_PENDING` requests; past that the
oldest is given up (a peer that never answers must not grow the table; the
mapper's span timeout closes its span).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from otel_bridge.dialects._mcp_wire import Attributes

MAX_PENDING = 10_000

EXCHANGE = "x"
"""The scope prefix of a request outside any session: ``x<exchange>``."""
SERVER = "srv:"
"""The scope prefix of the requests the server sends the client."""

Key = tuple[str, str]
"""``(scope, JSON-RPC id)``."""


@dataclass
class Pending:
    """A request awaiting its response: where its events go, and what its response needs to know."""

    run_id: str
    call_id: str
    method: str
    tool: str | None
    exchange: str
    attributes: Attributes
    own_run: bool  # a stateless request with no trace context: its run ends with it
    trace: str = ""  # the caller's trace id, if the request named one
    client: str | None = None  # the client's name, if it said
    token: str | None = None  # its progress token, if it asked for progress


class PendingRequests:
    """Requests awaiting their responses by ``(scope, id)``, with their exchanges, progress tokens and calls."""

    __slots__ = ("_by_exchange", "_calls", "_limit", "_pending", "_progress")

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self._limit = limit
        self._pending: OrderedDict[Key, Pending] = OrderedDict()
        self._progress: dict[Key, Key] = {}  # (scope, token) -> the request's key
        self._by_exchange: dict[str, dict[Key, None]] = {}  # exchange -> its requests' keys, in order
        self._calls: set[tuple[str, str]] = set()  # (run id, call id) in flight

    def __contains__(self, key: Key) -> bool:
        return key in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def in_flight(self, run_id: str, call_id: str) -> bool:
        """Whether a request of ``run_id`` with this call id is still open."""
        return (run_id, call_id) in self._calls

    def remember(self, key: Key, pending: Pending) -> None:
        """A request sent: the same key again before its answer gives the first up."""
        self.drop(key)
        self._pending[key] = pending
        self._calls.add((pending.run_id, pending.call_id))
        self._by_exchange.setdefault(pending.exchange, {})[key] = None
        if pending.token is not None:
            self._progress[(key[0], pending.token)] = key
        if len(self._pending) > self._limit:
            self.drop(next(iter(self._pending)))

    def drop(self, key: Key) -> Pending | None:
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

    def drop_exchange(self, exchange: str) -> list[Pending]:
        """Forget every request an exchange left open, in the order they were sent."""
        out: list[Pending] = []
        for key in list(self._by_exchange.get(exchange, ())):
            pending = self.drop(key)
            if pending is not None:
                out.append(pending)
        return out

    def by_progress(self, scope: str, token: str) -> Pending | None:
        """The request that asked for progress under ``token``."""
        key = self._progress.get((scope, token))
        return self._pending.get(key) if key is not None else None

    def last_client_request(self, exchange: str) -> Pending | None:
        """The latest open request the client sent in ``exchange`` (the one its response stream answers)."""
        for key in reversed(self._by_exchange.get(exchange, {})):
            if not key[0].startswith(SERVER):
                return self._pending[key]
        return None

    def first_of_exchange(self, exchange: str) -> Pending | None:
        """The first open request of ``exchange``."""
        for key in self._by_exchange.get(exchange, ()):
            return self._pending[key]
        return None
