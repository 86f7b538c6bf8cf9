"""Subscriptions that POST a request body: A2A resubscription after a drop, the agent card, no re-run of work
that cannot be joined, LangGraph's join request, ``/v1/sources`` reporting, and configuration errors.

The upstreams are small Starlette apps on a real uvicorn (loopback) that answer with real
captures (tests/fixtures/a2a) and drop the connection where a test needs it: an exception
in the body after the headers went out, so the client sees the body end unfinished.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from otel_bridge import semconv as sc
from otel_bridge.assembly import assemble
from otel_bridge.cli import _settings, build_parser
from otel_bridge.config import ConfigError, Settings, SourceSettings, load_settings
from otel_bridge.dialects import registry
from otel_bridge.dialects.base import StreamContext
from otel_bridge.dialects.framing import Frame, parse_sse
from otel_bridge.dialects.stream import StreamDecoder
from otel_bridge.model import SpanRecord, StatusCode
from otel_bridge.pipeline import ListSink
from otel_bridge.sources.http_ingest import decode_body
from otel_bridge.sources.manager import SourceManager
from otel_bridge.sources.resume import A2aPlan, GetPlan, LangGraphThreadPlan, PostPlan, Stop, plan_for
from otel_bridge.sources.upstream import UpstreamSource
from tests.support.golden import FIXTURES
from tests.support.sse_server import ThreadedServer

SEND = FIXTURES / "a2a" / "a2a-shipment-tracker-1-send.sse"
SUBSCRIBE = FIXTURES / "a2a" / "a2a-shipment-tracker-2-subscribe.sse"
TASK = "task-shp-0001"
SEND_BODY = {
    "jsonrpc": "2.0",
    "id": "req-shp-1",
    "method": "SendStreamingMessage",
    "params": {"message": {"messageId": "msg-user-4471", "role": "ROLE_USER", "parts": [{"text": "Where is it?"}]}},
}
CARD = {"name": "shipment-tracker", "description": "Tracks parcels.", "version": "1.0.0"}


class Dropped(Exception):
    """Raised inside a response body: the upstream's connection ends before the body does."""


def _encode(frames: list[Frame]) -> bytes:
    return b"".join(b"data: " + f.data + b"\n\n" for f in frames)


@dataclass
class Upstream:
    """An A2A agent whose first stream drops after ``drop_after`` frames; it records every request."""

    drop_after: int | None = 4
    card_path: str | None = "/.well-known/agent-card.json"
    status: int = 200
    requests: list[Any] = field(default_factory=list)
    server: ThreadedServer | None = None

    def app(self) -> Starlette:
        send, subscribe = parse_sse(SEND.read_text()), parse_sse(SUBSCRIBE.read_text())

        async def rpc(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            if self.status != 200:
                return JSONResponse({"error": "busy"}, status_code=self.status)
            frames = subscribe if body.get("method") == "SubscribeToTask" else send
            cut = self.drop_after if len(self.requests) == 1 else None

            async def stream() -> AsyncIterator[bytes]:
                yield _encode(frames[:cut] if cut is not None else frames)
                await asyncio.sleep(0.05)
                if cut is not None:
                    raise Dropped("the agent's connection dropped")

            return StreamingResponse(stream(), media_type="text/event-stream")

        async def card(_: Request) -> Response:
            return JSONResponse(CARD)

        routes = [Route("/", rpc, methods=["POST"])]
        if self.card_path is not None:
            routes.append(Route(self.card_path, card))
        return Starlette(routes=routes)

    def start(self) -> str:
        self.server = ThreadedServer(self.app())
        return self.server.url


@pytest.fixture
def upstreams() -> Iterator[Callable[..., Upstream]]:
    started: list[Upstream] = []

    def start(**kwargs: Any) -> Upstream:
        upstream = Upstream(**kwargs)
        upstream.start()
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        assert upstream.server is not None
        upstream.server.stop()


async def eventually(predicate: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the sources have no event to wait on; they are polled
            await asyncio.sleep(0.02)


async def _subscribe(settings: SourceSettings, until: Callable[[dict[str, Any]], bool]) -> tuple[list[SpanRecord], Any]:
    sink = ListSink()
    bridge = assemble(Settings(), extra_sinks=[sink], pricer=None).bridge
    manager = SourceManager(bridge, [settings])
    source = manager.sources[0]
    await manager.start()
    try:
        await eventually(lambda: until(source.snapshot()), what="the subscription's end")
    finally:
        await manager.shutdown()
    bridge.mapper.close_all(sc.CLOSE_END_OF_INPUT)
    return sink.spans, source.snapshot()


async def test_a2a_stream_dropped_mid_task_resubscribes_to_the_task_and_continues_the_same_run(
    upstreams: Callable[..., Upstream],
) -> None:
    upstream = upstreams()
    assert upstream.server is not None
    settings = SourceSettings(url=upstream.server.url + "/", method="POST", body=SEND_BODY, backoff_initial_s=0.01)
    spans, snap = await _subscribe(settings, lambda s: bool(s["done"]))

    # The first request sent the message; after the drop the sidecar asked for the same task, not a new one.
    assert upstream.requests == [
        SEND_BODY,
        {"jsonrpc": "2.0", "id": "req-shp-1", "method": "SubscribeToTask", "params": {"id": TASK}},
    ]
    assert {s.trace_id for s in spans} == {spans[0].trace_id}  # one task, one run, one trace
    [root] = [s for s in spans if s.parent_span_id is None]
    streams = sorted(s.name for s in spans if s.attributes.get(sc.A2A_METHOD_NAME))
    assert streams == ["SendStreamingMessage", "SubscribeToTask"]
    assert root.attributes[sc.GEN_AI_AGENT_NAME] == "shipment-tracker"
    assert root.attributes[sc.GEN_AI_AGENT_DESCRIPTION] == "Tracks parcels."  # from the agent card
    assert root.status_code is StatusCode.UNSET  # finished, not failed
    chats = [s for s in spans if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT]
    tools = [s for s in spans if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_EXECUTE_TOOL]
    # The tool calls the resubscription repeats are mapped once.
    assert sorted(s.attributes[sc.GEN_AI_TOOL_NAME] for s in tools) == ["check_customs_hold", "lookup_tracking"]
    # Everything else is what the uninterrupted stream gives, once: the same spans by name.
    reference = ListSink()
    bridge = assemble(Settings(), extra_sinks=[reference], pricer=None).bridge
    decoder = StreamDecoder(StreamContext(source="ref", stream_key="ref"))
    bridge.submit(decoder.feed(parse_sse(SEND.read_text())) + decoder.close())
    bridge.mapper.close_all(sc.CLOSE_END_OF_INPUT)
    assert sorted(s.name for s in spans if s.name != "SubscribeToTask") == sorted(s.name for s in reference.spans)
    assert len(chats) == len([s for s in reference.spans if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT])
    assert {k: snap[k] for k in ("method", "request", "last_status", "done", "reconnects", "last_error")} == {
        "method": "POST",
        "request": f"resubscribe {TASK}",
        "last_status": 200,
        "done": True,  # the task completed: no request follows
        "reconnects": 1,
        "last_error": None,
    }
    assert snap["agent_card"] == {"name": "shipment-tracker", "description": "Tracks parcels.", "error": None}


async def test_the_agent_card_is_read_from_the_older_path_and_a_missing_card_is_reported(
    upstreams: Callable[..., Upstream],
) -> None:
    older = upstreams(drop_after=None, card_path="/.well-known/agent.json")
    none = upstreams(drop_after=None, card_path=None)
    assert older.server is not None
    assert none.server is not None
    spans, snap = await _subscribe(
        SourceSettings(url=older.server.url + "/", method="POST", body=SEND_BODY), lambda s: bool(s["done"])
    )
    [root] = [s for s in spans if s.parent_span_id is None]
    assert root.attributes[sc.GEN_AI_AGENT_DESCRIPTION] == "Tracks parcels."
    assert snap["agent_card"]["name"] == "shipment-tracker"

    spans, snap = await _subscribe(
        SourceSettings(url=none.server.url + "/", method="POST", body=SEND_BODY), lambda s: bool(s["done"])
    )
    [root] = [s for s in spans if s.parent_span_id is None]
    assert sc.GEN_AI_AGENT_DESCRIPTION not in root.attributes
    assert root.attributes[sc.GEN_AI_AGENT_NAME] == "shipment-tracker"  # the capture's adk_app_name still names it
    assert snap["agent_card"] == {
        "name": None,
        "description": None,
        "error": "no agent card (/.well-known/agent-card.json: HTTP 404; /.well-known/agent.json: HTTP 404)",
    }
    assert len(none.requests) == 1  # a stream that ended cleanly after the task completed is not sent again


async def test_a_post_that_cannot_be_joined_is_not_sent_again_after_frames_came(
    upstreams: Callable[..., Upstream],
) -> None:
    """A POST that is no A2A request (ADK run_sse, say) would start the work again: it stops and says so."""
    upstream = upstreams()
    assert upstream.server is not None
    body = {"app_name": "tracker", "user_id": "u1", "session_id": "s1", "new_message": {"parts": []}}
    _, snap = await _subscribe(
        SourceSettings(url=upstream.server.url + "/", method="POST", body=body, dialect="a2a", backoff_initial_s=0.01),
        lambda s: bool(s["done"]),
    )
    assert upstream.requests == [body]
    assert snap["done"] is True
    assert snap["last_error"] == (
        "the stream dropped after 4 frames and this protocol cannot join the run under way; "
        "not sent again (it would start the work again)"
    )


async def test_a_post_refused_before_any_frame_is_sent_again_with_backoff(upstreams: Callable[..., Upstream]) -> None:
    upstream = upstreams(drop_after=None, status=503)
    assert upstream.server is not None
    settings = SourceSettings(url=upstream.server.url + "/", method="POST", body=SEND_BODY, backoff_initial_s=0.01)
    sink = ListSink()
    bridge = assemble(Settings(), extra_sinks=[sink], pricer=None).bridge
    manager = SourceManager(bridge, [settings])
    source = manager.sources[0]
    await manager.start()
    try:
        await eventually(lambda: len(upstream.requests) >= 2, what="a second attempt")
        snap = source.snapshot()
        assert (snap["last_status"], snap["done"]) == (503, False)
        assert str(snap["last_error"]).startswith("HTTP 503")
        upstream.status = 200
        await eventually(lambda: bool(source.snapshot()["done"]), what="the task's end")
    finally:
        await manager.shutdown()
    assert all(r == SEND_BODY for r in upstream.requests)
    assert source.snapshot()["last_status"] == 200


# -- plans: which request follows ---------------------------------------------------------


def _frames(*pairs: tuple[str | None, object]) -> list[Frame]:
    return [Frame(event, json.dumps(data).encode()) for event, data in pairs]


def test_plans_are_chosen_by_method_then_by_what_the_body_and_url_say() -> None:
    assert isinstance(plan_for("GET", "http://a/s", None), GetPlan)
    assert isinstance(plan_for("POST", "http://a/", SEND_BODY), A2aPlan)
    v03 = {**SEND_BODY, "method": "message/stream"}
    assert isinstance(plan_for("POST", "http://a/", v03), A2aPlan)
    assert isinstance(plan_for("POST", "http://g/threads/t1/runs/stream", {"assistant_id": "a"}), LangGraphThreadPlan)
    assert type(plan_for("POST", "http://g/runs/stream", {"assistant_id": "a"})) is PostPlan
    assert type(plan_for("POST", "http://a/run_sse", {"app_name": "x"})) is PostPlan
    assert type(plan_for("POST", "http://a/", {**SEND_BODY, "method": "GetTask"})) is PostPlan


def test_a2a_v03_resubscribes_with_tasks_resubscribe_and_stops_at_a_state_that_ends_the_stream() -> None:
    plan = plan_for("POST", "http://a/", {**SEND_BODY, "method": "message/stream", "id": 7})
    plan.observe(_frames((None, {"jsonrpc": "2.0", "id": 7, "result": {"kind": "task", "id": "t9", "status": {}}})))
    again = plan.after(clean=False)
    assert (again.method, json.loads(again.body or b"")) == (
        "POST",
        {"jsonrpc": "2.0", "id": 7, "method": "tasks/resubscribe", "params": {"id": "t9"}},
    )
    # A stream closed while the task still works is followed on; one that paused for input is done.
    assert plan.after(clean=True).purpose == "resubscribe t9"
    status = {"kind": "status-update", "taskId": "t9", "status": {"state": "input-required"}, "final": True}
    plan.observe(_frames((None, {"jsonrpc": "2.0", "id": 7, "result": status})))
    with pytest.raises(Stop, match="done"):
        plan.after(clean=True)


def test_a_langgraph_run_on_a_thread_is_joined_by_its_run_id_with_its_stream_modes() -> None:
    body = {"assistant_id": "agent", "input": {}, "stream_mode": ["messages-tuple", "updates"]}
    plan = plan_for("POST", "http://g:2024/threads/th-1/runs/stream", body)
    plan.observe(_frames(("values", {})))
    with pytest.raises(Stop, match="cannot join"):  # no run id seen yet, but frames came
        plan.after(clean=False)
    plan.observe(_frames(("metadata", {"run_id": "run-7", "attempt": 1})))
    joined = plan.after(clean=False)
    assert (joined.method, joined.url, joined.body, joined.purpose) == (
        "GET",
        "http://g:2024/threads/th-1/runs/run-7/stream?stream_mode=messages-tuple&stream_mode=updates",
        None,
        "join run run-7",
    )
    with pytest.raises(Stop, match="done"):
        plan.after(clean=True)


def test_a_get_subscription_is_asked_for_again_after_every_end() -> None:
    plan = plan_for("GET", "http://a/s", None)
    assert plan.after(clean=True) == plan.after(clean=False) == plan.first()


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('method = "PUT"', "method must be GET or POST"),
        ('method = "POST"', "needs body or body_file"),
        ("body = {a = 1}", "body and body_file need method = 'POST'"),
        ('method = "POST"\nbody = {a = 1}\nbody_file = "b.json"', "give body or body_file, not both"),
        ('method = "POST"\nkind = "openintent"\nbody = {a = 1}', "an openintent source subscribes with GET"),
        ('method = "POST"\nbody = "text"', "Expected `object | array | null`"),
    ],
)
def test_bad_request_settings_are_config_errors(lines: str, message: str, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[[sources]]\nurl = "http://a/s"\n{lines}\n')
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_body_file_is_read_at_startup_and_a_bad_one_fails_it(tmp_path: pathlib.Path) -> None:
    bridge = assemble(Settings(), pricer=None).bridge
    good = tmp_path / "run.json"
    good.write_text(json.dumps(SEND_BODY))
    [source] = SourceManager(bridge, [SourceSettings(url="http://a/", method="POST", body_file=str(good))]).sources
    assert isinstance(source, UpstreamSource)
    assert source.snapshot()["method"] == "POST"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for path, message in (
        (bad, "is not JSON"),
        (tmp_path / "missing.json", "cannot read body_file"),
        (tmp_path / "scalar.json", "must hold a JSON object or array"),
    ):
        if path.name == "scalar.json":
            path.write_text("3")
        with pytest.raises(ConfigError, match=message):
            SourceManager(bridge, [SourceSettings(url="http://a/", method="POST", body_file=str(path))])


def test_subscribe_flags_set_method_and_body_of_the_subscribe_before_them(tmp_path: pathlib.Path) -> None:
    body_file = tmp_path / "run.json"
    args = build_parser().parse_args(
        [
            "serve",
            "--subscribe",
            "http://a2a:9999/",
            "--body",
            json.dumps(SEND_BODY),
            "--subscribe",
            "http://graph:2024/runs/stream",
            "--body-file",
            str(body_file),
            "--header",
            "X-Api-Key: k",
            "--subscribe",
            "http://agent/stream",
            "--method",
            "get",
        ]
    )
    assert _settings(args).sources == [
        SourceSettings(url="http://a2a:9999/", method="POST", body=SEND_BODY),
        SourceSettings(
            url="http://graph:2024/runs/stream", method="POST", body_file=str(body_file), headers={"X-Api-Key": "k"}
        ),
        SourceSettings(url="http://agent/stream"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--body", "{}"], "applies to the --subscribe before it"),
        (["serve", "--subscribe", "http://a/", "--body", "{nope"], "--body expects JSON"),
    ],
)
def test_bad_body_flags_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert message in capsys.readouterr().err


def test_a_subscribe_flag_value_the_settings_refuse_is_a_config_error() -> None:
    args = build_parser().parse_args(["serve", "--subscribe", "http://a/", "--method", "DELETE"])
    with pytest.raises(ConfigError, match="method must be GET or POST"):
        _settings(args)


# -- header hints -------------------------------------------------------------------------

# `start` and `finish` alone claim nothing: without the header this body is generic custom events.
_UI_STREAM = b'data: {"type":"start","messageId":"m1"}\n\ndata: {"type":"finish"}\n\ndata: [DONE]\n\n'


@pytest.mark.parametrize(
    ("headers", "dialect"),
    [
        ({"X-Vercel-AI-UI-Message-Stream": "v1"}, "vercel-ai"),  # a client forwarding the producer's headers
        ({"x-vercel-ai-ui-message-stream": "v1", "content-type": "text/event-stream"}, "vercel-ai"),
        ({"x-unrelated": "1"}, "generic"),
        (None, "generic"),
    ],
)
def test_a_pushed_requests_header_names_its_dialect_before_any_frame_does(
    headers: dict[str, str] | None, dialect: str
) -> None:
    decoded = decode_body(_UI_STREAM, "text/event-stream", headers=headers)
    assert (decoded.dialect, decoded.rejections) == (dialect, [])
    assert {e.dialect for e in decoded.events} == {dialect}


def test_a_forced_dialect_wins_over_a_header_hint() -> None:
    decoded = decode_body(
        _UI_STREAM,
        "text/event-stream",
        dialect=registry.get("generic"),
        headers={"x-vercel-ai-ui-message-stream": "v1"},
    )
    assert decoded.dialect == "generic"


async def test_a_post_subscription_takes_its_dialect_from_the_response_header() -> None:
    requests: list[bytes] = []

    async def chat(request: Request) -> Response:
        requests.append(await request.body())

        async def stream() -> AsyncIterator[bytes]:
            yield _UI_STREAM

        headers = {"x-vercel-ai-ui-message-stream": "v1"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    server = ThreadedServer(Starlette(routes=[Route("/api/chat", chat, methods=["POST"])]))
    try:
        body = {"messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}]}
        spans, snap = await _subscribe(
            SourceSettings(url=server.url + "/api/chat", method="POST", body=body), lambda s: bool(s["done"])
        )
    finally:
        server.stop()
    assert [json.loads(r) for r in requests] == [body]
    assert (snap["dialect"], snap["events"], snap["done"], snap["last_error"]) == ("vercel-ai", 2, True, None)
    assert spans
