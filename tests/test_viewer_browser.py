"""The viewer in a real browser: headless Chromium (the system's) driven by Playwright.

Each test serves the real app (``LiveServer``), feeds it runs over HTTP and
reads what the page shows. Playwright's own browser download is not used: it
is pointed at the system Chromium with ``executable_path``.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from PIL import Image, ImageChops

from otel_bridge.config import AuthSettings, MappingSettings, Settings
from otel_bridge.demo import DemoAgent
from tests.support.live import LiveServer, post, wait_for
from tests.support.viewer_runs import NOW_MS, big_run, finished_runs, open_run

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright's Python package is not installed (the dev extras install it)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="the system Chromium is not installed (Debian package chromium)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def errors() -> list[str]:
    """What the page reported as errors: script errors and failed requests. A test that expects one takes it out."""
    return []


@pytest.fixture
def page(browser: Browser, errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="UTC", locale="en-US")
    pg = context.new_page()
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.set_default_timeout(15_000)
    try:
        yield pg
        assert errors == [], errors
    finally:
        context.close()


def serve(settings: Settings | None = None) -> LiveServer:
    return LiveServer(settings or Settings(mapping=MappingSettings(capture_content=True)))


def stop(server: LiveServer) -> None:
    # Playwright's sync API keeps an event loop running on this thread; the server's
    # shutdown runs its own loop, so it runs on a thread of its own.
    thread = threading.Thread(target=server.stop)
    thread.start()
    thread.join(30)


@pytest.fixture
def runs() -> Iterator[LiveServer]:
    """Three finished runs (one failed) and one running."""
    live = serve()
    try:
        for events in [*finished_runs(), open_run()]:
            post(live.url, events)
        wait_for(
            lambda: (
                sorted(t["status"] for t in httpx.get(live.url + "/v1/traces").json()["traces"])
                == ["error", "ok", "ok", "running"]
            ),
            timeout=15,
            what="three finished runs and one running",
        )
        yield live
    finally:
        stop(live)


def trace_id(server: LiveServer, run_id: str) -> str:
    (summary,) = httpx.get(server.url + "/v1/traces", params={"run_id": run_id}).json()["traces"]
    tid: str = summary["trace_id"]
    return tid


def listed(page: Page) -> list[str]:
    return page.locator("#results tbody tr td:nth-child(2)").all_inner_texts()


def shown_rows(page: Page) -> list[str]:
    return page.locator("#wf-rows .row .name").all_inner_texts()


def test_search_filters_and_the_scatter(page: Page, runs: LiveServer, errors: list[str]) -> None:
    page.goto(runs.url + "/")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 4")
    assert listed(page) == ["r-open", "r-gamma", "r-beta", "r-alpha"]
    assert page.locator("#scatter circle.dot").count() == 4
    assert page.locator("#scatter circle.dot.error").count() == 1

    page.fill("#search [name=agent]", "planner")
    page.click("#search button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 2")
    assert listed(page) == ["r-beta", "r-alpha"]
    assert "agent=planner" in page.url  # the search is a deep link

    page.select_option("#search [name=status]", "error")
    page.click("#search button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 1")
    assert listed(page) == ["r-beta"]

    # A deep link to a search, sorted longest first, opened fresh.
    page.goto(runs.url + "/#sort=-duration&min_duration_ms=900")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 3")
    assert listed(page) == ["r-beta", "r-gamma", "r-alpha"]
    assert page.input_value("#search [name=min_duration_ms]") == "900"

    # A bad search shows the API's own message.
    page.fill("#search [name=max_duration_ms]", "10")
    page.click("#search button[type=submit]")
    page.wait_for_selector("#search-error:not([hidden])")
    assert page.inner_text("#search-error") == "min_duration_ms must not be greater than max_duration_ms"
    assert errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    errors.clear()

    # A dot in the scatter opens its run.
    page.goto(runs.url + "/#status=error")
    page.wait_for_function("document.querySelectorAll('#scatter circle.dot').length === 1")
    page.click("#scatter circle.dot")
    page.wait_for_selector("#wf-rows .row")
    assert f"trace={trace_id(runs, 'r-beta')}" in page.url


def test_a_failed_run_opens_at_its_error_with_tags_events_and_totals(page: Page, runs: LiveServer) -> None:
    tid = trace_id(runs, "r-beta")
    page.goto(f"{runs.url}/#trace={tid}")
    page.wait_for_function("document.querySelectorAll('#wf-rows .row').length === 3")
    assert shown_rows(page) == ["invoke_agent planner", "chat claude-sonnet-4-5", "execute_tool fetch_page"]
    # Colours by operation, the failure in red.
    classes = page.eval_on_selector_all("#wf-rows .row", "rows => rows.map(r => r.className.split(' '))")
    assert [[c for c in row if c in {"op-agent", "op-chat", "op-tool", "error", "selected"}] for row in classes] == [
        ["op-agent", "error"],
        ["op-chat"],
        ["op-tool", "error", "selected"],  # the trace opens at its first failed call ...
    ]
    # ... and says why it failed.
    assert page.inner_text("#detail .error-box").split() == [
        "Error:",
        "TimeoutError",
        "TimeoutError:",
        "upstream",
        "took",
        "too",
        "long",
    ]
    # Per-trace totals.
    totals = dict(
        zip(
            page.locator("#totals dt").all_inner_texts(),
            page.locator("#totals dd").all_inner_texts(),
            strict=True,
        )
    )
    assert totals["Duration"] == "5.00s"
    assert (totals["LLM calls"], totals["Tool calls"], totals["Errors"]) == ("1", "1", "2")
    assert totals["Tokens"] == "900 in · 90 out"
    # A time ruler with ticks, a span event on its bar, the critical path marked.
    assert page.locator("#ruler .tick").count() >= 4
    assert page.locator("#wf-rows .row.op-agent .mark").count() == 1  # the thinking event
    assert page.locator("#wf-rows .row.critical").count() == 3
    # Tool arguments and result.
    assert '"query": "r-beta notes"' in page.inner_text("#detail .tool-io")


def test_tree_expand_collapse_keyboard_and_span_tags(page: Page, runs: LiveServer) -> None:
    tid = trace_id(runs, "r-alpha")
    page.goto(f"{runs.url}/#trace={tid}")
    page.wait_for_function("document.querySelectorAll('#wf-rows .row').length === 3")
    page.click("#wf-rows .row >> nth=0 >> .toggle")
    assert shown_rows(page) == ["invoke_agent planner"]
    assert page.get_attribute("#wf-rows .row >> nth=0", "aria-expanded") == "false"
    assert page.inner_text("#wf-rows .row .count") == "2"
    page.click("#wf-rows .row >> nth=0 >> .toggle")
    assert len(shown_rows(page)) == 3

    # Keyboard: Home, Left collapses, Right expands, Down moves to the chat span.
    page.focus("#wf")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowLeft")
    assert shown_rows(page) == ["invoke_agent planner"]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.inner_text("#wf-rows .row.selected .name") == "chat gpt-4o"
    # The tags table: GenAI groups first, then the bridge's own.
    groups = page.locator("#detail table.tags tr.group th").all_inner_texts()
    assert groups[:2] == ["GenAI · operation", "GenAI · provider"]
    assert groups[-1] == "otel-bridge"
    tags = dict(
        zip(
            page.locator("#detail table.tags td.k").all_inner_texts(),
            page.locator("#detail table.tags td.v").all_inner_texts(),
            strict=False,
        )
    )
    assert tags["gen_ai.request.model"] == "gpt-4o"
    assert tags["gen_ai.usage.input_tokens"] == "100"
    # The response rendered as a conversation (content was captured), with the LLM figures.
    assert page.inner_text("#detail .conversation .msg.role-assistant .text") == "I will call search."
    assert "Input tokens\n100" in page.inner_text("#detail .figures")
    # A span deep link: reload on it and the same span is selected.
    span_id = page.get_attribute("#wf-rows .row.selected", "data-span-id")
    assert span_id is not None
    assert f"span={span_id}" in page.url
    page.reload()
    page.wait_for_selector("#wf-rows .row.selected")
    assert page.get_attribute("#wf-rows .row.selected", "data-span-id") == span_id


def test_download_is_the_traces_otlp_json(page: Page, runs: LiveServer) -> None:
    tid = trace_id(runs, "r-gamma")
    page.goto(f"{runs.url}/#trace={tid}")
    page.wait_for_selector("#wf-rows .row")
    with page.expect_download() as info:
        page.click("#trace-download")
    download = info.value
    assert download.suggested_filename == f"trace-{tid}.json"
    path = download.path()
    assert path.read_bytes() == httpx.get(f"{runs.url}/v1/traces/{tid}").content


def test_a_live_run_from_the_demo_agent_grows_until_it_ends(page: Page) -> None:
    server = serve()
    agent = DemoAgent(server.url, seed=7, pace=2.0)
    done = threading.Event()

    def one_run() -> None:
        async def go() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                await agent.one_run(client)

        try:
            asyncio.run(go())
        finally:
            done.set()

    try:
        page.goto(server.url + "/#status=running")
        page.wait_for_selector("#status:text('live')")
        threading.Thread(target=one_run, daemon=True).start()
        # It appears at once in the list, as running.
        page.wait_for_selector("#results tbody tr.running", timeout=10_000)
        page.click("#results tbody tr.running")
        page.wait_for_selector("#run-events-pane:not([hidden])")
        page.wait_for_selector("#wf-rows .row.open")  # an open span: a growing bar
        counts = [len(shown_rows(page))]
        while not done.is_set():
            page.wait_for_timeout(100)
            counts.append(len(shown_rows(page)))
        assert max(counts) > counts[0], counts  # the waterfall grew while the run ran
        page.wait_for_selector("#run-live:text('ended')", timeout=15_000)
        assert page.locator("#wf-rows .row.open").count() == 0
        tid = page.url.split("trace=")[1].split("&")[0]
        stored = httpx.get(f"{server.url}/v1/traces/{tid}").json()["resourceSpans"][0]["scopeSpans"][0]["spans"]
        assert sorted(shown_rows(page)) == sorted(s["name"] for s in stored)
        # Every event of the run is in the pane beside it, once.
        seqs = page.eval_on_selector_all("#run-events li[data-seq]", "items => items.map(i => Number(i.dataset.seq))")
        assert seqs == sorted(set(seqs))
        assert page.inner_text("#run-events li[data-seq] >> nth=0 >> .kind") == "run.started"
        assert re.fullmatch(r"run\.(finished|failed)", page.inner_text("#run-events li[data-seq] >> nth=-1 >> .kind"))
    finally:
        stop(server)


def test_reconnect_resumes_without_gaps(page: Page) -> None:
    server = serve()
    try:
        base = {"run_id": "resume-1", "agent": "a"}
        post(server.url, [{**base, "kind": "run.started"}, {**base, "kind": "llm.started", "call_id": "c1"}])
        wait_for(lambda: bool(httpx.get(server.url + "/v1/traces").json()["traces"]), what="the run listed")
        page.goto(f"{server.url}/#trace={trace_id(server, 'resume-1')}")
        page.wait_for_function("document.querySelectorAll('#run-events li[data-seq]').length === 2")
        resumes: list[str] = []
        page.on("request", lambda r: resumes.append(r.url) if "last_event_id" in r.url else None)
        page.evaluate("window.otelBridgeViewer.cutFeeds()")
        last = page.eval_on_selector("#run-events li[data-seq]:last-child", "li => li.dataset.seq")
        # What happens while the page is cut off...
        post(
            server.url,
            [
                {**base, "kind": "llm.completed", "call_id": "c1", "usage": {"input": 3, "output": 1}},
                {**base, "kind": "tool.started", "tool_name": "t", "call_id": "t1"},
                {**base, "kind": "tool.completed", "tool_name": "t", "call_id": "t1"},
            ],
        )
        page.wait_for_timeout(300)
        assert page.locator("#run-events li[data-seq]").count() == 2
        # ... arrives after the reconnect, once each, in order.
        page.evaluate("window.otelBridgeViewer.resumeFeeds()")
        page.wait_for_function("document.querySelectorAll('#run-events li[data-seq]').length === 5")
        kinds = page.locator("#run-events li[data-seq] .kind").all_inner_texts()
        assert kinds == ["run.started", "llm.started", "llm.completed", "tool.started", "tool.completed"]
        seqs = page.eval_on_selector_all("#run-events li[data-seq]", "items => items.map(i => Number(i.dataset.seq))")
        assert seqs == list(range(seqs[0], seqs[0] + 5))
        assert any(f"last_event_id={last}" in url for url in resumes), resumes
        assert "execute_tool t" in shown_rows(page)
    finally:
        stop(server)


def test_the_live_tail_follows_the_feed_with_its_filters(page: Page, errors: list[str]) -> None:
    server = serve()
    try:
        page.goto(server.url + "/#view=tail&kind=tool")
        page.wait_for_selector("#status:text('live')")
        assert page.input_value("#tail-filters [name=kind]") == "tool"
        post(
            server.url,
            [
                {"kind": "run.started", "run_id": "tail-1"},
                {"kind": "tool.started", "run_id": "tail-1", "tool_name": "x", "call_id": "1"},
                {"kind": "tool.completed", "run_id": "tail-1", "tool_name": "x", "call_id": "1"},
                {"kind": "run.finished", "run_id": "tail-1"},
            ],
        )
        page.wait_for_function("document.querySelectorAll('#tail li[data-seq]').length === 2")
        assert page.locator("#tail li .kind").all_inner_texts() == ["tool.completed", "tool.started"]
        # A filter the feed refuses shows the feed's message.
        page.fill("#tail-filters [name=kind]", "nonsense")
        page.click("#tail-filters button[type=submit]")
        page.wait_for_selector("#tail-error:not([hidden])")
        assert page.inner_text("#tail-error").startswith("kind 'nonsense' matches no event kind")
        errors[:] = [e for e in errors if "400 (Bad Request)" not in e]  # the feed's refusal, expected
        # A line opens its trace at its span.
        page.goto(server.url + "/#view=tail")
        post(server.url, [{"kind": "progress", "run_id": "tail-1", "name": "late"}])
        page.wait_for_selector("#tail li[data-seq]")
        page.click("#tail li[data-seq]")
        page.wait_for_selector("#wf-rows .row")
        assert "trace=" in page.url
    finally:
        stop(server)


def test_the_token_is_asked_once_per_session(page: Page, errors: list[str]) -> None:
    server = serve(Settings(auth=AuthSettings(token="s3cret-token")))
    try:
        post(server.url, finished_runs()[0], token="s3cret-token")
        page.goto(server.url + "/")
        page.wait_for_selector("#token-dialog[open]")
        page.fill("#token", "s3cret-token")
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("#results tbody tr")
        page.wait_for_selector("#status:text('live')")  # the feed takes it too
        page.reload()
        page.wait_for_selector("#results tbody tr")
        assert page.locator("#token-dialog[open]").count() == 0
        # The first answers, before the token was known, and only those.
        assert errors == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"] * 2
        errors.clear()
    finally:
        stop(server)


SPANS_10K = 10_000


def test_a_10k_span_trace_renders_and_scrolls(page: Page) -> None:
    server = serve(Settings())
    try:
        steps, tools = 99, 100  # 1 run + 99 steps + 9,900 tool calls
        assert 1 + steps * (1 + tools) == SPANS_10K
        post(server.url, big_run("big", steps, tools))
        wait_for(
            lambda: (
                (t := httpx.get(server.url + "/v1/traces", params={"run_id": "big"}).json()["traces"])
                and t[0]["span_count"] == SPANS_10K
            ),
            timeout=30,
            what="10,000 spans stored",
        )
        page.goto(f"{server.url}/#trace={trace_id(server, 'big')}")
        page.wait_for_selector("#wf-rows .row")
        assert page.inner_text("#totals dd >> nth=1") == "10,000"
        # Virtualised: a screenful of rows in the DOM, not ten thousand.
        assert page.locator("#wf-rows .row").count() < 120
        height = page.eval_on_selector("#wf-spacer", "e => e.offsetHeight")
        assert height == SPANS_10K * 24
        page.eval_on_selector("#wf-scroll", "e => { e.scrollTop = e.scrollHeight; }")
        page.wait_for_function(
            "[...document.querySelectorAll('#wf-rows .row .name')].some(n => n.textContent.endsWith('tool-98-99'))"
        )
        # The keyboard reaches the end too, and the page stays responsive.
        page.focus("#wf")
        page.keyboard.press("Home")
        page.keyboard.press("End")
        assert page.inner_text("#wf-rows .row.selected .name") == "execute_tool tool-98-99"
        page.keyboard.press("Home")
        page.keyboard.press("ArrowLeft")  # collapse the root: one row left
        assert shown_rows(page) == ["invoke_agent bulk"]
    finally:
        stop(server)


def test_the_page_shows_the_trace_link_when_a_template_is_set(page: Page) -> None:
    from otel_bridge.config import FeedSettings

    server = serve(Settings(feed=FeedSettings(trace_url_template="http://jaeger.example/trace/{trace_id}")))
    try:
        post(server.url, finished_runs()[0])
        wait_for(lambda: bool(httpx.get(server.url + "/v1/traces").json()["traces"]), what="a run")
        tid = trace_id(server, "r-alpha")
        page.goto(f"{server.url}/#trace={tid}&now={NOW_MS}")
        page.wait_for_selector("#wf-rows .row")
        assert page.get_attribute("#trace-link", "href") == f"http://jaeger.example/trace/{tid}"
        assert page.is_visible("#trace-link")
    finally:
        stop(server)


# --- screenshots of the main views, against committed references ----------------------

REFERENCES = Path(__file__).parent / "screenshots"  # not fixtures/: that folder holds dialect captures only
UPDATE_ENV = "OTEL_BRIDGE_UPDATE_SCREENSHOTS"
CHANNEL_TOLERANCE = 32  # a pixel differs when a channel moves more than this (anti-aliasing moves less)
MAX_DIFFERENT = 0.005  # the share of pixels that may differ


def differing_share(actual: bytes, reference: Path) -> float:
    with Image.open(io.BytesIO(actual)) as a, Image.open(reference) as r:
        if a.size != r.size:
            return 1.0
        diff = ImageChops.difference(a.convert("RGB"), r.convert("RGB"))
        mask = diff.point(lambda v: 255 if v > CHANNEL_TOLERANCE else 0).convert("L")
        changed = sum(mask.histogram()[1:])  # any channel past the tolerance
        return changed / (a.size[0] * a.size[1])


def check_screenshot(page: Page, name: str, tmp_path: Path) -> None:
    # No caret, no transitions: the same picture every time.
    page.add_style_tag(
        content="*, *::before, *::after { caret-color: transparent !important; transition: none !important; }"
    )
    page.wait_for_timeout(200)
    shot = page.screenshot(animations="disabled")
    reference = REFERENCES / f"{name}.png"
    if os.environ.get(UPDATE_ENV) == "1":
        reference.parent.mkdir(parents=True, exist_ok=True)
        reference.write_bytes(shot)
        return
    assert reference.exists(), f"no reference {reference.name}; make one with {UPDATE_ENV}=1"
    share = differing_share(shot, reference)
    if share > MAX_DIFFERENT:
        (tmp_path / f"{name}.png").write_bytes(shot)
        pytest.fail(f"{name}: {share:.2%} of pixels differ from the reference (actual: {tmp_path / name}.png)")


def open_frozen(page: Page, url: str, ready: str, live: bool) -> None:
    page.goto(url)
    page.wait_for_selector(ready)
    if live:
        page.wait_for_selector("#status:text('live')")


@pytest.mark.parametrize(
    ("name", "width", "height"),
    [("search-1280x800", 1280, 800), ("search-390x844", 390, 844)],
)
def test_screenshot_search(
    browser: Browser, runs: LiveServer, tmp_path: Path, name: str, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, timezone_id="UTC", locale="en-US")
    try:
        page = context.new_page()
        open_frozen(page, f"{runs.url}/?now={NOW_MS}#", "#results tbody tr:nth-child(4)", live=True)
        check_screenshot(page, name, tmp_path)
    finally:
        context.close()


@pytest.mark.parametrize(
    ("name", "run_id", "width", "height"),
    [
        ("trace-failed-1280x800", "r-beta", 1280, 800),
        ("trace-running-1280x800", "r-open", 1280, 800),
        ("trace-failed-390x844", "r-beta", 390, 844),
    ],
)
def test_screenshot_trace(
    browser: Browser, runs: LiveServer, tmp_path: Path, name: str, run_id: str, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, timezone_id="UTC", locale="en-US")
    try:
        page = context.new_page()
        open_frozen(
            page,
            f"{runs.url}/?now={NOW_MS}#trace={trace_id(runs, run_id)}",
            "#wf-rows .row.selected",
            live=run_id == "r-open",
        )
        if run_id == "r-open":
            page.wait_for_function("document.querySelectorAll('#run-events li[data-seq]').length === 2")
        check_screenshot(page, name, tmp_path)
    finally:
        context.close()
