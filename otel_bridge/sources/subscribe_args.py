"""``serve --subscribe URL [--dialect D] [--header 'K: V'] [--method POST --body JSON | --body-file F]``, repeatable.

``--dialect``, ``--header``, ``--method``, ``--body`` and ``--body-file`` apply to the
``--subscribe`` before them, so ``--subscribe A --header 'X-API-Key: k' --subscribe B
--dialect locus`` gives A a header and B a forced dialect. ``--body`` or ``--body-file``
alone implies ``--method POST``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import msgspec

from otel_bridge.config import ConfigError, SourceSettings

_DEST = "subscriptions"


def _current(parser: argparse.ArgumentParser, namespace: argparse.Namespace, option: str) -> dict[str, Any]:
    subs: list[dict[str, Any]] = getattr(namespace, _DEST, None) or []
    if not subs:
        parser.error(f"{option} applies to the --subscribe before it; put it after a --subscribe URL")
    return subs[-1]


class _Subscribe(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        subs = list(getattr(namespace, _DEST, None) or [])
        subs.append({"url": str(values), "headers": {}})
        setattr(namespace, _DEST, subs)


class _Dialect(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        _current(parser, namespace, option_string or "--dialect")["dialect"] = str(values)


class _Header(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        name, sep, value = str(values).partition(":")
        if not sep or not name.strip():
            parser.error(f"--header expects 'Name: value', got {values!r}")
        _current(parser, namespace, option_string or "--header")["headers"][name.strip()] = value.strip()


class _Set(argparse.Action):
    """``--method``, ``--body``, ``--body-file``: one setting of the previous ``--subscribe``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        option = option_string or self.dest
        sub = _current(parser, namespace, option)
        value: object = str(values)
        if self.dest == "body":
            try:
                value = msgspec.json.decode(str(values))
            except msgspec.DecodeError as exc:
                parser.error(f"--body expects JSON, got {values!r}: {exc}")
        sub[self.dest] = value
        if self.dest in ("body", "body_file"):
            sub.setdefault("method", "POST")


def add_subscribe_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "upstream sources (repeatable; --dialect, --header, --method, --body and --body-file apply to the "
        "--subscribe before them)"
    )
    group.add_argument(
        "--subscribe",
        action=_Subscribe,
        metavar="URL",
        help="subscribe to an agent's SSE stream (an OpenIntent /api/v1/subscribe/... URL gets gap repair)",
    )
    group.add_argument("--dialect", action=_Dialect, help="force the dialect of the previous --subscribe")
    group.add_argument(
        "--header", action=_Header, metavar="'K: V'", help="a request header for the previous --subscribe"
    )
    for flag, dest, metavar, help_text in (
        ("--method", "method", "GET|POST", "the request method (default GET)"),
        (
            "--body",
            "body",
            "JSON",
            "POST this JSON to open the stream (A2A SendStreamingMessage, LangGraph runs/stream, ADK run_sse)",
        ),
        ("--body-file", "body_file", "FILE", "POST the JSON in FILE to open the stream"),
    ):
        group.add_argument(flag, action=_Set, dest=dest, default=argparse.SUPPRESS, metavar=metavar, help=help_text)
    parser.set_defaults(**{_DEST: []})


def subscriptions(args: argparse.Namespace) -> list[SourceSettings]:
    """The ``--subscribe`` sources, validated."""
    out: list[SourceSettings] = []
    for sub in getattr(args, _DEST, None) or []:
        try:
            out.append(msgspec.convert(sub, SourceSettings))
        except msgspec.ValidationError as exc:
            raise ConfigError(f"--subscribe {sub['url']}: {exc}") from exc
    return out
