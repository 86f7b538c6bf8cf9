"""Redaction: secrets (and, on request, personal data) blanked out of events before anything sees them.

One :class:`Redactor`, built from :class:`~otel_bridge.config.RedactionSettings`, applied at
one boundary: the bridge runs every submitted batch through :meth:`Redactor.events` before
the mapper, the store and the live feed see it. Spans, span events, the feed, the store and
whatever is logged about an event are all made from the redacted event, so none of them can
show what was blanked out. Two places read what that boundary leaves alone, and use the same
redactor: the mapper, for an event's original payload (kept raw, redacted only when a span
event carries it, before it is cut), and a sink wrapper in front of every span sink
(:class:`RedactingSink`), for the attribute-key deny list.

Detectors are regular expressions with a name; each match becomes ``[REDACTED:<name>]``. The
text they run over is often JSON (tool arguments, the original payload): the replacement has
no quote or backslash, and no detector matches one, so JSON stays valid. A detector may
replace only its ``secret`` group (``Bearer <token>`` keeps ``Bearer``). Card numbers are
replaced only when their Luhn checksum holds. Every replacement is counted by detector name
(``Stats.redacted``, shown on ``/v1/health``).

Defaults: the secret detectors on, the PII detectors off (a name or an e-mail address is
often what an agent is about; blanking them is the user's call), no user patterns, no keys.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.config import RedactionSettings
from otel_bridge.model import AgentEvent, Attributes, AttributeValue, SpanEventRecord, SpanRecord
from otel_bridge.pipeline import SpanSink


@dataclass(frozen=True, slots=True)
class Detector:
    """A named pattern; ``check`` (if any) must accept a match's text before it is replaced.

    ``needles``: literal strings every match contains (compared with the lower-cased text when
    ``fold``). The pattern runs only on text that holds one: a substring test is some thirty
    times cheaper than a regular-expression search, and nearly all text holds no secret.
    No needles: the pattern always runs (the PII detectors, the user's own patterns).
    """

    name: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None
    needles: tuple[str, ...] = ()
    fold: bool = False


def luhn_ok(text: str) -> bool:
    """The Luhn checksum of the digits in ``text`` (card numbers)."""
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Token characters never include a quote or a backslash: a match never crosses a JSON string's end.
SECRET_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.*?-----END (?:[A-Z]+ )*PRIVATE KEY-----", re.S),
        needles=("PRIVATE KEY-----",),
    ),
    Detector("anthropic_key", re.compile(r"\bsk-ant-(?:api|admin|oat)\d{2}-[A-Za-z0-9_-]{20,}"), needles=("sk-ant-",)),
    Detector("openai_key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"), needles=("sk-",)),
    Detector("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"), needles=("AIza",)),
    Detector(
        "github_token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
        needles=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Detector("huggingface_token", re.compile(r"\bhf_[A-Za-z0-9]{30,}"), needles=("hf_",)),
    Detector("groq_key", re.compile(r"\bgsk_[A-Za-z0-9]{40,}"), needles=("gsk_",)),
    Detector("slack_token", re.compile(r"\bxox[abprse]-\d{6,}-[A-Za-z0-9-]{6,}"), needles=("xox",)),
    Detector("stripe_key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}"), needles=("_live_", "_test_")),
    Detector(
        "aws_access_key_id",
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),
        needles=("AKIA", "ASIA", "AGPA", "AIDA", "AROA"),
    ),
    Detector(
        "aws_secret_access_key",
        re.compile(
            r"(?i:aws_?secret_?(?:access_?)?key)[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        needles=("secret",),
        fold=True,
    ),
    Detector(
        "jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), needles=("eyJ",)
    ),
    Detector(
        "bearer_token",
        re.compile(r"\b(?i:bearer)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)"),
        needles=("bearer",),
        fold=True,
    ),
)
PII_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "email",
        needles=("@",),
        pattern=re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    ),
    Detector("card_number", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), luhn_ok),
    # Separated groups (with an optional +country code): a bare run of digits is an id, not a phone.
    Detector(
        "phone",
        re.compile(
            r"(?<![\w+.-])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{3,4}"
            r"(?![\w.-]|[ .-]\d)"  # not a piece of a longer group of digits (a card number)
        ),
    ),
)


_TEXT_FIELDS = ("text", "error", "status", "name")
_JSON_FIELDS = ("arguments", "result")
_free_text = operator.attrgetter(*_TEXT_FIELDS, *_JSON_FIELDS)
"""An event's fields :meth:`Redactor.event` cleans, as one tuple (read in C, for the batch test)."""


def _covering(needles: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The needles as fewer substring tests, each ``(cover, members)``: text holds a needle exactly when it
    holds a cover and then (unless ``members`` is empty: the cover is the needle) one of its members.

    Each test costs about the same however short the text (~500 instructions: nearly all text is short), so
    fewer tests is what pays: a needle that holds another needle is found through that one (``sk-ant-``
    through ``sk-``), and needles that begin alike are tested through their first two characters (``gh`` for
    ``ghp_``, ``gho_``...): 15 tests instead of the secret detectors' 21 needles on text that holds none.
    """
    kept = [n for n in dict.fromkeys(needles) if not any(o != n and o in n for o in needles)]
    groups: dict[str, list[str]] = {}
    for needle in kept:
        groups.setdefault(needle[:2], []).append(needle)
    return tuple((start, tuple(group)) if len(group) > 1 else (group[0], ()) for start, group in groups.items())


def detectors_for(settings: RedactionSettings) -> tuple[Detector, ...]:
    out: list[Detector] = []
    if settings.secrets:
        out.extend(SECRET_DETECTORS)
    if settings.pii:
        out.extend(PII_DETECTORS)
    out.extend(Detector(name, re.compile(pattern)) for name, pattern in settings.patterns.items())
    return tuple(out)


class Redactor:
    """Blanks out what the detectors find and what the deny list names; counts each replacement.

    ``counts`` is the caller's counter (the bridge's ``Stats.redacted``), keyed by detector name
    (or ``key:<name>`` for a denied key).
    """

    def __init__(self, settings: RedactionSettings, counts: Counter[str]) -> None:
        self._detectors = detectors_for(settings)
        self._deny = frozenset(settings.deny_keys)
        self.counts = counts
        self._replacers = {d.name: self._replacer(d) for d in self._detectors}
        # Flat needle lists for the fast "nothing here" test; a detector without needles always runs.
        self._needles = _covering([n for d in self._detectors if not d.fold for n in d.needles])
        self._folded_needles = tuple(n for d in self._detectors if d.fold for n in d.needles)
        self._always = next((d for d in self._detectors if not d.needles), None)

    @property
    def active(self) -> bool:
        return bool(self._detectors) or bool(self._deny)

    # -- text ----------------------------------------------------------------
    def text(self, value: str) -> str:
        """``value`` with every detector's matches replaced."""
        if self._always is None and not self._may_hold_secret(value):
            return value  # the common case: no needle of any detector, so no regular expression runs
        folded: str | None = None
        for detector in self._detectors:
            if detector.needles:
                if detector.fold:
                    folded = value.lower() if folded is None else folded
                    haystack = folded
                else:
                    haystack = value
                if not any(needle in haystack for needle in detector.needles):
                    continue
            value = detector.pattern.sub(self._replacers[detector.name], value)
            folded = None
        return value

    def _may_hold_secret(self, value: str) -> bool:
        """Whether ``value`` holds any detector's needle (exactly: a cover found is checked by its members).

        Plain loops over C substring tests: measured cheaper here than one regular expression
        (an alternation of the needles, or a scan for long tokens) over the same text.
        """
        for cover, members in self._needles:
            if cover in value:
                if not members:
                    return True
                for needle in members:
                    if needle in value:
                        return True
        if self._folded_needles:
            folded = value.lower()
            for needle in self._folded_needles:
                if needle in folded:
                    return True
        return False

    def _replacer(self, detector: Detector) -> Callable[[re.Match[str]], str]:
        mark = sc.REDACTED_MARK.format(detector.name)
        has_group = "secret" in detector.pattern.groupindex

        def replace(match: re.Match[str]) -> str:
            if detector.check is not None and not detector.check(match.group(0)):
                return match.group(0)
            self.counts[detector.name] += 1
            if has_group:
                start, end = match.span("secret")
                whole = match.group(0)
                offset = match.start()
                return whole[: start - offset] + mark + whole[end - offset :]
            return mark

        return replace

    def json_text(self, value: str) -> str:
        """JSON text (or plain text): denied keys' values replaced, then the detectors run."""
        if self._deny:
            value = self._deny_in_json(value)
        return self.text(value)

    def _deny_in_json(self, value: str) -> str:
        if not any(key in value for key in self._deny):
            return value
        try:
            doc = msgspec.json.decode(value)
        except msgspec.DecodeError:
            return value
        cleaned, changed = self._walk(doc)
        return msgspec.json.encode(cleaned).decode() if changed else value

    def _walk(self, doc: object) -> tuple[object, bool]:
        if isinstance(doc, dict):
            changed = False
            out: dict[object, object] = {}
            for key, item in doc.items():
                if key in self._deny:
                    self.counts[f"key:{key}"] += 1
                    out[key] = sc.REDACTED_MARK.format(key)
                    changed = True
                else:
                    out[key], sub = self._walk(item)
                    changed = changed or sub
            return out, changed
        if isinstance(doc, list):
            items = [self._walk(item) for item in doc]
            return [item for item, _ in items], any(sub for _, sub in items)
        return doc, False

    # -- events --------------------------------------------------------------
    def event(self, event: AgentEvent) -> AgentEvent:
        """The event with its free-text fields redacted (ids are left alone: they key the spans).

        Not its original ``payload``: that leaves the sidecar only as a span event's
        ``otel_bridge.event.payload``, and the mapper runs it through :meth:`json_text` there,
        before cutting it. Most events' payloads never leave (span starts and ends, chunks), and
        scanning every one cost as much as decoding it (BENCHMARKS.md).
        """
        changes: dict[str, object] = {}
        for field in _TEXT_FIELDS:
            value = getattr(event, field)
            if value is not None:
                new = self.text(value)
                if new != value:
                    changes[field] = new
        for field in _JSON_FIELDS:
            value = getattr(event, field)
            if value is not None:
                new = self.json_text(value)
                if new != value:
                    changes[field] = new
        return msgspec.structs.replace(event, **changes) if changes else event

    def events(self, events: Sequence[AgentEvent]) -> Sequence[AgentEvent]:
        """A batch, redacted (the same sequence when nothing was found).

        Nearly every batch holds no secret: the batch's free text is joined once (read in C) and
        tested once for every needle, so such a batch costs no Python work per event. Only a batch
        where a needle appears (or with a detector that has none, or a deny list) is redacted event
        by event.
        """
        if not self.active:
            return events
        if self._always is None and not self._deny:
            # NUL joins the fields: no needle holds one, so none is found across two of them.
            joined = "\x00".join(filter(None, chain.from_iterable(map(_free_text, events))))
            if not self._may_hold_secret(joined):
                return events
        out = [self.event(e) for e in events]
        return events if all(a is b for a, b in zip(out, events, strict=True)) else out

    # -- spans (the attribute-key deny list) ------------------------------------
    def attributes(self, attributes: Mapping[str, AttributeValue]) -> Attributes | None:
        """``attributes`` with denied keys' values replaced; ``None`` when none is present."""
        hit = [k for k in attributes if k in self._deny]
        if not hit:
            return None
        out = dict(attributes)
        for key in hit:
            self.counts[f"key:{key}"] += 1
            out[key] = sc.REDACTED_MARK.format(key)
        return out

    def span(self, span: SpanRecord) -> SpanRecord:
        attrs = self.attributes(span.attributes)
        events: list[SpanEventRecord] | None = None
        for i, ev in enumerate(span.events):
            ev_attrs = self.attributes(ev.attributes)
            if ev_attrs is not None:
                events = events if events is not None else list(span.events)
                events[i] = SpanEventRecord(ev.name, ev.time_ns, ev_attrs)
        if attrs is None and events is None:
            return span
        return msgspec.structs.replace(
            span,
            attributes=attrs if attrs is not None else span.attributes,
            events=tuple(events) if events is not None else span.events,
        )

    def spans(self, spans: Iterable[SpanRecord]) -> list[SpanRecord]:
        return [self.span(s) for s in spans]


class RedactingSink:
    """A :class:`~otel_bridge.pipeline.SpanSink` that applies the attribute-key deny list, then hands on."""

    def __init__(self, redactor: Redactor, inner: SpanSink) -> None:
        self._redactor = redactor
        self._inner = inner

    def consume(self, spans: Sequence[SpanRecord]) -> None:
        self._inner.consume(self._redactor.spans(spans))
