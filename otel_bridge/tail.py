"""``otel-bridge tail [URL]``: the live feed in a terminal, one line per event.

Each line: time, run, kind, name (step, tool, model or agent), duration,
tokens in→out, cost, and the error if any; failures are red. Filters are the
feed's own (``--kind 'llm.*'``...). When the connection drops (the server
restarted, say) it reconnects with ``Last-Event-ID``, so nothing still in the
server's ring is missed, and says so when something was.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from httpx_sse import connect_sse
from rich.console import Console
from rich.text import Text

from otel_bridge import semconv as sc
from otel_bridge.config import DEFAULT_PORT

DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
FILTERS = ("run_id", "agent", "kind", "dialect", "source")
_BACKOFF_MAX_S = 5.0

_KIND_STYLES = {"run": "bold", "agent": "bold blue", "step": "blue", "llm": "cyan", "tool": "magenta"}


def add_parser(sub: Any) -> None:
    """The ``tail`` subcommand's arguments (``sub`` is the CLI's subparsers object)."""
    p: argparse.ArgumentParser = sub.add_parser("tail", help="watch the live feed in the terminal")
    p.add_argument("url", nargs="?", default=DEFAULT_URL, help=f"the sidecar (default {DEFAULT_URL})")
    p.add_argument("--run-id", action="append", help="only this run (repeatable)")
    p.add_argument("--agent", action="append", help="only this agent (repeatable)")
    p.add_argument("--kind", action="append", help="only these kinds: llm.completed, a prefix llm, a glob 'tool.*'")
    p.add_argument("--dialect", action="append", help="only events of this dialect")
    p.add_argument("--source", action="append", help="only events from this source")
    p.add_argument("--token", help="bearer token (default: $OTEL_BRIDGE_TOKEN)")
    p.add_argument("--timeout", type=float, default=60.0, help="reconnect after this many silent seconds")


def stream_url(base: str, filters: Mapping[str, list[str] | None]) -> str:
    """The feed URL for a sidecar base URL (or a full ``/v1/stream`` URL) and filters."""
    base = base.rstrip("/")
    if not base.endswith("/v1/stream"):
        base += "/v1/stream"
    query = [(name, value) for name, values in filters.items() if values for value in values]
    return f"{base}?{urlencode(query)}" if query else base


def _ms(value: object) -> str:
    if not isinstance(value, (int, float)):
        return ""
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.1f}ms"


def render(data: Mapping[str, Any]) -> Text:
    """One feed event as one line."""
    kind = str(data.get("kind", "?"))
    failed = kind.endswith(".failed") or kind == "error" or bool(data.get("error"))
    ts = data.get("timestamp_ns")
    when = datetime.fromtimestamp(ts / 1e9).strftime("%H:%M:%S.%f")[:-3] if isinstance(ts, int) else "--:--:--"
    name = data.get("name") or data.get("tool_name") or data.get("model") or data.get("agent") or ""
    usage = data.get("usage") or {}
    tokens = f"{usage.get('input', 0)}→{usage.get('output', 0)} tok" if usage else ""
    cost = data.get("cost_usd")
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(when, style="dim")
    line.append(f"  {str(data.get('run_id', ''))[:16]:<16}  ")
    line.append(f"{kind:<16}", style="bold red" if failed else _KIND_STYLES.get(kind.split(".")[0], ""))
    line.append(f"  {str(name)[:28]:<28}")
    for part in (_ms(data.get("duration_ms")), tokens, f"${cost:.6f}" if isinstance(cost, (int, float)) else ""):
        if part:
            line.append(f"  {part}")
    if data.get("error"):
        line.append(f"  ✗ {data['error']}", style="bold red")
    return line


def render_notice(event: str, data: Mapping[str, Any]) -> Text:
    """A feed notice (missed events, lagging) as one highlighted line."""
    if event == sc.FEED_EVENT_MISSED:
        if data.get("reason") == "restarted":
            message = "the server restarted: events after id {} on the previous server are gone".format(
                data.get("last_event_id")
            )
        elif data.get("reason") == "unknown_id":
            message = "the server does not know id {}: showing new events".format(data.get("last_event_id"))
        else:
            message = f"missed {data.get('missed')} events (they left the server's ring)"
    else:
        message = f"fell behind: lost {data.get('lost')} events, {data.get('recovered')} recovered"
    return Text(f"⚠ {message}", style="bold yellow")


class Tail:
    """Follow the feed until interrupted, reconnecting with Last-Event-ID."""

    def __init__(self, url: str, token: str | None, console: Console, timeout: float = 60.0) -> None:
        self.url = url
        self.token = token
        self.console = console
        self.timeout = timeout
        self.last_id: str | None = None
        self.retry_s = 0.5

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        return headers

    def _follow(self) -> int | None:
        """One connection: ``None`` to reconnect, an exit code to stop."""
        timeout = httpx.Timeout(self.timeout, connect=5.0)
        with (
            httpx.Client(timeout=timeout) as client,
            connect_sse(client, "GET", self.url, headers=self._headers()) as src,
        ):
            status = src.response.status_code
            if status != 200:
                src.response.read()
                try:
                    message = src.response.json().get("message", src.response.text)
                except ValueError:
                    message = src.response.text
                self.console.print(Text(f"✗ {self.url}: {status} {message}", style="bold red"))
                return 2 if status in (400, 401, 403, 404) else None
            self.console.print(Text(f"● connected to {self.url}", style="dim"))
            for event in src.iter_sse():
                if event.retry is not None:
                    self.retry_s = event.retry / 1000
                if not event.data:
                    continue
                data = json.loads(event.data)
                if event.event in (sc.FEED_EVENT_MISSED, sc.FEED_EVENT_LAGGED):
                    self.console.print(render_notice(event.event, data))
                    continue
                if event.id:
                    self.last_id = event.id
                self.console.print(render(data))
        self.console.print(Text("● the stream ended", style="dim"))
        return None

    def run(self) -> int:
        backoff = self.retry_s
        down = False  # say "disconnected" once per outage, not once per attempt
        while True:
            try:
                code = self._follow()
                if code is not None:
                    return code
                backoff, down = self.retry_s, False
            except httpx.TransportError as exc:
                if not down:
                    self.console.print(Text(f"● disconnected ({type(exc).__name__}); reconnecting", style="dim"))
                    down = True
            time.sleep(backoff)
            backoff = min(max(backoff * 2, self.retry_s), _BACKOFF_MAX_S)


def run(args: argparse.Namespace) -> int:
    """``otel-bridge tail``: runs until Ctrl-C."""
    filters = {name: getattr(args, name, None) for name in FILTERS}
    token = args.token or os.environ.get("OTEL_BRIDGE_TOKEN") or None
    console = Console(highlight=False, soft_wrap=False)
    tail = Tail(stream_url(args.url, filters), token, console, timeout=args.timeout)
    try:
        return tail.run()
    except KeyboardInterrupt:
        return 0
