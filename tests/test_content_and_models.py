"""Captured content cut to size (valid JSON, says what was cut, same rules on the feed), a model name on
every chat span the stream names one for, and salted trace ids."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from otel_bridge import content
from otel_bridge import semconv as sc
from otel_bridge.config import MappingSettings, load_settings
from otel_bridge.mapping.ids import span_id_for, trace_id_for_run
from otel_bridge.mapping.lifecycle import SpanMapper
from otel_bridge.model import AgentEvent, EventKind, Placement, SpanRecord, TokenUsage
from otel_bridge.pipeline import ListSink
from otel_bridge.sinks.feed.record import enrich
from otel_bridge.stats import Stats
from tests.conftest import FakeClock

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def ev(kind: EventKind, t_ms: float, run: str = "run-1", **fields: Any) -> AgentEvent:
    return AgentEvent(
        kind=kind, run_id=run, timestamp_ns=T0 + int(t_ms * MS), dialect="test", original_type=str(kind), **fields
    )


def mapper(clock: FakeClock, **settings: Any) -> tuple[SpanMapper, ListSink]:
    sink = ListSink()
    return SpanMapper(MappingSettings(**settings), sink, Stats(), clock=clock.monotonic), sink


def chats(spans: list[SpanRecord]) -> list[SpanRecord]:
    return [s for s in spans if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT]


# -- cuts -------------------------------------------------------------------------


def test_plain_text_says_how_much_was_cut() -> None:
    assert content.cut_text("short", 128) == "short"
    cut = content.cut_text("x" * 1000, 128)
    assert len(cut) == 128
    assert cut.endswith("…[truncated 894 chars]")
    assert cut.startswith("x" * 100)


@pytest.mark.parametrize("limit", [128, 200, 1000])
def test_json_stays_valid_and_within_the_limit(limit: int) -> None:
    value = {"rows": [{"name": 'quote " and \\ slash', "n": i} for i in range(200)]}
    text = msgspec.json.encode(value).decode()
    cut = content.cut_json_text(text, limit)
    assert len(cut.encode()) <= limit
    marker = msgspec.json.decode(cut)
    assert marker["truncated_bytes"] == len(text)
    assert text.startswith(marker["prefix"])


def test_messages_keep_their_structure_and_mark_each_cut_part() -> None:
    messages = [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "a" * 3000},
                {"type": "tool_call", "id": "c1", "name": "f", "arguments": "b" * 50},
            ],
        }
    ]
    cut = content.cut_messages(messages, 1000)
    assert len(cut.encode()) <= 1000
    doc = msgspec.json.decode(cut)
    text, call = doc[0]["parts"]
    assert text["truncated_chars"] == 3000 - len(text["content"])
    assert len(text["content"]) > 500  # most of the room goes to the longest text
    assert call == messages[0]["parts"][1]  # a short part is left whole
    assert content.cut_messages(messages, 10_000) == msgspec.json.encode(messages).decode()


def test_the_feed_cuts_content_by_the_same_rules_and_limit() -> None:
    event = ev(EventKind.TOOL_COMPLETED, 0, arguments='{"q":"' + "x" * 500 + '"}', result="y" * 500, text="z" * 500)
    placement = Placement(b"t" * 16, b"s" * 8, None)
    record = enrich(event, placement, 1, agent=None, trace_url_template=None, content=True, limit=128)
    assert record.result == content.cut_text("y" * 500, 128)
    assert record.text == content.cut_text("z" * 500, 128)
    assert record.arguments == content.cut_json_text(event.arguments or "", 128)
    msgspec.json.decode(record.arguments or "")
    hidden = enrich(event, placement, 1, agent=None, trace_url_template=None, content=False, limit=128)
    assert (hidden.text, hidden.arguments, hidden.result) == (None, None, None)


def test_span_and_event_puts_the_content_on_an_inference_details_event(clock: FakeClock) -> None:
    m, sink = mapper(clock, capture_content=True, content_events=True)
    m.process(
        [
            ev(EventKind.LLM_STARTED, 0, call_id="c1", model="gpt-4o"),
            ev(EventKind.LLM_COMPLETED, 5, call_id="c1", model="gpt-4o", text="hi", finish_reasons=("stop",)),
        ]
    )
    m.close_all()
    [chat] = chats(sink.spans)
    output = '[{"role":"assistant","parts":[{"type":"text","content":"hi"}],"finish_reason":"stop"}]'
    assert chat.attributes[sc.GEN_AI_OUTPUT_MESSAGES] == output
    [details] = [e for e in chat.events if e.name == sc.EVENT_INFERENCE_DETAILS]
    assert details.attributes == {
        sc.GEN_AI_OUTPUT_MESSAGES: output,
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o",
        sc.GEN_AI_PROVIDER_NAME: "openai",
    }


def test_the_capture_variable_sets_spans_and_events() -> None:
    def mode(value: str) -> tuple[bool, bool]:
        s = load_settings(environ={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": value})
        return s.mapping.capture_content, s.mapping.content_events

    assert mode("SPAN_ONLY") == (True, False)
    assert mode("SPAN_AND_EVENT") == (True, True)
    assert mode("NO_CONTENT") == (False, False)


# -- a model on every chat span ----------------------------------------------------------


def test_a_call_takes_the_model_its_run_names_later(clock: FakeClock) -> None:
    m, sink = mapper(clock)
    m.process(
        [
            ev(EventKind.RUN_STARTED, 0),
            ev(EventKind.LLM_STARTED, 1, call_id="m1", inferred=True),
            ev(EventKind.LLM_COMPLETED, 2, call_id="m1"),
        ]
    )
    assert chats(sink.spans) == []  # held: the run may still name its model
    m.process([ev(EventKind.RUN_FINISHED, 3, model="claude-sonnet-4-5")])
    m.close_all()
    [chat] = chats(sink.spans)
    assert chat.name == "chat claude-sonnet-4-5"
    assert chat.attributes[sc.GEN_AI_REQUEST_MODEL] == "claude-sonnet-4-5"
    assert chat.attributes[sc.GEN_AI_PROVIDER_NAME] == "anthropic"


def test_a_run_that_never_names_a_model_still_exports_its_calls(clock: FakeClock) -> None:
    m, sink = mapper(clock)
    m.process([ev(EventKind.LLM_STARTED, 1, call_id="m1"), ev(EventKind.LLM_COMPLETED, 2, call_id="m1")])
    m.process([ev(EventKind.RUN_FINISHED, 3)])
    m.close_all()
    [chat] = chats(sink.spans)
    assert chat.name == "chat"
    assert sc.GEN_AI_REQUEST_MODEL not in chat.attributes


def test_a_call_keeps_its_own_response_model_and_is_named_by_it(clock: FakeClock) -> None:
    m, sink = mapper(clock)
    m.process(
        [
            ev(EventKind.RUN_STARTED, 0, model="gpt-4o"),
            ev(EventKind.LLM_STARTED, 1, call_id="m1"),
            ev(EventKind.LLM_COMPLETED, 2, call_id="m1", response_model="gpt-4o-mini-2024-07-18",
               usage=TokenUsage(input=1, output=1)),
        ]
    )  # fmt: skip
    [chat] = chats(sink.spans)  # emitted at once: it has a model
    assert chat.name == "chat gpt-4o-mini-2024-07-18"
    assert sc.GEN_AI_REQUEST_MODEL not in chat.attributes  # no request model is invented
    assert chat.attributes[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_a_sub_agent_model_wins_over_the_run_model(clock: FakeClock) -> None:
    m, sink = mapper(clock)
    m.process(
        [
            ev(EventKind.RUN_STARTED, 0, model="gpt-4o"),
            ev(EventKind.AGENT_STARTED, 1, name="helper", agent="helper", call_id="a1", model="claude-haiku-4-5"),
            ev(EventKind.LLM_STARTED, 2, call_id="m1"),
            ev(EventKind.LLM_COMPLETED, 3, call_id="m1"),
        ]
    )
    [chat] = chats(sink.spans)
    assert chat.attributes[sc.GEN_AI_REQUEST_MODEL] == "claude-haiku-4-5"


# -- salted ids -------------------------------------------------------------------------


def test_a_salt_gives_other_traces_and_the_same_salt_the_same(clock: FakeClock) -> None:
    assert trace_id_for_run("r") == trace_id_for_run("r", "")
    assert trace_id_for_run("r", "a") != trace_id_for_run("r")
    assert trace_id_for_run("r", "a") == trace_id_for_run("r", "a")
    m, sink = mapper(clock, id_salt="retest-2")
    m.process([ev(EventKind.RUN_STARTED, 0), ev(EventKind.RUN_FINISHED, 1)])
    m.close_all()
    [root] = sink.spans
    assert root.trace_id == trace_id_for_run("run-1", "retest-2")
    assert root.span_id == span_id_for(root.trace_id, "run")
