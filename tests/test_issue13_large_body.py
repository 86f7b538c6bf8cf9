"""Issue 13, item 3: one large body cannot stall the sidecar. Health answers while 10 MB is ingested,
and SSE framing does work proportional to the input (counted, not timed)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import msgspec

from otel_bridge.dialects import framing
from otel_bridge.dialects.framing import SSEParser, parse_sse
from tests.support.server import BridgeProcess


def sse_body(size: int) -> bytes:
    lines: list[bytes] = []
    total = i = 0
    while total < size:
        event = {"kind": "llm.completed", "run_id": f"run{i // 50}", "call_id": f"c{i}", "model": "m", "duration_ms": 1}
        line = b"data: " + msgspec.json.encode(event) + b"\n\n"
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)


def test_health_answers_while_a_10_mb_body_is_ingested(bridge_server: Callable[..., BridgeProcess]) -> None:
    server = bridge_server()
    body = sse_body(10 * 1024 * 1024 - 200)
    answer: list[httpx.Response] = []

    def post() -> None:
        answer.append(
            httpx.post(
                f"{server.url}/v1/events", content=body, headers={"Content-Type": "text/event-stream"}, timeout=170
            )
        )

    poster = threading.Thread(target=post)
    poster.start()
    during = 0
    with httpx.Client(timeout=170) as client:
        while poster.is_alive():
            r = client.get(f"{server.url}/v1/health")
            assert r.status_code == 200
            if poster.is_alive():
                during += 1
    poster.join()
    assert answer[0].status_code == 202, answer[0].text
    assert answer[0].json()["rejected"] == 0
    # A loop held by the whole ingest would answer health once at most before the POST returns.
    assert during >= 3, during


class CountingStr(str):
    """A str that counts the characters its ``find`` calls scan (what made LF bodies quadratic)."""

    scanned = 0

    def find(self, sub: str, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
        found = str.find(self, sub, start, end)
        CountingStr.scanned += (found if found != -1 else len(self)) - (start or 0)
        return found

    # Every string the parser derives from its input stays counted.
    def __getitem__(self, key: object) -> CountingStr:  # type: ignore[override]
        return CountingStr(str.__getitem__(self, key))  # type: ignore[index]

    def __add__(self, other: str) -> CountingStr:
        return CountingStr(str.__add__(self, other))

    def __radd__(self, other: str) -> CountingStr:
        return CountingStr(str.__add__(other, self))


def _scanned(text: str) -> int:
    CountingStr.scanned = 0
    parser = SSEParser()
    frames = parser.feed(CountingStr(text)) + parser.close()
    assert len(frames) == text.count("\n\n")
    return CountingStr.scanned


def test_sse_framing_scans_each_character_a_bounded_number_of_times() -> None:
    """LF line ends used to search for a CR from every line start to the end of the body: n² work."""
    small = sse_body(100_000).decode()
    large = sse_body(400_000).decode()
    ratio = _scanned(large) / _scanned(small)
    assert 3.5 < ratio < 4.5, ratio
    assert _scanned(large) <= 3 * len(large)


def test_a_long_line_in_many_chunks_is_joined_once() -> None:
    parser = SSEParser()
    value = "x" * 50_000
    chunks = ["data: ", *(value[i : i + 100] for i in range(0, len(value), 100)), "\n\n"]
    frames = [f for chunk in chunks for f in parser.feed(chunk)]
    assert frames == [framing.Frame(None, value.encode())]
    assert parse_sse("data: " + value + "\n\n") == frames
