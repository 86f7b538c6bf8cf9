"""What the A2A decoder keeps per task: its run, its stream's method, open tool calls, artifacts in pieces.

One task is one run; a stream (the first, or a resubscription) is one span of it,
named by ``method`` while it is open. An artifact sent in chunks (``append``,
``lastChunk``) is assembled here and mapped once complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otel_bridge.dialects._a2a_wire import parts_text
from otel_bridge.dialects._adk_calls import FunctionCalls
from otel_bridge.dialects._shapes import obj, text


@dataclass
class Artifact:
    artifact_id: str
    first_ns: int  # the time of its first chunk: a model answer's start
    name: str | None
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        return "".join(self.parts) or None


@dataclass
class Task:
    run_id: str
    context: str | None = None  # the contextId: the conversation
    method: str | None = None  # the open stream's method; None between streams
    agent: str | None = None
    state: str | None = None
    error_code: str | None = None  # adk_error_code seen: the code of the failure that follows
    calls: FunctionCalls = field(default_factory=FunctionCalls)  # the tool calls open
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    ended: bool = False

    def artifact_chunk(self, update: dict[str, Any], at_ns: int) -> Artifact | None:
        """One ``artifactUpdate``: the artifact once its last chunk came, else ``None`` (still assembling)."""
        artifact = obj(update, "artifact")
        artifact_id = text(artifact, "artifactId") or "artifact"
        pending = self.artifacts.get(artifact_id)
        if pending is None or update.get("append") is not True:
            pending = self.artifacts[artifact_id] = Artifact(artifact_id, at_ns, text(artifact, "name"))
        said = parts_text(artifact)
        if said is not None:
            pending.parts.append(said)
        if update.get("lastChunk") is not True:
            return None
        return self.artifacts.pop(artifact_id)
