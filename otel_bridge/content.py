"""Captured content once cut to size: the one set of rules spans and the live feed share.

Content (prompts, answers, tool arguments and results) is opt-in; when captured, no
value is longer than the configured limit (``mapping.attribute_max_length``), and a cut
always says what was cut and keeps JSON valid:

* plain text keeps its head and ends with ``…[truncated N chars]``;
* JSON text that does not fit becomes a marker object
  ``{"truncated_bytes": <original size>, "prefix": "<the head of the original>"}``;
* GenAI structured messages (``[{role, parts: [...]}]``) keep their structure: the text of
  the longest parts is cut (each cut part gets ``"truncated_chars": N``), and only if that is
  not enough does the whole value become the marker object.

A leaf module (no imports from the stages) so that mapping and the feed use the same code.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encode = msgspec.json.encode
_CUT_KEYS = ("content", "arguments", "result")


def _suffix(n: int) -> str:
    return f"…[truncated {n} chars]"


def cut_text(text: str, limit: int) -> str:
    """Plain text of at most ``limit`` characters; a cut one says how much it lost."""
    if len(text) <= limit:
        return text
    keep = limit - len(_suffix(len(text)))
    keep = limit - len(_suffix(len(text) - keep))  # the count may have fewer digits than the length
    if keep <= 0:  # a limit too small to say so (settings never allow one)
        return text[:limit]
    return text[:keep] + _suffix(len(text) - keep)


def cut_raw(raw: bytes, limit: int) -> str:
    """JSON text of at most ``limit`` bytes, kept valid: an oversized value becomes a marker object."""
    if len(raw) <= limit:
        return raw.decode("utf-8", errors="replace")
    keep = max(0, limit - 64)
    while True:
        prefix = raw[:keep].decode("utf-8", errors="ignore")
        marker = _encode({"truncated_bytes": len(raw), "prefix": prefix})
        if len(marker) <= limit or keep == 0:
            return marker.decode()
        keep = max(0, keep - (len(marker) - limit) - 8)  # escapes made it longer: keep less


def cut_json_text(text: str, limit: int) -> str:
    """Text that is JSON when it parses (tool arguments, results): cut as JSON; otherwise as plain text."""
    if len(text) <= limit:
        return text
    if text[:1] in '[{"':
        try:
            msgspec.json.decode(text)
        except msgspec.DecodeError:
            return cut_text(text, limit)
        return cut_raw(text.encode(), limit)
    return cut_text(text, limit)


def cut_json(value: object, limit: int) -> str:
    return cut_raw(_encode(value), limit)


def cut_messages(messages: list[dict[str, Any]], limit: int) -> str:
    """Structured messages as JSON of at most ``limit`` bytes: the longest texts are cut first."""
    encoded = _encode(messages)
    if len(encoded) <= limit:
        return encoded.decode()
    copy = [dict(m, parts=[dict(p) if isinstance(p, dict) else p for p in m.get("parts", ())]) for m in messages]
    strings = [
        (part, key)
        for message in copy
        for part in message["parts"]
        if isinstance(part, dict)
        for key in _CUT_KEYS
        if isinstance(part.get(key), str)
    ]
    if strings:
        lengths = sorted(len(part[key]) for part, key in strings)
        # What must go, plus room for each part's "truncated_chars" marker.
        target = max(0, sum(lengths) - (len(encoded) - limit) - 32 * len(strings))
        cap = _cap_for(lengths, target)
        for part, key in strings:
            text = part[key]
            if len(text) > cap:
                part[key] = text[:cap]
                part["truncated_chars"] = len(text) - cap
        encoded = _encode(copy)
        if len(encoded) <= limit:
            return encoded.decode()
    return cut_raw(_encode(messages), limit)


def _cap_for(lengths: list[int], target: int) -> int:
    """The largest per-string cap whose capped total is at most ``target`` (water filling)."""
    remaining = target
    n = len(lengths)
    for i, length in enumerate(lengths):
        share = remaining // (n - i)
        if length > share:
            return share
        remaining -= length
    return lengths[-1] if lengths else 0
