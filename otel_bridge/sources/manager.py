"""The configured upstream sources: built and validated at startup, run as tasks, stopped at shutdown.

Built by :func:`otel_bridge.app.create_app` from ``settings.sources`` and run
from the app's lifespan: :meth:`SourceManager.start` after the bridge starts,
:meth:`SourceManager.shutdown` before the bridge shuts down (so no source
submits into a bridge that has closed its runs). One task per source; a
source that fails (or cannot connect) only ever affects itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from otel_bridge.config import ConfigError, SourceSettings, redact_url
from otel_bridge.dialects import openintent as openintent_dialect
from otel_bridge.dialects import registry
from otel_bridge.limits import MemoryGuard
from otel_bridge.pipeline import EventConsumer
from otel_bridge.sources.openintent import OpenIntentSource, is_openintent_url, targets_for
from otel_bridge.sources.upstream import UpstreamSource, source_name

log = logging.getLogger(__name__)

_RESTART_DELAY_S = 5.0  # a source whose task died of a bug is restarted after this pause, not in a hot loop


class Source(Protocol):
    """What the manager runs: ``run`` until cancelled, ``close`` once after, ``snapshot`` any time."""

    name: str
    kind: str

    async def run(self) -> None: ...

    def close(self) -> None: ...

    def snapshot(self) -> dict[str, object]: ...


def kind_of(settings: SourceSettings) -> str:
    if settings.kind is not None:
        return settings.kind
    return "openintent" if is_openintent_url(settings.url) else "sse"


def build_source(
    consumer: EventConsumer,
    settings: SourceSettings,
    *,
    clock_ns: Callable[[], int] = time.time_ns,
    rng: random.Random | None = None,
    guard: MemoryGuard | None = None,
) -> Source:
    """One source from its settings; a setting that cannot work raises :class:`ConfigError` now.

    With a memory budget (``guard``) the source pauses reading while the budget refuses work.
    """
    where = f"source {redact_url(settings.url)}"
    if kind_of(settings) == "openintent":
        if settings.dialect not in (None, openintent_dialect.NAME):
            raise ConfigError(f"{where}: an openintent source speaks the openintent dialect, not {settings.dialect!r}")
        if targets_for(settings).empty():
            raise ConfigError(
                f"{where}: an openintent source needs intents, agents or portfolios "
                "(or a /api/v1/subscribe/{intents|agents|portfolios}/ID url)"
            )
        return OpenIntentSource(consumer, settings, clock_ns=clock_ns, rng=rng, guard=guard)
    if settings.intents or settings.agents or settings.portfolios:
        raise ConfigError(f"{where}: intents, agents and portfolios apply to kind = 'openintent' only")
    dialect = None
    if settings.dialect is not None:
        try:
            dialect = registry.get(settings.dialect)
        except registry.UnknownDialectError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    body = request_body(settings, where)
    return UpstreamSource(consumer, settings, dialect, body=body, clock_ns=clock_ns, rng=rng, guard=guard)


def request_body(settings: SourceSettings, where: str) -> Any:
    """A POST source's JSON body: ``body`` as given, or ``body_file`` read and parsed now (a bad file fails startup)."""
    if settings.body_file is None:
        return settings.body
    path = Path(settings.body_file).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read body_file {str(path)!r}: {exc.strerror}") from None
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{where}: body_file {str(path)!r} is not JSON: {exc}") from None
    if not isinstance(body, (dict, list)):
        raise ConfigError(f"{where}: body_file {str(path)!r} must hold a JSON object or array")
    return body


class SourceManager:
    """Owns one task per configured source."""

    def __init__(
        self,
        consumer: EventConsumer,
        settings: Sequence[SourceSettings],
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
        guard: MemoryGuard | None = None,
    ) -> None:
        names = [source_name(s) for s in settings]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"two sources have the same name: {', '.join(duplicates)} (set name = ... on each)")
        self.sources: list[Source] = [
            build_source(consumer, s, clock_ns=clock_ns, rng=rng, guard=guard) for s in settings
        ]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for source in self.sources:
            self._tasks.append(asyncio.create_task(self._supervise(source), name=f"source:{source.name}"))

    async def _supervise(self, source: Source) -> None:
        while True:
            try:
                await source.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("source %s failed; restarting in %.0f s", source.name, _RESTART_DELAY_S)
            await asyncio.sleep(_RESTART_DELAY_S)

    async def shutdown(self) -> None:
        """Stop every source and map what their decoders still hold. Safe if ``start`` never ran."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("source task ended with %r", result)
        for source in self.sources:
            try:
                source.close()
            except Exception:
                log.exception("source %s failed to close", source.name)

    def snapshot(self) -> list[dict[str, object]]:
        return [source.snapshot() for source in self.sources]
