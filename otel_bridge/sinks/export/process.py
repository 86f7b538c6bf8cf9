"""OTLP export in a worker process, so sending (and, without the native encoder, encoding) uses the second core.

:class:`ProcessExporter` is the same :class:`BatchingExporter` as the in-process
one with a different sender: :class:`WorkerPipe` hands each batch to a child
process (``python -m otel_bridge.sinks.export.worker``) as a length-prefixed
frame on its stdin, and the child runs the ordinary :class:`OtlpExporter`
(durable or in-memory queue, batching, retry, backoff) on its own event loop.

What crosses the pipe depends on the encoder (BENCHMARKS.md, "OTLP encoding").
With the native encoder the sidecar encodes each batch to OTLP protobuf itself
(about as cheap as the msgpack it replaces) and sends the bytes
(:mod:`.encoded`): the worker neither decodes nor encodes, it only frames
requests. With the pure-Python encoder (about 7 us a span, against about 0.85 us
for msgpack), and for OTLP/JSON, the batch crosses as msgpack records and the
worker encodes, so that cost stays off the sidecar's event loop. Either way a
span that cannot be encoded is dropped and counted alone (``export_encode_error``);
its neighbours go on.
The child's counters come back on its stdout (:mod:`~otel_bridge.sinks.export.pipe`)
and land in the parent's :class:`Stats` as deltas. A plain subprocess, not
``multiprocessing``: nothing of the parent's ``__main__`` is re-imported.

Lifecycle: the child runs in a session of its own and ignores SIGINT and
SIGTERM, so Ctrl-C or a stop signal to the sidecar's process group (systemd's
default) cannot kill it before the parent has handed it everything; it stops
when the parent closes its stdin. If it dies anyway (the OOM killer, a kill
-9), the supervisor task counts what it had not yet made safe as
``export_worker_gone`` (what was written to the pipe and not acknowledged; with
the in-memory queue, also what it held), reports the worker down in
``last_error`` (so ``/v1/health`` says ``degraded``), and starts a new one after
a jittered backoff (0.5 s, doubling to 30 s; counted in
``export_worker_restarts``). With a durable queue the new worker resumes from
the spans the dead one left on disk. Batches that come while the worker is
down, or find its pipe closed before its exit is seen, wait for it (up to their
retry budget), then are counted as ``export_worker_gone``; meanwhile the
parent's in-memory queue holds the rest.

Concurrency: in the parent, the exporter's drain task writes batches to the
child's stdin (``drain()`` gives back-pressure without blocking the loop) and
one supervisor task (``_supervise``) starts the child, applies its reports and
restarts it. ``shutdown`` drains the queue into the pipe, closes stdin (the end
of input), and waits for the child to export what it holds and exit, bounded
by twice the export timeout plus two seconds; past that the child is killed
and what it still held in memory is counted as ``export_shutdown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import sys
import time
from pathlib import Path
from typing import cast

import msgspec

from otel_bridge.aio import cancel_and_wait, wait_event
from otel_bridge.backoff import Backoff
from otel_bridge.config import OtlpSettings
from otel_bridge.model import AttributeValue, SpanRecord
from otel_bridge.sinks import otlp_proto
from otel_bridge.sinks.export import encoded
from otel_bridge.sinks.export.batching import BatchingExporter, Delivery
from otel_bridge.sinks.export.durable_queue import SIDECAR_LOCK, DirLock
from otel_bridge.sinks.export.pipe import Init, Report, frame, frame_spans, read_frame
from otel_bridge.stats import Stats

log = logging.getLogger(__name__)

WORKER_MODULE = "otel_bridge.sinks.export.worker"
RESTART_INITIAL_S = 0.5
RESTART_MAX_S = 30.0
PIPE_BYTES = 1 << 20
"""The worker's stdin pipe, where the system allows it: a batch's frame (~200 KiB for 512 spans) in one write."""
HANDOVER_S = 0.05
"""With a durable queue, the longest a finished span waits in the sidecar before it is handed to the worker
(``schedule_delay_s`` if shorter): what the sidecar still holds is what a SIGKILL of it loses, while the
worker has written the rest to disk, and batches requests by ``schedule_delay_s`` itself. About 20 small
frames a second at most under load, each a wake-up of both processes (under 1 % of a core). With the
in-memory queue (whose spans a restart loses anyway) the hand-over keeps ``schedule_delay_s``."""
GONE_POLL_S = 0.05
"""How often a batch whose worker was found gone at the write checks whether the restart has begun."""
STABLE_S = 10.0
"""A worker that ran this long before dying restarts after the shortest wait again."""


class WorkerPipe:
    """A :class:`~otel_bridge.sinks.export.batching.BatchSender` whose far end is the worker process."""

    def __init__(self, settings: OtlpSettings, stats: Stats, init: Init, name: str) -> None:
        self._s = settings
        self._stats = stats
        self._name = name
        self._init = msgspec.msgpack.encode(init)
        # Both counters exist from the start (at 0), so a scrape shows the series before the first failure.
        stats.spans_exported[name] += 0
        stats.spans_export_failed[name] += 0
        self._encode = msgspec.msgpack.Encoder().encode
        # The parent encodes OTLP itself only with the native encoder and a protobuf protocol (see the docstring).
        proto = otlp_proto.ProtoEncoder({}, "", "", "")
        self._span_fields = proto.span_fields if proto.native and settings.protocol != "http/json" else None
        self.encoder = (
            f"OTLP protobuf, {proto.description}; encoded in the sidecar, the worker only sends"
            if self._span_fields is not None
            else f"{'OTLP/JSON' if settings.protocol == 'http/json' else 'OTLP protobuf, ' + proto.description}; "
            "encoded in the export worker"
        )
        self._decode_report = msgspec.msgpack.Decoder(Report).decode
        self._seen = Report(0, 0, {}, 0, None)
        self._handed = 0  # spans written to the current worker's stdin
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._down_reason: str | None = None
        self._closing = False

    @property
    def held(self) -> int:
        return self._seen.queue_depth + max(0, self._handed - self._seen.accepted) if self._up.is_set() else 0

    @property
    def last_error(self) -> str | None:
        return self._down_reason or self._seen.last_error

    async def start(self) -> None:
        log.info("OTLP trace export: %s", self.encoder)
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="otlp-export-worker")

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            WORKER_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**20,
            start_new_session=True,  # out of the terminal's and the group's reach: it stops when told
        )
        assert self._proc.stdin is not None
        _widen(self._proc.stdin)
        self._seen = Report(0, 0, {}, 0, None)
        self._handed = 0
        self._proc.stdin.write(frame(self._init))
        self._down_reason = None
        self._up.set()

    async def _supervise(self) -> None:
        backoff = Backoff(RESTART_INITIAL_S, RESTART_MAX_S)
        while True:
            started = time.monotonic()
            await self._read_reports()
            if self._closing:
                return
            self._up.clear()
            assert self._proc is not None
            code = await self._proc.wait()
            self._count_lost()
            self._down_reason = f"the OTLP export worker exited (code {code}); restarting it"
            log.error("%s", self._down_reason)
            if time.monotonic() - started > STABLE_S:
                backoff.reset()
            await asyncio.sleep(backoff.next_delay())
            if self._closing:
                return
            try:
                await self._spawn()
            except OSError as exc:
                self._down_reason = f"cannot start the OTLP export worker: {exc}"
                log.error("%s", self._down_reason)
                continue
            self._stats.export_worker_restarts += 1

    def _count_lost(self) -> None:
        """What a dead worker had not made safe: the unacknowledged pipe, and its memory queue."""
        lost = max(0, self._handed - self._seen.accepted)
        if not self._seen.durable:
            lost += self._seen.queue_depth
        if lost:
            self._stats.drop("export_worker_gone", lost)
        self._handed = 0
        self._seen = Report(0, 0, {}, 0, None)

    async def send_batch(self, batch: list[encoded.Item], budget_s: float) -> Delivery:
        """Write the batch to the child (the child has its own retry budget); wait for a restarting one.

        A worker found gone at the write (its pipe closed, its exit not yet seen by the supervisor) is
        treated as a worker that is down: the batch waits for the new one within its budget. Before, the
        failed write was only logged: its spans were neither handed over nor counted.
        """
        deadline = time.monotonic() + budget_s
        payload: bytes | None = None
        while True:
            if not self._up.is_set() and not self._closing:
                await wait_event(self._up, max(0.0, deadline - time.monotonic()))
            proc = self._proc
            if not self._up.is_set() or proc is None or proc.stdin is None:
                self._stats.drop("export_worker_gone", encoded.span_count(batch))
                return Delivery.SETTLED
            if payload is None:
                payload = self._payload(cast(list[SpanRecord], batch))  # the parent's queue holds records only
                if payload is None:
                    return Delivery.SETTLED
            if self._hand(proc.stdin, payload):
                break
            if self._closing or time.monotonic() >= deadline:
                self._stats.drop("export_worker_gone", frame_spans(payload))
                return Delivery.SETTLED
            await asyncio.sleep(GONE_POLL_S)  # until the supervisor has seen it exit (then `_up` is clear)
        try:
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            # The worker is dying: the supervisor counts what it had not acknowledged (this batch too).
            log.error("cannot hand spans to the OTLP export worker: %s", exc)
        return Delivery.SETTLED

    def _hand(self, stdin: asyncio.StreamWriter, payload: bytes) -> bool:
        """Write one frame; ``False`` when the pipe is already closed (nothing was written)."""
        if stdin.is_closing():
            return False
        try:
            stdin.write(frame(payload))
        except (ConnectionError, RuntimeError):  # uvloop raises on a closed pipe; asyncio's loop only logs
            return False
        self._handed += frame_spans(payload)
        return True

    def _payload(self, batch: list[SpanRecord]) -> bytes | None:
        """The frame's payload; a span that cannot be encoded is dropped and counted alone (``None``: none left)."""
        try:
            return self._serialise(batch)
        except Exception:  # a bug: one bad span must not stop the pump, nor cost its neighbours
            log.exception(
                "cannot encode a batch for the OTLP export worker; encoding its %d spans one by one", len(batch)
            )
        good = []
        for span in batch:
            try:
                self._serialise([span])
            except Exception:
                self._stats.spans_export_failed[self._name] += 1
                self._stats.drop("export_encode_error")
            else:
                good.append(span)
        return self._serialise(good) if good else None

    def _serialise(self, batch: list[SpanRecord]) -> bytes:
        if self._span_fields is not None:
            return encoded.pack(encoded.EncodedSpans(len(batch), self._span_fields(batch)))
        return self._encode(batch)

    async def _read_reports(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while (data := await read_frame(self._proc.stdout)) is not None:
            self._apply(self._decode_report(data))

    def _apply(self, report: Report) -> None:
        seen = self._seen
        if report.exported != seen.exported:
            self._stats.spans_exported[self._name] += report.exported - seen.exported
        if report.failed != seen.failed:
            self._stats.spans_export_failed[self._name] += report.failed - seen.failed
        if report.resent != seen.resent:
            self._stats.spans_resent[self._name] += report.resent - seen.resent
        for reason, count in report.dropped.items():
            delta = count - seen.dropped.get(reason, 0)
            if delta:
                self._stats.drop(reason, delta)
        self._seen = report

    async def close(self) -> None:
        """Close stdin (the end of input), let the child export what it holds (bounded), then stop it."""
        self._closing = True
        self._up.set()  # a batch waiting for a restart stops waiting
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 2 * self._s.timeout_s + 2)
        except TimeoutError:
            log.error("the OTLP export worker did not finish in time; killing it")
            if not self._seen.durable:
                self._stats.drop("export_shutdown", self._seen.queue_depth)
            proc.kill()
            await proc.wait()
        if self._supervisor is not None:
            try:
                await asyncio.wait_for(self._supervisor, 2)
            except TimeoutError:
                await cancel_and_wait(self._supervisor)


def _widen(stdin: asyncio.StreamWriter) -> None:
    """A pipe of ``PIPE_BYTES`` where the system allows it (Linux), so a batch's frame goes in one write.

    With the default 64 KiB a ~200 KiB frame crosses in pieces, each a wake-up on both sides: 2-4x the CPU
    of both processes per frame (bench/bench_worker_pipe.py; BENCHMARKS.md, the export path).
    """
    pipe = stdin.transport.get_extra_info("pipe")
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if pipe is None or setsize is None:
        return
    with contextlib.suppress(OSError):  # EPERM past /proc/sys/fs/pipe-max-size: the default stays
        fcntl.fcntl(pipe.fileno(), setsize, PIPE_BYTES)


class ProcessExporter(BatchingExporter):
    """A :class:`SpanSink` with the :class:`OtlpExporter` interface whose work runs in a child process.

    With a durable queue the sidecar takes the queue folder at once (another sidecar on the same
    folder is a :class:`~otel_bridge.config.ConfigError`); the worker writes the queue itself.
    """

    def __init__(
        self,
        settings: OtlpSettings,
        stats: Stats,
        resource: dict[str, AttributeValue],
        scope: tuple[str, str],
        schema_url: str,
    ) -> None:
        lock = None
        if settings.durable_queue_dir is not None:
            lock = DirLock(Path(settings.durable_queue_dir), SIDECAR_LOCK)
            lock.acquire_or_fail()
        stats.spans_resent[self.name] += 0
        pipe = WorkerPipe(settings, stats, Init(settings, resource, scope, schema_url), self.name)
        delay = settings.schedule_delay_s if lock is None else min(settings.schedule_delay_s, HANDOVER_S)
        super().__init__(settings, stats, pipe, lock=lock, delay_s=delay)
        self._pipe = pipe

    @property
    def encoder(self) -> str:
        """Which encoder writes the requests, and where (``/v1/health``, the startup log)."""
        return self._pipe.encoder
