"""Golden span trees: a capture replayed through the real Bridge, as one canonical JSON document.

A golden case is ``tests/fixtures/<dialect>/<case>.sse`` (any format ``replay``
reads) with its expected tree in ``<case>.expected.json`` and optional settings
in ``<case>.options.json`` (``{"dialect": "...", "capture_content": true, "content_events": true,
"openinference": true}``).

The document holds the detected dialect, the rejected frames and every trace
as a tree of whole spans: name, kind, ids, times relative to the trace's
first span, every attribute, status, events (name, time, attributes) and
links. Ids are deterministic (derived from the capture's bytes) and the clock
is fixed: every stamp on arrival advances 1 ms from :data:`T0`.

Every case is also replayed with ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``
(the GenAI names of semantic-conventions-genai v0.1.0): where that tree differs from the
default one it is kept as ``tests/goldens_latest/<dialect>/<case>.expected.json``; where it
does not, there is no file and the default tree is expected of both.

Tests compare; they never write. To regenerate (both sets) after an intended change::

    .venv/bin/python -m tests.support.golden            # every case
    .venv/bin/python -m tests.support.golden tests/fixtures/ag-ui/*.sse
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from otel_bridge.assembly import assemble
from otel_bridge.config import MappingSettings, SemconvSettings, Settings, StoreSettings
from otel_bridge.model import AttributeValue, SpanRecord
from otel_bridge.pipeline import ListSink
from otel_bridge.sources.replay import replay_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LATEST_GOLDENS = Path(__file__).resolve().parents[1] / "goldens_latest"
T0 = 1_800_000_000_000_000_000
TICK_NS = 1_000_000
CAPTURE_SUFFIXES = (".sse", ".json", ".ndjson", ".jsonl")


def is_case(path: Path) -> bool:
    """A capture (not an expected tree or an options file)."""
    return path.suffix in CAPTURE_SUFFIXES and not path.name.endswith((".expected.json", ".options.json"))


def cases(root: Path = FIXTURES) -> list[Path]:
    """Every capture under ``root`` that has (or is to get) an expected tree."""
    return sorted(p for p in root.rglob("*") if is_case(p))


def expected_path(capture: Path) -> Path:
    return capture.with_name(capture.stem + ".expected.json")


def latest_path(capture: Path) -> Path:
    """Where a case's tree under ``gen_ai_latest_experimental`` is kept when it differs from the default."""
    return LATEST_GOLDENS / capture.parent.name / (capture.stem + ".expected.json")


def options_for(capture: Path) -> dict[str, Any]:
    path = capture.with_name(capture.stem + ".options.json")
    return msgspec.json.decode(path.read_bytes()) if path.exists() else {}


def fixed_clock_ns(start: int = T0, tick: int = TICK_NS) -> Any:
    counter = itertools.count(start, tick)
    return lambda: next(counter)


def replay_tree(
    capture: Path,
    *,
    dialect: str | None = None,
    capture_content: bool = False,
    content_events: bool = False,
    openinference: bool = False,
    latest: bool = False,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Replay one capture through a Bridge with a ListSink; the canonical document.
    ``latest``: with the GenAI conventions' opt-in (``gen_ai_latest_experimental``)."""
    settings = settings or Settings(
        store=StoreSettings(enabled=False),
        mapping=MappingSettings(capture_content=capture_content, content_events=content_events, latest_semconv=latest),
        semconv=SemconvSettings(openinference=openinference),
    )
    sink = ListSink()
    bridge = assemble(settings, clock=lambda: 0.0, extra_sinks=[sink], pricer=None).bridge
    [report] = replay_files(bridge, [capture], dialect=dialect, clock_ns=fixed_clock_ns())
    return {
        "dialect": report.dialect,
        "rejections": [{"index": r.index, "reason": r.reason} for r in report.rejections],
        "traces": span_trees(sink.spans),
    }


def golden_tree(capture: Path, *, latest: bool = False) -> dict[str, Any]:
    """The canonical document of a golden case, with its options applied (``latest``: and the opt-in)."""
    options = options_for(capture)
    return replay_tree(
        capture,
        dialect=options.get("dialect"),
        capture_content=bool(options.get("capture_content", False)),
        content_events=bool(options.get("content_events", False)),
        openinference=bool(options.get("openinference", False)),
        latest=latest,
    )


def span_trees(spans: Sequence[SpanRecord]) -> list[dict[str, Any]]:
    """Spans grouped by trace, each trace a forest ordered by start time (then name, then id)."""
    by_trace: dict[bytes, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    traces = []
    for trace_id, members in by_trace.items():
        t0 = min(s.start_ns for s in members)
        ids = {s.span_id for s in members}
        children: dict[bytes | None, list[SpanRecord]] = defaultdict(list)
        for span in members:
            parent = span.parent_span_id if span.parent_span_id in ids else None
            children[parent].append(span)

        def node(
            span: SpanRecord,
            t0: int = t0,
            ids: set[bytes] = ids,
            children: dict[bytes | None, list[SpanRecord]] = children,
        ) -> Any:
            out: dict[str, Any] = {
                "name": span.name,
                "kind": span.kind.name,
                "span_id": span.span_id.hex(),
                "start_ms": _ms(span.start_ns - t0),
                "duration_ms": _ms(span.end_ns - span.start_ns),
                "status": span.status_code.name,
            }
            if span.status_message:
                out["status_message"] = span.status_message
            if span.parent_span_id is not None and span.parent_span_id not in ids:
                out["remote_parent_span_id"] = span.parent_span_id.hex()
            out["attributes"] = {k: _value(v) for k, v in sorted(span.attributes.items())}
            if span.events:
                out["events"] = [
                    {
                        "name": e.name,
                        "time_ms": _ms(e.time_ns - t0),
                        "attributes": {k: _value(v) for k, v in sorted(e.attributes.items())},
                    }
                    for e in span.events
                ]
            if span.links:
                out["links"] = [link.span_id.hex() for link in span.links]
            if span.dropped_events:
                out["dropped_events"] = span.dropped_events
            kids = sorted(children.get(span.span_id, []), key=_order)
            if kids:
                out["children"] = [node(k) for k in kids]
            return out

        roots = sorted(children[None], key=_order)
        traces.append((t0, trace_id.hex(), {"trace_id": trace_id.hex(), "spans": [node(r) for r in roots]}))
    return [doc for _, _, doc in sorted(traces, key=lambda t: (t[0], t[1]))]


def _order(span: SpanRecord) -> tuple[int, str, bytes]:
    return (span.start_ns, span.name, span.span_id)


def _ms(ns: int) -> float:
    return round(ns / 1e6, 6)


def _value(value: AttributeValue) -> Any:
    return list(value) if isinstance(value, tuple) else value


def dump(document: dict[str, Any]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def load_expected(capture: Path) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.json.decode(expected_path(capture).read_bytes())
    return result


def load_expected_latest(capture: Path) -> dict[str, Any]:
    """The expected tree under ``gen_ai_latest_experimental``: its own file, else the default one."""
    path = latest_path(capture)
    if not path.exists():
        return load_expected(capture)
    result: dict[str, Any] = msgspec.json.decode(path.read_bytes())
    return result


def regenerate(paths: Sequence[Path]) -> None:
    for capture in paths:
        if not is_case(capture):
            # A glob such as fixtures/x/*.json also names the expected trees: replaying one
            # of those would write a meaningless <case>.expected.expected.json beside it.
            print(f"skipped {capture} (not a capture)")
            continue
        default = golden_tree(capture)
        expected_path(capture).write_bytes(dump(default))
        print(f"wrote {expected_path(capture)}")
        latest = golden_tree(capture, latest=True)
        path = latest_path(capture)
        if latest != default:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(dump(latest))
            print(f"wrote {path}")
        elif path.exists():
            path.unlink()
            print(f"removed {path} (the same as the default tree now)")


if __name__ == "__main__":
    regenerate([Path(a).resolve() for a in sys.argv[1:]] or cases())
