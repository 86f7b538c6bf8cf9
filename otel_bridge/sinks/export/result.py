"""What a transport tells the links above it: one classified result per request.

The classification is the OTLP specification's: success (perhaps partial),
retryable (throttling, an unavailable or overloaded receiver, a lost
connection; perhaps with the receiver's own wait), or permanent (retrying the
same bytes cannot help).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class Outcome(enum.Enum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class SendResult:
    """One request's result. ``rejected`` is a partial success's rejected spans or data points."""

    outcome: Outcome
    detail: str = ""
    retry_after_s: float | None = None
    """The receiver's own wait (HTTP ``Retry-After``, gRPC ``RetryInfo``), a floor on the backoff."""
    rejected: int = 0


class Transport(Protocol):
    """Sends already-encoded request bytes to one OTLP endpoint. Never raises for a failed send."""

    async def send(self, body: bytes, timeout_s: float) -> SendResult: ...

    async def close(self) -> None: ...
