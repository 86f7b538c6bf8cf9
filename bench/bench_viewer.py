"""The viewer with a 10,000-span trace: how long it takes to load, draw and scroll, in headless Chromium.

``python bench/bench_viewer.py --rounds N``: serves the real app, stores one run
of 99 steps x 100 tool calls (10,000 spans), then opens it N times in the system
Chromium (Playwright, ``executable_path``) and reads the page's own timings
(``window.otelBridgeViewer.timings``): the trace request, building the span
model from OTLP/JSON, the first render (tree, critical path, visible rows) and
one scroll step's rows render, over 200 steps from top to bottom. Also the
browser's CPU seconds per open, against a baseline of opening a 3-span trace
in the same browser, interleaved round by round. Medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proctree import tree_cpu_seconds
from otel_bridge.config import Settings
from tests.support.live import LiveServer, post, wait_for
from tests.support.viewer_runs import big_run, finished_runs


def trace_id(server: LiveServer, run_id: str) -> str:
    (summary,) = httpx.get(server.url + "/v1/traces", params={"run_id": run_id}).json()["traces"]
    return str(summary["trace_id"])


def open_trace(page, url: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    page.goto("about:blank")
    before = tree_cpu_seconds(os.getpid())
    page.goto(url)
    page.wait_for_function("window.otelBridgeViewer && window.otelBridgeViewer.timings.renderMs !== undefined")
    timings: dict[str, float] = page.evaluate("({...window.otelBridgeViewer.timings})")
    timings["cpu_s"] = tree_cpu_seconds(os.getpid()) - before
    return timings


def scroll_rows_ms(page) -> float:  # type: ignore[no-untyped-def]
    """Median time to render the visible rows, over 200 scroll steps from top to bottom."""
    samples: list[float] = page.evaluate(
        """async () => {
            const scroll = document.getElementById("wf-scroll");
            const out = [];
            for (let i = 0; i <= 200; i++) {
                scroll.scrollTop = (scroll.scrollHeight - scroll.clientHeight) * i / 200;
                await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
                out.push(window.otelBridgeViewer.timings.rowsMs);
            }
            return out;
        }"""
    )
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("the system Chromium is needed (Debian package chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    server = LiveServer(Settings())
    try:
        post(server.url, big_run("big", 99, 100))
        post(server.url, finished_runs()[0])
        wait_for(
            lambda: (
                httpx.get(server.url + "/v1/traces", params={"run_id": "big"}).json()["traces"][0]["span_count"]
                == 10_000
            ),
            timeout=60,
            what="10,000 spans stored",
        )
        big = f"{server.url}/#trace={trace_id(server, 'big')}"
        small = f"{server.url}/#trace={trace_id(server, 'r-alpha')}"
        rows: dict[str, list[float]] = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            open_trace(page, small)  # warm up: the script compiled, the connection open
            for _ in range(args.rounds):
                base = open_trace(page, small)
                got = open_trace(page, big)
                assert got["spans"] == 10_000, got
                got["scroll_rows_ms"] = scroll_rows_ms(page)
                for key, value in got.items():
                    rows.setdefault(key, []).append(value)
                rows.setdefault("baseline_cpu_s", []).append(base["cpu_s"])
            browser.close()
    finally:
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(30)
    print(f"10,000-span trace, {args.rounds} rounds, medians (min-max):")
    for key in ("fetchMs", "parseMs", "renderMs", "scroll_rows_ms", "cpu_s", "baseline_cpu_s"):
        values = rows[key]
        print(f"  {key:15} {statistics.median(values):8.2f}  ({min(values):.2f}-{max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
