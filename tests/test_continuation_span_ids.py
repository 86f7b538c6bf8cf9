"""A late run's continuation never reuses a span id of the run it continues (the same trace).

Found by the real-Jaeger test ("duplicate span IDs"): two captures with one AG-UI run id, the
second arriving after the first run ended, gave the continuation's chat and tool spans the ids
of the first run's, since both derive from the trace id and the same key (``chat:m1``).
"""

from __future__ import annotations

from collections import Counter

from otel_bridge.assembly import assemble
from otel_bridge.config import Settings, StoreSettings
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import sniff_text_frames
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.pipeline import ListSink
from tests.support.golden import FIXTURES


def test_a_continuation_reuses_no_span_id_of_its_run() -> None:
    now = [0.0]
    sink = ListSink()
    bridge = assemble(
        Settings(store=StoreSettings(enabled=False)), extra_sinks=[sink], pricer=None, clock=lambda: now[0]
    ).bridge
    for name in ("python-encoder.sse", "typescript-encoder.sse"):  # both hold the AG-UI run "run_1"
        decoder = StreamDecoder(StreamContext(source="http", stream_key=name), None, on_reject=lambda *a: None)
        bridge.submit(decoder.feed(sniff_text_frames((FIXTURES / "ag-ui" / name).read_text())) + decoder.close())
        now[0] += 5.0  # past the run's end grace: the second capture's run_1 is a continuation
        bridge.mapper.sweep()
    bridge.close_all("end_of_input")
    assert bridge.stats.continuations >= 1
    ids = Counter((s.trace_id, s.span_id) for s in sink.spans)
    assert [key for key, n in ids.items() if n > 1] == []
    # and every link still points at a span of its own trace
    by_id = {(s.trace_id, s.span_id) for s in sink.spans}
    assert all((link.trace_id, link.span_id) in by_id for s in sink.spans for link in s.links)
