"""A secret in a tool argument never leaves the sidecar: not to the exporter (a real rotel collector),
not to the embedded store, not to the live feed, not to the log; the redactions are counted in health.

The real ``otel-bridge serve`` process, content capture on (spans and events), OpenInference on
(its attributes are derived from the GenAI ones, so they must be clean too), default redaction.
"""

from __future__ import annotations

import json
import threading
import time

import httpx

from tests.support.live import post, sse
from tests.support.rotel import Rotel
from tests.support.server import BridgeProcess

OPENAI_KEY = "sk-" + "proj-" + "Q7w8E9r0T1y2U3i4O5p6A7s8D9f0"
AWS_ID = "AKIA" + "Z7X6C5V4B3N2M1L0"
RUN = "redact-e2e-1"
EVENTS = [
    {"kind": "run.started", "run_id": RUN, "agent": "ops"},
    {"kind": "llm.started", "run_id": RUN, "call_id": "c1", "model": "gpt-4o"},
    {"kind": "llm.completed", "run_id": RUN, "call_id": "c1", "model": "gpt-4o", "text": f"use {OPENAI_KEY}"},
    {
        "kind": "tool.started",
        "run_id": RUN,
        "call_id": "t1",
        "tool_name": "deploy",
        "arguments": json.dumps({"api_key": OPENAI_KEY, "aws": AWS_ID, "region": "eu-west-1"}),
    },
    {"kind": "tool.completed", "run_id": RUN, "call_id": "t1", "tool_name": "deploy", "result": f"ok {AWS_ID}"},
    # its original payload becomes a span event's otel_bridge.event.payload
    {"kind": "progress", "run_id": RUN, "type": "deploy.log", "name": "log", "line": f"export KEY={OPENAI_KEY}"},
    # a state change's payload is on the feed as `state` (content capture on): redacted like the spans'
    {"kind": "state.changed", "run_id": RUN, "name": "env", "state": {"deploy_key": OPENAI_KEY}},
    {"kind": "run.finished", "run_id": RUN},
]
SECRETS = (OPENAI_KEY, AWS_ID)


def clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret reached {where}"


def test_a_secret_in_a_tool_argument_never_leaves_the_sidecar(rotel: Rotel, bridge_server: type[BridgeProcess]) -> None:
    bridge = bridge_server(
        env={
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rotel.http_endpoint + "/v1/traces",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
            "OTEL_BRIDGE_OPENINFERENCE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        },
        args=["--log-level", "debug"],
    )
    feed_lines: list[str] = []
    subscribed = threading.Event()

    def read_feed() -> None:
        with sse(bridge.url + "/v1/stream", timeout=15) as events:
            subscribed.set()
            for event in events:
                feed_lines.append(event.data)
                if event.event == "run.finished":
                    return

    reader = threading.Thread(target=read_feed, daemon=True)
    reader.start()
    assert subscribed.wait(10)
    time.sleep(0.2)  # the subscriber is registered once the stream's first bytes are out
    answer = post(bridge.url, EVENTS, run_id=RUN)
    assert answer.status_code == 202, answer.text
    clean(answer.text, "the ingest response")
    reader.join(15)
    assert len(feed_lines) == len(EVENTS)
    feed = "\n".join(feed_lines)
    clean(feed, "the live feed")
    assert "[REDACTED:openai_key]" in feed  # content is on the feed, redacted

    spans = rotel.wait_for_spans(lambda s: any(x.name == "invoke_agent ops" for x in s))
    exported = "\n".join(str(span) for span in spans)
    clean(exported, "the exporter")
    assert "[REDACTED:openai_key]" in exported
    assert "[REDACTED:aws_access_key_id]" in exported
    assert "KEY=[REDACTED:openai_key]" in exported  # the payload on the progress span event
    trace_id = spans[0].trace_id.hex()

    stored = httpx.get(f"{bridge.url}/v1/traces/{trace_id}", timeout=5)
    assert stored.status_code == 200
    clean(stored.text, "the store")
    assert "[REDACTED:openai_key]" in stored.text

    health = httpx.get(bridge.url + "/v1/health", timeout=5).json()
    assert health["redacted"]["openai_key"] >= 2
    assert health["redacted"]["aws_access_key_id"] >= 2
    bridge.stop()
    clean(bridge.log_path.read_text(errors="replace"), "the log")
