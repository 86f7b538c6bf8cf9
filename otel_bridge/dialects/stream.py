"""One stream's decoding: JSON-decode each frame once, detect the dialect, decode.

A decoder with a typed fast path (the generic dialect's canonical JSON) takes a body's frames
in one call once the dialect is known; a first frame of canonical JSON settles detection at once.

Used by every source (HTTP ingest, upstream SSE, replay), so detection and
rejection rules are the same wherever events come from. A bad frame is
rejected with a reason and counted (``on_reject``, in this one place); it
never stops the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from otel_bridge.dialects import generic, registry
from otel_bridge.dialects.base import DecodeError, Decoder, Dialect, FastBatch, StreamContext, fast_paths
from otel_bridge.dialects.framing import DONE_SENTINEL, Frame
from otel_bridge.model import AgentEvent

log = logging.getLogger(__name__)
_json_decode = msgspec.json.Decoder().decode

TOO_DEEP = "too_deep"
"""The rejection of a frame nested deeper than the JSON decoder's limit (Python's recursion limit)."""
_TOO_DEEP_MESSAGE = "JSON nested too deeply (the limit is about 1,000 levels of arrays and objects)"


@dataclass(frozen=True)
class Rejection:
    index: int  # the frame's position in the stream
    reason: str  # short and stable: counted by it
    message: str


class StreamDecoder:
    """Frames in, events out, for one stream. Detects the dialect unless one is forced.

    Each rejection is counted through ``on_reject`` (the consumer's counter) as
    it happens, and kept in :attr:`rejections` for whoever reports them (the
    HTTP answer, a replay report); a long-lived stream clears that list.
    """

    def __init__(
        self, ctx: StreamContext, dialect: Dialect | None = None, *, on_reject: Callable[[str], None] | None = None
    ) -> None:
        self._ctx = ctx
        self._on_reject = on_reject
        self._dialect = dialect
        self._decoder: Decoder | None = None
        self._fast: Callable[[Frame], list[AgentEvent] | None] | None = None
        self._batch: FastBatch | None = None
        if dialect is not None:
            self._use(dialect)
        self._pending: list[tuple[int, Frame, Any]] = []
        self._index = 0
        self.rejections: list[Rejection] = []
        self.frames_seen = 0
        self.done_markers = 0

    @property
    def dialect(self) -> str | None:
        """The dialect in use, or ``None`` while detection is still sniffing."""
        return self._dialect.name if self._dialect is not None else None

    def feed(self, frames: Iterable[Frame]) -> list[AgentEvent]:
        """Events of ``frames``; a frame that fails is rejected and counted, the others go on.

        Frames go one by one until a dialect is chosen; then, if its decoder has a batch fast
        path (:class:`~otel_bridge.dialects.base.FastDecoder`), the rest of a list of frames go
        through it in one call, each frame it does not take one by one again.
        """
        out: list[AgentEvent] = []
        frames = frames if isinstance(frames, list) else list(frames)
        at, n = 0, len(frames)
        while at < n:
            batch = self._batch
            probing = False
            if batch is None:
                if self._decoder is not None or self._pending:
                    self._feed_one(frames[at], out)
                    at += 1
                    continue
                # Detection would choose the generic dialect for a first frame of canonical JSON (its sniff is
                # asked first, and claims it): the generic batch fast path is tried on the frame straight away,
                # and settles detection if it decodes it, without the generic JSON decode and every sniff.
                self._use(generic.DIALECT)
                batch, probing = self._batch, True
                assert batch is not None
            before = len(out)
            try:
                stop = batch(frames, at, out)
            except Exception as exc:  # a value out of range (or a bug): that frame is rejected, the rest go on
                stop = at + len(out) - before
                self._index += stop - at
                self.frames_seen += stop - at + 1
                if isinstance(exc, DecodeError):
                    self._reject(self._index, exc.reason, str(exc))
                else:
                    log.exception("fast path failed on frame %d", self._index)
                    self._reject(self._index, "dialect_error", f"{type(exc).__name__}: {exc}")
                self._index += 1
                at = stop + 1
                continue
            if probing and stop == at:  # not canonical JSON (nothing of it read): detection decides, as before
                self._dialect = self._decoder = self._fast = self._batch = None
            self._index += stop - at
            self.frames_seen += stop - at
            at = stop
            if at < n:
                self._feed_one(frames[at], out)
                at += 1
        return out

    def _feed_one(self, frame: Frame, out: list[AgentEvent]) -> None:
        index = self._index
        self._index += 1
        self.frames_seen += 1
        if len(frame.data) < 16 and frame.data.strip() == DONE_SENTINEL:
            self.done_markers += 1
            return
        try:
            out.extend(self._frame(index, frame))
        except DecodeError as exc:  # a value out of range on the fast path
            self._reject(index, exc.reason, str(exc))
        except RecursionError:
            self._reject(index, TOO_DEEP, _TOO_DEEP_MESSAGE)
        except Exception as exc:  # never crash on input: count it and go on
            log.exception("dialect detection or fast path failed on frame %d", index)
            self._reject(index, "dialect_error", f"{type(exc).__name__}: {exc}")

    def hint(self, headers: Mapping[str, str]) -> list[AgentEvent]:
        """The stream's response headers: a header that names a dialect settles detection now.

        Returns the events of frames already held while sniffing (none when called before the
        first frame, as sources do on connect). A forced or detected dialect is kept.
        """
        if self._decoder is not None:
            return []
        dialect = registry.from_headers(headers)
        if dialect is None:
            return []
        self._use(dialect)
        pending, self._pending = self._pending, []
        out: list[AgentEvent] = []
        for index, frame, obj in pending:
            out.extend(self._decode(index, frame, obj))
        return out

    def _frame(self, index: int, frame: Frame) -> list[AgentEvent]:
        if self._fast is not None:
            events = self._fast(frame)
            if events is not None:
                return events
        try:
            obj = _json_decode(frame.data)
        except msgspec.DecodeError as exc:
            self._reject(index, "invalid_json", f"data is not valid JSON: {exc}")
            return []
        if self._decoder is None:
            self._pending.append((index, frame, obj))
            if len(self._pending) >= registry.SNIFF_FRAMES or registry.claims(frame, obj):
                return self._settle()
            return []
        return self._decode(index, frame, obj)

    @property
    def sniffing(self) -> bool:
        """True while frames are held because no dialect has claimed the stream yet."""
        return self._decoder is None and bool(self._pending)

    def settle(self) -> list[AgentEvent]:
        """Decide the dialect now from the frames held so far (a stream that went quiet while sniffing)."""
        return self._settle() if self.sniffing else []

    def close(self) -> list[AgentEvent]:
        out = self._settle() if self._decoder is None else []
        if self._decoder is not None:
            try:
                out.extend(self._decoder.close())
            except DecodeError as exc:  # what the held events carry is bad input (a time out of range...)
                self._reject(self._index, exc.reason, str(exc))
            except Exception as exc:  # a dialect bug must not lose the stream
                log.exception("dialect %s failed at end of stream", self.dialect)
                self._reject(self._index, "dialect_error", f"{type(exc).__name__}: {exc}")
        return out

    def _use(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._decoder = dialect.decoder(self._ctx)
        # A decoder may offer a typed fast path that skips the generic JSON decode.
        self._fast, self._batch = fast_paths(self._decoder)

    def _settle(self) -> list[AgentEvent]:
        self._use(registry.detect([(f, o) for _, f, o in self._pending]))
        pending, self._pending = self._pending, []
        out: list[AgentEvent] = []
        for index, frame, obj in pending:
            out.extend(self._decode(index, frame, obj))
        return out

    def _decode(self, index: int, frame: Frame, obj: Any) -> list[AgentEvent]:
        assert self._decoder is not None
        try:
            return self._decoder.feed(frame, obj)
        except DecodeError as exc:
            self._reject(index, exc.reason, str(exc))
        except RecursionError:
            self._reject(index, TOO_DEEP, _TOO_DEEP_MESSAGE)
        except Exception as exc:  # never crash on input: count it and go on
            log.exception("dialect %s failed on frame %d", self.dialect, index)
            self._reject(index, "dialect_error", f"{type(exc).__name__}: {exc}")
        return []

    def _reject(self, index: int, reason: str, message: str) -> None:
        self.rejections.append(Rejection(index, reason, message))
        if self._on_reject is not None:
            self._on_reject(reason)
