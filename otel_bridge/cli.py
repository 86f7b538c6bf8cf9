"""The ``otel-bridge`` command. The only module that exits the process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from otel_bridge import __version__, runtime
from otel_bridge.config import ConfigError, Settings, load_settings
from otel_bridge.sources.subscribe_args import add_subscribe_arguments, subscriptions

EPILOG = """examples:
  otel-bridge serve                                   # embedded store + viewer at http://127.0.0.1:8318
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 otel-bridge serve
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc otel-bridge serve
  otel-bridge serve --config otel-bridge.toml --port 9000
  otel-bridge demo                                    # serve, plus a synthetic agent emitting runs
  otel-bridge serve --subscribe http://agent:8000/stream --dialect locus --header 'Authorization: Bearer t'
  otel-bridge serve --subscribe http://oi:8000/api/v1/subscribe/intents/ID --header 'X-API-Key: dev-user-key'
  otel-bridge serve --subscribe http://graph:2024/runs/stream --body-file run.json
  otel-bridge serve --mcp-upstream http://127.0.0.1:8000/mcp --mcp-record mcp.ndjson   # MCP clients use :8318/mcp
  OTEL_BRIDGE_FEED_URL=redis://redis:6379 otel-bridge serve   # one live feed for a fleet of sidecars
  otel-bridge feed --redis redis://redis:6379 --port 8320      # a feed-only process for the UI tier
  otel-bridge replay capture.sse --out trace.json     # offline: capture -> OTLP/JSON
  otel-bridge replay a.sse b.ndjson --dialect openintent --export
  curl -X POST localhost:8318/v1/events -H 'Content-Type: application/json' \\
       -d '{"kind":"llm.completed","run_id":"r1","model":"gpt-4o","usage":{"input":12,"output":5}}'
"""


def _add_serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8318)")
    p.add_argument("--config", help="settings file, TOML or YAML")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_subscribe_arguments(p)
    p.add_argument("--mcp-upstream", metavar="URL", help="proxy this MCP server (Streamable HTTP) and trace it")
    p.add_argument("--mcp-path", metavar="PATH", help="where the sidecar serves the MCP proxy (default /mcp)")
    p.add_argument("--mcp-record", metavar="FILE", help="append the MCP exchanges to FILE (NDJSON) for replay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-bridge",
        description="Turn AI agents' event streams into OpenTelemetry GenAI traces.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"otel-bridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="run the sidecar", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_serve_args(serve)

    demo = sub.add_parser("demo", help="run the sidecar with a built-in synthetic agent")
    _add_serve_args(demo)
    demo.add_argument("--pace", type=float, default=1.0, help="time scale of the demo agent (0.5 = twice as fast)")

    feed = sub.add_parser(
        "feed", help="serve a fleet's shared live feed (Redis Streams): /v1/stream, the viewer, /v1/health"
    )
    feed.add_argument(
        "--redis", metavar="URL", help="the stream's Redis (redis:// or rediss://; or OTEL_BRIDGE_FEED_URL)"
    )
    feed.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    feed.add_argument("--port", type=int, help="port to listen on (default 8318)")
    feed.add_argument("--config", help="settings file, TOML or YAML (its [feed] and [auth] apply)")
    feed.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    replay = sub.add_parser("replay", help="turn captured streams into traces, offline")
    replay.add_argument("files", nargs="+", metavar="FILE", help="SSE text, JSON or NDJSON captures")
    replay.add_argument("--dialect", help="force a dialect instead of detecting it")
    replay.add_argument("--out", help="write an OTLP/JSON ExportTraceServiceRequest here ('-' for stdout)")
    replay.add_argument("--export", action="store_true", help="export over OTLP as configured by OTEL_EXPORTER_OTLP_*")
    replay.add_argument("--config", help="settings file, TOML or YAML")
    replay.add_argument(
        "--salt",
        help="mix TEXT into the trace ids: a capture already exported gives new traces (ids are deterministic)",
    )

    from otel_bridge import tail  # the live feed in a terminal

    tail.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if getattr(args, "host", None):
        server["host"] = args.host
    if getattr(args, "port", None) is not None:
        server["port"] = args.port
    if server:
        overrides["server"] = server
    mcp = {k: v for k in ("upstream", "path", "record") if (v := getattr(args, f"mcp_{k}", None)) is not None}
    if mcp:
        overrides["mcp"] = mcp
    if getattr(args, "redis", None):
        overrides["feed"] = {"backend": args.redis}
    settings = load_settings(args.config, overrides=overrides)
    if args.command != "feed":
        settings.sources.extend(subscriptions(args))  # --subscribe adds to the config file's sources
    return settings


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _serve(settings: Settings, log_level: str, demo_pace: float | None = None) -> int:

    from otel_bridge.app import create_app

    companions = []
    if demo_pace is not None:
        from otel_bridge.demo import DemoAgent

        host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::") else settings.server.host
        agent = DemoAgent(f"http://{host}:{settings.server.port}", pace=demo_pace, token=settings.auth.token)
        companions.append(agent.run_forever)
    app = create_app(settings, companions=companions)
    where = f"http://{settings.server.host}:{settings.server.port}"
    export = settings.otlp.endpoint or "off (embedded store only)"
    return _run(
        app,
        settings,
        log_level,
        f"otel-bridge {__version__}: ingest {where}/v1/events, traces {where}/v1/traces, OTLP export: {export}",
    )


def _feed(settings: Settings, log_level: str) -> int:
    from otel_bridge.app import create_feed_app
    from otel_bridge.config import MEMORY_FEED, redact_url

    if settings.feed.backend == MEMORY_FEED:
        print(
            "otel-bridge feed: needs the fleet's Redis: --redis redis://host:6379 (or OTEL_BRIDGE_FEED_URL)",
            file=sys.stderr,
        )
        return 2
    app = create_feed_app(settings)
    where = f"http://{settings.server.host}:{settings.server.port}"
    return _run(
        app,
        settings,
        log_level,
        f"otel-bridge {__version__}: feed {where}/v1/stream from {redact_url(settings.feed.backend)}"
        f" stream {settings.feed.redis.stream}",
    )


def _run(app: Any, settings: Settings, log_level: str, banner: str) -> int:
    import uvicorn

    runtime.tune_gc()
    runtime.keep_freed_memory()
    print(banner, file=sys.stderr)
    from otel_bridge.web.auth import RedactQueryCredentials
    from otel_bridge.web.http_lane import lane_protocol
    from otel_bridge.web.lanes import SidecarApp

    logging.getLogger("uvicorn.access").addFilter(RedactQueryCredentials())  # tokens never reach the log
    # The sidecar's small POSTs are answered by the HTTP protocol itself where it can (web/http_lane.py).
    http = lane_protocol(app) if isinstance(app, SidecarApp) else None
    with _stop_signals_exit_cleanly():
        uvicorn.run(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level=log_level,
            loop="auto",
            http=http or "auto",
            timeout_graceful_shutdown=5,
        )
    return 0


@contextlib.contextmanager
def _stop_signals_exit_cleanly() -> Iterator[None]:
    """SIGTERM and SIGINT end ``serve`` with status 0 once the shutdown (and the export drain) is done.

    uvicorn handles both during the run and, after its graceful shutdown, raises
    the signal again with the handler it found; with the default handlers the
    process would then die of it (143 for SIGTERM) after a clean drain. The
    handlers installed here take that repeated signal and do nothing.
    """
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            logging.getLogger(__name__).info("stopped by %s", signal.Signals(caught[0]).name)


def _replay(args: argparse.Namespace) -> int:
    from otel_bridge import semconv as sc
    from otel_bridge.assembly import SCOPE, assemble, resource_for
    from otel_bridge.dialects.registry import UnknownDialectError
    from otel_bridge.pipeline import ListSink
    from otel_bridge.sinks import otlp_json
    from otel_bridge.sources.replay import replay_files

    settings = load_settings(args.config)
    if args.export and not settings.otlp.endpoint:
        print(
            "otel-bridge replay: --export needs OTEL_EXPORTER_OTLP_ENDPOINT (or otlp.endpoint in --config)",
            file=sys.stderr,
        )
        return 2
    if not args.export:
        settings.otlp.endpoint = None
    settings.store.enabled = False
    settings.feed.enabled = False  # nobody subscribes to a replay
    if args.salt:
        settings.mapping.id_salt = args.salt
    for path in args.files:
        if not Path(path).is_file():
            print(f"otel-bridge replay: no such file: {path}", file=sys.stderr)
            return 2
    sink = ListSink()

    async def run() -> int:
        pipeline = assemble(settings, extra_sinks=[sink])
        bridge = pipeline.bridge
        await bridge.start()
        try:
            reports = replay_files(bridge, args.files, args.dialect)
        finally:
            await bridge.shutdown()
        for r in reports:
            runs = ", ".join(f"{run} -> {trace}" for run, trace in r.runs.items())
            print(
                f"{r.path}: dialect={r.dialect} frames={r.frames} events={r.events} "
                f"rejected={len(r.rejections)} runs: {runs or 'none'}",
                file=sys.stderr,
            )
            for rej in r.rejections[:10]:
                print(f"  frame {rej.index}: {rej.reason}: {rej.message}", file=sys.stderr)
        if args.export:
            exported = pipeline.stats.spans_exported.get("otlp", 0)
            failed = pipeline.stats.spans_export_failed.get("otlp", 0)
            print(f"exported {exported} spans to {settings.otlp.endpoint}, {failed} failed", file=sys.stderr)
            if failed:
                return 1
        return 0

    try:
        code = asyncio.run(run())
    except UnknownDialectError as exc:
        print(f"otel-bridge replay: {exc}", file=sys.stderr)
        return 2
    if args.out:
        body = otlp_json.encode_request(sink.spans, resource_for(settings), SCOPE[0], SCOPE[1], sc.SCHEMA_URL)
        if args.out == "-":
            sys.stdout.buffer.write(body + b"\n")
        else:
            Path(args.out).write_bytes(body)
            print(f"wrote {len(sink.spans)} spans to {args.out}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", "info").upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per export request is noise
    try:
        if args.command == "serve":
            return _serve(_settings(args), args.log_level)
        if args.command == "demo":
            return _serve(_settings(args), args.log_level, demo_pace=args.pace)
        if args.command == "feed":
            return _feed(_settings(args), args.log_level)
        if args.command == "replay":
            return _replay(args)
        if args.command == "tail":
            from otel_bridge import tail

            return tail.run(args)
    except ConfigError as exc:
        print(f"otel-bridge: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2
