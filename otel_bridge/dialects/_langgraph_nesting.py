"""Nested graphs (subgraphs) open in one LangGraph run: which agent spans open and end.

A subgraph is a node of its parent graph that is itself a graph. Its frames carry
its namespace: the ``|``-separated ``node:<task id>`` path of
``langgraph_checkpoint_ns`` (without the node task itself), and, with
``stream_subgraphs``, the SSE event name (``messages|outer:<task id>``). Each
namespace segment is one invocation of one subgraph: one nested agent span, keyed by
its path, opened by the first frame inside it and under the agent of the path
before it (the parent graph's node runs it, and node chains open no span).

It ends on the first of: the end (or error) of the chain whose own namespace is that
path (``events`` mode), the parent graph's ``updates`` frame for the node that ran it
(the node is done), a frame of the parent graph while no ``updates`` come (``messages``
mode alone), the end of the run. A path once ended is not opened again: a late frame
of it is mapped where it lands rather than as a second span with the same id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otel_bridge.dialects._langgraph_wire import node_of


@dataclass(frozen=True)
class AgentChange:
    """A nested agent span opening (``started``) or ending."""

    started: bool
    key: str  # the namespace path: the span's call id
    node: str  # the parent graph's node that runs the subgraph
    agent: str | None = None


@dataclass
class NestedGraphs:
    open: dict[str, str | None] = field(default_factory=dict)  # path -> agent name, outermost first
    done: set[str] = field(default_factory=set)

    def enter(self, namespace: tuple[str, ...], agent: str | None) -> list[AgentChange]:
        """A frame inside ``namespace``: the agents of its path not yet open open now (``agent`` names the
        innermost; the others are named after their node)."""
        out: list[AgentChange] = []
        for depth in range(1, len(namespace) + 1):
            key = "|".join(namespace[:depth])
            if key in self.open or key in self.done:
                continue
            node = node_of(namespace[depth - 1])
            name = (agent if depth == len(namespace) else None) or node
            self.open[key] = name
            out.append(AgentChange(True, key, node, name))
        return out

    def leave(self, key: str) -> list[AgentChange]:
        """The subgraph at ``key`` ended: it and whatever is still open inside it end, innermost first."""
        if key not in self.open:
            return []
        inside = [k for k in self.open if k == key or k.startswith(key + "|")]
        return [self._end(k) for k in reversed(inside)]

    def leave_outside(self, namespace: tuple[str, ...]) -> list[AgentChange]:
        """A frame of ``namespace``: the agents not on its path have ended."""
        path = {"|".join(namespace[:depth]) for depth in range(1, len(namespace) + 1)}
        return [self._end(k) for k in reversed(list(self.open)) if k not in path]

    def node_done(self, namespace: tuple[str, ...], node: str) -> list[AgentChange]:
        """The graph at ``namespace`` says its ``node`` is done: the subgraphs that node ran end."""
        prefix = "|".join(namespace)
        out: list[AgentChange] = []
        for key in list(self.open):
            parent, _, last = key.rpartition("|")
            if key in self.open and parent == prefix and node_of(last) == node:
                out.extend(self.leave(key))
        return out

    def leave_all(self) -> list[AgentChange]:
        return [self._end(k) for k in reversed(list(self.open))]

    def _end(self, key: str) -> AgentChange:
        agent = self.open.pop(key)
        self.done.add(key)
        return AgentChange(False, key, node_of(key.rpartition("|")[2]), agent)
