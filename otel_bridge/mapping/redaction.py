"""Redaction: secrets (and, on request, personal data) blanked out of events before anything sees them.

One :class:`Redactor`, built from :class:`~otel_bridge.config.RedactionSettings`, applied at
one boundary: the bridge runs every submitted batch through :meth:`Redactor.events` before
the mapper, the store and the live feed see it. Spans, span events, the feed, the store and
whatever is logged about an event are all made from the redacted event, so none of them can
show what was blanked out. Finished spans pass :meth:`Redactor.spans` as well, which applies
the attribute-key deny list (names of attributes whose values are never shown).

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

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from otel_bridge import semconv as sc
from otel_bridge.config import RedactionSettings
from otel_bridge.model import AgentEvent, Attributes, AttributeValue, SpanEventRecord, SpanRecord
from otel_bridge.pipeline import SpanSink


@dataclass(frozen=True, slots=True)
class Detector:
    """A named pattern; ``check`` (if any) must accept a match's text before it is replaced."""

    name: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None


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
    ),
    Detector("anthropic_key", re.compile(r"\bsk-ant-(?:api|admin|oat)\d{2}-[A-Za-z0-9_-]{20,}")),
    Detector("openai_key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    Detector("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),
    Detector("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    Detector("huggingface_token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    Detector("groq_key", re.compile(r"\bgsk_[A-Za-z0-9]{40,}")),
    Detector("slack_token", re.compile(r"\bxox[abprse]-\d{6,}-[A-Za-z0-9-]{6,}")),
    Detector("stripe_key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}")),
    Detector("aws_access_key_id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    Detector(
        "aws_secret_access_key",
        re.compile(
            r"(?i:aws_?secret_?(?:access_?)?key)[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
    ),
    Detector("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    Detector("bearer_token", re.compile(r"\b(?i:bearer)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)")),
)
PII_DETECTORS: tuple[Detector, ...] = (
    Detector("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
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


def detectors_for(settings: RedactionSettings) -> tuple[Detector, ...]:
    out: list[Detector] = []
    if settings.secrets:
        out.extend(SECRET_DETECTORS)
    if settings.pii:
        out.extend(PII_DETECTORS)
    out.extend(Detector(name, re.compile(pattern)) for name, pattern in settings.patterns.items())
    return tuple(out)


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def _combined(detectors: Sequence[Detector]) -> re.Pattern[str] | None:
    """One alternation of every detector (group names dropped); ``None`` if the user's patterns do not combine."""
    if not detectors:
        return None
    try:
        return re.compile("|".join(f"(?:{_NAMED_GROUP.sub('(?:', d.pattern.pattern)})" for d in detectors), re.S)
    except re.error:  # e.g. a back-reference to a named group: every detector is then tried on its own
        return None


class Redactor:
    """Blanks out what the detectors find and what the deny list names; counts each replacement.

    ``counts`` is the caller's counter (the bridge's ``Stats.redacted``), keyed by detector name
    (or ``key:<name>`` for a denied key).
    """

    def __init__(self, settings: RedactionSettings, counts: Counter[str]) -> None:
        self._detectors = detectors_for(settings)
        self._deny = frozenset(settings.deny_keys)
        self.counts = counts
        # One pass over the text answers "anything at all?" (most text has nothing).
        self._any = _combined(self._detectors)

    @property
    def active(self) -> bool:
        return bool(self._detectors) or bool(self._deny)

    # -- text ----------------------------------------------------------------
    def text(self, value: str) -> str:
        """``value`` with every detector's matches replaced."""
        if not self._detectors or (self._any is not None and self._any.search(value) is None):
            return value
        for detector in self._detectors:
            value = detector.pattern.sub(self._replacer(detector), value)
        return value

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
        """The event with its free-text fields redacted (ids are left alone: they key the spans)."""
        changes: dict[str, object] = {}
        for field in ("text", "error", "status", "name"):
            value = getattr(event, field)
            if value is not None:
                new = self.text(value)
                if new != value:
                    changes[field] = new
        for field in ("arguments", "result"):
            value = getattr(event, field)
            if value is not None:
                new = self.json_text(value)
                if new != value:
                    changes[field] = new
        if event.payload is not None:
            raw = bytes(event.payload).decode("utf-8", errors="replace")
            new = self.json_text(raw)
            if new != raw:
                changes["payload"] = msgspec.Raw(new.encode())
        return msgspec.structs.replace(event, **changes) if changes else event

    def events(self, events: Sequence[AgentEvent]) -> Sequence[AgentEvent]:
        """A batch, redacted (the same sequence when nothing was found)."""
        if not self.active:
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
