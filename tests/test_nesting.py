"""Every capture of every dialect maps to spans that nest: a child lies within its parent, and lasts.

Jaeger checks both on every trace it stores: a child outside its parent gets a
clock-skew warning, a span whose end is not after its start gets its end
rewritten and a warning (tests/test_e2e_jaeger.py found both). Checked here
for every golden capture, without Jaeger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_bridge.assembly import assemble
from otel_bridge.config import Settings, StoreSettings
from otel_bridge.pipeline import ListSink
from otel_bridge.sources.replay import replay_files
from tests.support.golden import FIXTURES, cases, fixed_clock_ns, options_for

CASES = cases()


@pytest.mark.parametrize("capture", CASES, ids=[str(p.relative_to(FIXTURES)) for p in CASES])
def test_children_lie_within_their_parents_and_no_span_is_instant(capture: Path) -> None:
    sink = ListSink()
    pipeline = assemble(
        Settings(store=StoreSettings(enabled=False)), clock=lambda: 0.0, extra_sinks=[sink], pricer=None
    )
    replay_files(pipeline.bridge, [capture], dialect=options_for(capture).get("dialect"), clock_ns=fixed_clock_ns())
    assert sink.spans
    by_id = {span.span_id: span for span in sink.spans}
    outside = []
    for span in sink.spans:
        assert span.end_ns > span.start_ns, span.name
        parent = by_id.get(span.parent_span_id or b"")
        if parent is not None and not (parent.start_ns <= span.start_ns and span.end_ns <= parent.end_ns):
            outside.append(
                f"{span.name} [{span.start_ns}, {span.end_ns}] in {parent.name} [{parent.start_ns}, {parent.end_ns}]"
            )
    assert outside == []
