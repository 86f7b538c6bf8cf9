"""The bridge's own health counters.

One instance per bridge, passed down to every stage that can drop, reject or
export something; ``/metrics`` and ``/v1/health`` read it. Nothing is dropped
without a named reason here.
"""

from __future__ import annotations

from collections import Counter


class Stats:
    """Monotonic counters, each keyed by a short reason."""

    def __init__(self) -> None:
        self.events_received = 0
        self.events_rejected: Counter[str] = Counter()  # by reason
        self.dropped: Counter[str] = Counter()  # by bound or reason
        self.spans_finished = 0
        self.spans_exported: Counter[str] = Counter()  # by sink
        self.spans_export_failed: Counter[str] = Counter()  # by sink
        self.spans_resent: Counter[str] = Counter()  # by sink: sent again after a restart (at least once)
        self.export_worker_restarts = 0  # export worker processes started again after one died
        self.runs_started = 0
        self.runs_finished = 0
        self.continuations = 0  # late events that reopened a finished run's trace
        self.run_markers = 0  # "in progress" marker spans of long runs
        self.incomplete: Counter[str] = Counter()  # spans closed without an end, by reason
        self.redacted: Counter[str] = Counter()  # values blanked out, by detector (or key:<name>)
        # Feed events a lagging subscriber never got: deliveries to one client, not spans or events lost
        # by the bridge, so not in `dropped`.
        self.feed_events_lost = 0
        # Bounded memories of the mapper: nothing is lost when they forget, but what they forget is counted.
        self.event_ids_forgotten = 0  # producer event ids forgotten by the dedupe table (a re-send maps again)
        self.finished_runs_forgotten = 0  # finished runs forgotten (a late event reopens them under a new key)
        self.runs_reopened = 0  # runs seen again after they were forgotten
        # Requests (by "http") and source reads (by "source") held back by the memory budget: refused, not
        # lost (the client retries, the source resumes), so not in `events_rejected`.
        self.memory_refusals: Counter[str] = Counter()

    def reject(self, reason: str, count: int = 1) -> None:
        self.events_rejected[reason] += count

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] += count

    def snapshot(self) -> dict[str, object]:
        return {
            "events_received": self.events_received,
            "events_rejected": dict(self.events_rejected),
            "dropped": dict(self.dropped),
            "spans_finished": self.spans_finished,
            "spans_exported": dict(self.spans_exported),
            "spans_export_failed": dict(self.spans_export_failed),
            "spans_resent": dict(self.spans_resent),
            "export_worker_restarts": self.export_worker_restarts,
            "runs_started": self.runs_started,
            "runs_finished": self.runs_finished,
            "continuations": self.continuations,
            "run_markers": self.run_markers,
            "incomplete_spans": dict(self.incomplete),
            "redacted": dict(self.redacted),
            "feed_events_lost": self.feed_events_lost,
            "event_ids_forgotten": self.event_ids_forgotten,
            "finished_runs_forgotten": self.finished_runs_forgotten,
            "runs_reopened": self.runs_reopened,
            "memory_refusals": dict(self.memory_refusals),
        }
