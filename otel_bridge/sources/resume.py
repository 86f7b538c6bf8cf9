"""Which request a subscription sends next: the first one, and the one after the connection ends.

A ``GET`` stream only reads: it is asked for again after every end, forever
(with ``Last-Event-ID`` when the upstream numbers its events). A ``POST``
starts work upstream (an A2A task, a LangGraph run, an ADK invocation):
sending it again would start that work again. So a ``POST`` subscription

* is done when the upstream ends the stream cleanly (the run it started is over);
* after a dropped connection (or a retryable failure), is sent again only if no
  frame came yet (nothing started that the stream has shown);
* after frames came, is resumed only where the protocol can join the work under
  way without starting it again: A2A streams resubscribe to the task read off the
  frames (``SubscribeToTask``, 0.3 ``tasks/resubscribe``) unless it reached a state
  that ends a stream; a LangGraph run on a thread
  (``/threads/{thread_id}/runs/stream``) is joined at
  ``GET /threads/{thread_id}/runs/{run_id}/stream`` (``Last-Event-ID`` when the run
  was created with ``stream_resumable``). Anything else (ADK ``run_sse``, a
  LangGraph run without a thread) cannot be resumed: the subscription stops and
  says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec

from otel_bridge.dialects import _a2a_wire as a2a_wire
from otel_bridge.dialects.framing import Frame

_json_decode = msgspec.json.Decoder().decode
_LANGGRAPH_THREAD_RUN = re.compile(r"^(?P<base>.*)/threads/(?P<thread>[^/]+)/runs/stream/?$")
_STREAM_MODE = "stream_mode"


@dataclass(frozen=True)
class Request:
    """One request that opens a stream; ``purpose`` is shown on ``/v1/sources``."""

    method: str
    url: str
    body: bytes | None = None
    purpose: str = "subscribe"


class Stop(Exception):
    """No request follows: the subscription is over (``str`` says why)."""


class ResumePlan(Protocol):
    """Reads a subscription's frames and says which request comes next."""

    def first(self) -> Request: ...

    def observe(self, frames: Sequence[Frame]) -> None: ...

    def after(self, *, clean: bool) -> Request:
        """The next request after a connection ended (``clean``: the upstream closed it). Raises :class:`Stop`."""
        ...


def _json(frame: Frame) -> Any:
    try:
        return _json_decode(frame.data)
    except (msgspec.DecodeError, RecursionError):
        return None


class GetPlan:
    """The same ``GET`` every time: a stream the upstream serves whether or not anyone listens."""

    def __init__(self, url: str) -> None:
        self._request = Request("GET", url)

    def first(self) -> Request:
        return self._request

    def observe(self, frames: Sequence[Frame]) -> None:
        pass

    def after(self, *, clean: bool) -> Request:
        return self._request


class PostPlan:
    """A ``POST`` that starts work: sent again only while no frame has come (see the module docstring)."""

    protocol = "this protocol"

    def __init__(self, url: str, body: Any) -> None:
        self._body = body
        self._request = Request("POST", url, json.dumps(body).encode(), "start")
        self.frames = 0

    def first(self) -> Request:
        return self._request

    def observe(self, frames: Sequence[Frame]) -> None:
        self.frames += len(frames)

    def after(self, *, clean: bool) -> Request:
        if clean:
            raise Stop("done: the upstream ended the stream")
        if self.frames == 0:
            return self._request
        resumed = self.resume()
        if resumed is None:
            raise Stop(
                f"the stream dropped after {self.frames} frames and {self.protocol} cannot join the run under way; "
                "not sent again (it would start the work again)"
            )
        return resumed

    def resume(self) -> Request | None:
        """The request that joins the work under way, if the protocol has one."""
        return None


class A2aPlan(PostPlan):
    """An A2A streaming request: after a drop, resubscribe to the task the frames named."""

    protocol = "A2A"

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        super().__init__(url, body)
        self._url = url
        self.task_id: str | None = None
        self.state: str | None = None

    def observe(self, frames: Sequence[Frame]) -> None:
        super().observe(frames)
        for frame in frames:
            task_id, state = a2a_wire.task_of(_json(frame))
            self.task_id = task_id or self.task_id
            self.state = state or self.state

    def after(self, *, clean: bool) -> Request:
        if clean and self.task_id is not None and self.state not in a2a_wire.ENDS_STREAM:
            return self._resubscribe(self.task_id)  # closed while the task still runs: follow it on
        return super().after(clean=clean)

    def resume(self) -> Request | None:
        if self.task_id is None or self.state in a2a_wire.ENDS_STREAM:
            return None
        return self._resubscribe(self.task_id)

    def _resubscribe(self, task_id: str) -> Request:
        body = a2a_wire.resubscribe_body(self._body, task_id)
        return Request("POST", self._url, json.dumps(body).encode(), f"resubscribe {task_id}")


class LangGraphThreadPlan(PostPlan):
    """A LangGraph run on a thread: after a drop, join its stream by run id."""

    protocol = "LangGraph"

    def __init__(self, url: str, body: Any, base: str, thread_id: str) -> None:
        super().__init__(url, body)
        self._base = base
        self._thread = thread_id
        self.run_id: str | None = None

    def observe(self, frames: Sequence[Frame]) -> None:
        super().observe(frames)
        for frame in frames:
            if frame.event == "metadata" and self.run_id is None:
                d = _json(frame)
                run_id = d.get("run_id") if isinstance(d, dict) else None
                self.run_id = run_id if isinstance(run_id, str) and run_id else None

    def resume(self) -> Request | None:
        if self.run_id is None:
            return None
        modes = self._body.get(_STREAM_MODE) if isinstance(self._body, dict) else None
        modes = [modes] if isinstance(modes, str) else modes
        query = urlencode([(_STREAM_MODE, m) for m in modes if isinstance(m, str)]) if isinstance(modes, list) else ""
        parts = urlsplit(f"{self._base}/threads/{self._thread}/runs/{self.run_id}/stream")
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        return Request("GET", url, None, f"join run {self.run_id}")


def plan_for(method: str, url: str, body: Any) -> ResumePlan:
    """The plan for a source's request: by method, then by what the body or the URL says the protocol is."""
    if method == "GET":
        return GetPlan(url)
    if a2a_wire.streaming_method(body) is not None:
        return A2aPlan(url, body)
    parts = urlsplit(url)
    thread = _LANGGRAPH_THREAD_RUN.match(parts.path)
    if thread is not None:
        base = urlunsplit((parts.scheme, parts.netloc, thread["base"], "", ""))
        return LangGraphThreadPlan(url, body, base, thread["thread"])
    return PostPlan(url, body)
