"""Runs as a UI protocol sees them, shared by the feed's UI forms (:mod:`.agui`, :mod:`.ai_sdk`).

A UI stream (an AG-UI run, an AI SDK assistant message) has one start, a body and
one end, and nothing after it. Producers do not keep to that: many have no run
start of their own, some send events after their run's end (an orchestrator's
tail, a client-side tool's result), and a producer may reuse a run id for a later
run. So a UI form sees each producer run id as a sequence of *generations*: a
generation begins with the run id's first event (its start is synthesised when
the producer sent none) or with a run start after an end, and ends with the run's
end. An event of an ended generation that is not a run start is *late*: the UI
forms hold it back and count it (``late_dropped``, in ``/v1/health``); the
canonical feed still carries it.

The book is kept in publish order, so every subscriber gets the same frames, but
lazily (:class:`LazyRunFormat`): publishing only queues a reference, and the
queue is worked through when a UI asks (a frame, a run to follow). ``/v1/health``
counts late events with :class:`LateEvents`, which places runs without translating.
With no UI subscribed the forms cost the ingest path one extend per published batch; the
first UI to attach pays for what is queued (at most ``feed.ring_size`` events).
Bounded: the least recently active runs are forgotten first, and so are queued
events past the ring's size (``skipped``); a later event of a forgotten run begins
a new generation, with a synthesised start.

Following a run (``?run_id=``, or an AG-UI ``RunAgentInput`` naming it) means its
latest generation; following a thread (``?thread_id=``) means the thread's run in
progress, or else the next one to start. A response that follows one ends after
that generation's end: each form's frame for an end carries :data:`END_OF_RUN`, an
SSE comment (ignored by clients) the route looks for. A run its producer never ends
still ends here: the bridge tells the feed a synthesised ``run.finished`` /
``run.failed`` when it closes the run itself (idle timeout, eviction, shutdown).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from otel_bridge.model import TERMINAL_RUN_KINDS, EventKind
from otel_bridge.sinks.feed.filters import Filterable
from otel_bridge.sinks.feed.item import FeedItem
from otel_bridge.sinks.feed.record import FeedRecord

MAX_RUNS = 10_000
"""Runs remembered at once (their open messages, tool calls and steps); the least recently active go first."""

MAX_PENDING = 10_000
"""Published events queued for a UI form at most (the default ``feed.ring_size``; assembly passes the setting)."""

END_OF_RUN = b": end of run\n\n"
"""An SSE comment after the last frame of a run's end: a response that follows one run stops after it."""


class Noted(NamedTuple):
    """What a UI form notes on a published event: its events (built then, without what can wait for the
    framing) and its run's names at that moment."""

    events: list[dict[str, Any]]
    thread_id: str
    run_id: str


class RunState:
    """One generation of a producer run id, as a UI form tracks it."""

    __slots__ = ("ended", "first_seq", "generation", "run_id", "thread_id", "ui_run_id")

    def __init__(self, run_id: str, generation: int, thread_id: str, first_seq: int) -> None:
        self.run_id = run_id
        self.generation = generation
        # The id a UI sees: the producer's own for the first generation, numbered after it for later ones.
        self.ui_run_id = run_id if generation == 1 else f"{run_id}#{generation}"
        self.thread_id = thread_id
        self.first_seq = first_seq
        self.ended = False


S = TypeVar("S", bound=RunState)


class RunBook(Generic[S]):
    """The generations of every run a UI form has seen (see the module docstring)."""

    def __init__(self, factory: Callable[[str, int, str, int], S], max_runs: int = MAX_RUNS) -> None:
        self._factory = factory
        self._runs: OrderedDict[str, S] = OrderedDict()
        self._threads: OrderedDict[str, str] = OrderedDict()  # thread -> its latest run id
        self._max_runs = max_runs
        self.late_dropped = 0

    def place(self, item: FeedItem) -> tuple[S | None, bool]:
        """The generation ``item`` belongs to and whether it begins it; ``(None, False)`` for a late event."""
        run_id = item.run_id
        state = self._runs.get(run_id)
        if state is None or (state.ended and item.kind is EventKind.RUN_STARTED):
            generation = 1 if state is None else state.generation + 1
            state = self._factory(run_id, generation, item.thread_id, item.seq)
            self._runs[run_id] = state
            self._runs.move_to_end(run_id)
            if len(self._runs) > self._max_runs:
                self._runs.popitem(last=False)
            self._threads[item.thread_id] = run_id
            self._threads.move_to_end(item.thread_id)
            if len(self._threads) > self._max_runs:
                self._threads.popitem(last=False)
            return state, True
        if state.ended:
            self.late_dropped += 1
            return None, False
        self._runs.move_to_end(run_id)
        if item.thread_id != state.thread_id and state.thread_id == run_id:
            # The conversation came after the run's first event (LangGraph's does): the run joins it.
            state.thread_id = item.thread_id
            self._threads[item.thread_id] = run_id
        return state, False

    def latest(self, run_id: str) -> S | None:
        """The latest generation of ``run_id`` (ended or not)."""
        return self._runs.get(run_id)

    def running_in(self, thread_id: str) -> S | None:
        """The thread's latest run, if it is still running."""
        run_id = self._threads.get(thread_id)
        state = self._runs.get(run_id) if run_id is not None else None
        return state if state is not None and not state.ended else None


class FollowThread:
    """A subscriber's filter: the first run of a thread to start from now on, and only that run.

    Matched when the hub offers what was published (once a round), after every format has
    seen all of it, so a run whose conversation is named only by its second event is still
    followed from its first. (A run id whose generation starts, ends and starts again within
    one round is followed from the generation it is in by then.)
    """

    is_everything = False  # an ItemFilter

    def __init__(self, thread_id: str, book: UiFormat) -> None:
        self._thread_id = thread_id
        self._book = book
        self._run_id: str | None = None

    def matches(self, item: Filterable) -> bool:
        if self._run_id is None:
            state = self._book.latest(item.run_id)
            if state is None or state.thread_id != self._thread_id or item.seq < state.first_seq:
                return False
            self._run_id = item.run_id
        return item.run_id == self._run_id


_END = ".end"
"""Suffix of the note key (the format's name) that marks the event ending its run."""


class LazyRunFormat(Generic[S]):
    """The run book of a UI form, kept in publish order but only when asked (see the module docstring).

    A subclass translates one published event in :meth:`_process` (notes on the item);
    its ``frame`` first calls :meth:`_catch_up` up to the event it frames.
    """

    name: str

    def __init__(self, factory: Callable[[str, int, str, int], S], max_runs: int, max_pending: int) -> None:
        self._book: RunBook[S] = RunBook(factory, max_runs)
        self._pending: deque[FeedItem] = deque(maxlen=max_pending)  # the oldest leave first
        self.skipped = 0  # published events that left the queue before a UI asked for them

    def observe(self, item: FeedItem) -> None:
        """The ingest path: queue a reference (never translates)."""
        self.observe_batch((item,))

    def observe_batch(self, items: Sequence[FeedItem]) -> None:
        """The ingest path, a published batch at once: queue the references (never translates)."""
        pending = self._pending
        over = len(pending) + len(items) - (pending.maxlen or 0)
        if over > 0:
            self.skipped += over
        pending.extend(items)

    def _catch_up(self, upto: int | None = None) -> None:
        """Translate what is queued, oldest first (up to the event with id ``upto``)."""
        pending = self._pending
        while pending and (upto is None or pending[0].seq <= upto):
            self._process(pending.popleft())

    def _process(self, item: FeedItem) -> None:
        """Place the event in its run's generation, translate it, and note the result on the item."""
        run, new = self._book.place(item)
        if run is None:
            return
        kind = item.kind
        events = self._translate(item.record, kind, run, new)
        ended = kind is EventKind.RUN_FINISHED or kind is EventKind.RUN_FAILED
        if ended:
            run.ended = True
        if not events:
            return
        notes = item.notes if item.notes is not None else {}
        # The run's names as they are now; what can wait (metadata, ids of the record) is built when framed.
        notes[self.name] = Noted(events, run.thread_id, run.ui_run_id)
        if ended:
            notes[self.name + _END] = True
        item.notes = notes

    def _translate(self, record: FeedRecord, kind: EventKind, run: S, new: bool) -> list[dict[str, Any]]:
        """This form's events for one published event (``new``: the first of its run's generation)."""
        raise NotImplementedError

    def _noted(self, item: FeedItem) -> tuple[Noted, bool] | None:
        """What was noted on ``item`` once the queue is translated up to it, and whether it ends its run."""
        self._catch_up(item.seq)
        notes = item.notes
        noted = notes.get(self.name) if notes is not None else None
        if not isinstance(noted, Noted):
            return None
        return noted, bool(notes and notes.get(self.name + _END))

    @property
    def late_dropped(self) -> int:
        """Late events among those translated so far (``/v1/health`` counts them all with :class:`LateEvents`)."""
        return self._book.late_dropped

    def latest(self, run_id: str) -> S | None:
        self._catch_up()
        return self._book.latest(run_id)

    def running_in(self, thread_id: str) -> S | None:
        self._catch_up()
        return self._book.running_in(thread_id)


class LateEvents:
    """Counts the events the UI forms hold back (after their run's end), placing runs without translating.

    Every UI form places each event in its run's generation by the same rule (:class:`RunBook`),
    so one book of bare generations, worked through only when asked (``/v1/health``), counts what
    each form holds back without making any form translate what no UI has asked for.
    """

    def __init__(self, max_runs: int = MAX_RUNS, max_pending: int = MAX_PENDING) -> None:
        self._book: RunBook[RunState] = RunBook(RunState, max_runs)
        self._pending: deque[FeedItem] = deque(maxlen=max_pending)

    def observe_batch(self, items: Sequence[FeedItem]) -> None:
        self._pending.extend(items)

    @property
    def late_dropped(self) -> int:
        pending, book = self._pending, self._book
        while pending:
            item = pending.popleft()
            run, _ = book.place(item)
            if run is not None and item.kind in TERMINAL_RUN_KINDS:
                run.ended = True
        return book.late_dropped


class UiFormat(Protocol):
    """A feed format that shows one run per stream (what the stream route needs to follow one)."""

    name: str
    media_headers: dict[str, str]

    @property
    def late_dropped(self) -> int: ...

    def latest(self, run_id: str) -> RunState | None: ...

    def running_in(self, thread_id: str) -> RunState | None: ...
