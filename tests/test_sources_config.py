"""Source settings: config files (TOML and YAML), ``serve --subscribe``, validation, redaction, backoff."""

from __future__ import annotations

import pathlib
import random

import httpx
import pytest

from otel_bridge.app import create_app
from otel_bridge.assembly import assemble
from otel_bridge.backoff import Backoff
from otel_bridge.cli import _settings, build_parser, main
from otel_bridge.config import AuthSettings, ConfigError, Settings, SourceSettings, load_settings, redact_url
from otel_bridge.sources.manager import SourceManager
from otel_bridge.sources.openintent import OpenIntentSource, Targets, targets_for
from otel_bridge.sources.upstream import UpstreamSource

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_example_files_toml_and_yaml_give_the_same_sources() -> None:
    toml = load_settings(EXAMPLES / "sources.toml", environ={}).sources
    yaml = load_settings(EXAMPLES / "sources.yaml", environ={}).sources
    assert toml == yaml
    assert toml[0] == SourceSettings(
        name="weather-bot",
        url="http://127.0.0.1:8000/agent/stream",
        dialect="locus",
        headers={"Authorization": "Bearer change-me"},
    )
    manager = SourceManager(assemble(Settings()).bridge, toml)
    assert [(s.name, s.kind) for s in manager.sources] == [
        ("weather-bot", "sse"),
        ("openintent", "openintent"),
        ("127.0.0.1:18080/api/v1/subscribe/intents/28c9d972-4277-47f0-9d45-5c7a243d1534", "openintent"),
        ("shipment-tracker", "sse"),
    ]
    last = manager.sources[2]
    assert isinstance(last, OpenIntentSource)
    assert last.targets == Targets("http://127.0.0.1:18080", ("28c9d972-4277-47f0-9d45-5c7a243d1534",), (), ())
    post = toml[3]
    assert (post.method, post.body_file, post.headers) == ("POST", None, {"A2A-Version": "1.0"})
    assert isinstance(post.body, dict)
    assert post.body["method"] == "SendStreamingMessage"


def test_subscribe_flags_apply_to_the_subscribe_before_them_and_add_to_the_file(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[sources]]\nurl = "http://a:1/stream"\n')
    args = build_parser().parse_args(
        [
            "serve",
            "--config",
            str(config),
            "--subscribe",
            "http://b:2/events",
            "--header",
            "Authorization: Bearer t: with colon",
            "--header",
            "X-Team:  core ",
            "--subscribe",
            "http://c:3/sse",
            "--dialect",
            "ag-ui",
        ]
    )
    assert _settings(args).sources == [
        SourceSettings(url="http://a:1/stream"),
        SourceSettings(url="http://b:2/events", headers={"Authorization": "Bearer t: with colon", "X-Team": "core"}),
        SourceSettings(url="http://c:3/sse", dialect="ag-ui"),
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--dialect", "locus"],
        ["serve", "--header", "K: V"],
        ["serve", "--subscribe", "http://a/s", "--header", "no colon"],
    ],
)
def test_misplaced_or_malformed_subscribe_flags_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--subscribe", "ftp://x/s"], "--subscribe ftp://x/s: source url must be http:// or https://"),
        (["--subscribe", "http://x/s", "--dialect", "klingon"], "unknown dialect 'klingon'"),
        (
            ["--subscribe", "http://x/api/v1/subscribe/intents/i1", "--dialect", "locus"],
            "an openintent source speaks the openintent dialect",
        ),
        (["--subscribe", "http://x/s", "--subscribe", "http://x/s"], "two sources have the same name: x/s"),
    ],
)
def test_a_source_that_cannot_work_fails_startup_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "0", *argv]) == 2
    assert message in capsys.readouterr().err


def test_openintent_source_must_follow_something() -> None:
    settings = SourceSettings(url="http://oi:8000", kind="openintent")
    with pytest.raises(ConfigError, match="needs intents, agents or portfolios"):
        SourceManager(assemble(Settings()).bridge, [settings])
    with pytest.raises(ConfigError, match="apply to kind = 'openintent' only"):
        SourceManager(assemble(Settings()).bridge, [SourceSettings(url="http://x/s", kind="sse", intents=["i"])])


@pytest.mark.parametrize(
    ("url", "targets"),
    [
        ("http://oi:8000/", Targets("http://oi:8000", ("i0",), ("a0",), ())),
        ("http://oi:8000/api/v1", Targets("http://oi:8000", ("i0",), ("a0",), ())),
        ("http://oi:8000/base/api/v1/subscribe/agents/a1", Targets("http://oi:8000/base", ("i0",), ("a0", "a1"), ())),
        ("http://oi:8000/api/v1/subscribe/portfolios/p1/", Targets("http://oi:8000", ("i0",), ("a0",), ("p1",))),
        ("http://oi:8000/api/v1/subscribe/intents/i0", Targets("http://oi:8000", ("i0",), ("a0",), ())),
    ],
)
def test_openintent_targets_from_url_and_lists(url: str, targets: Targets) -> None:
    assert targets_for(SourceSettings(url=url, intents=["i0"], agents=["a0"])) == targets


def test_kind_is_inferred_from_the_url() -> None:
    bridge = assemble(Settings()).bridge
    manager = SourceManager(
        bridge,
        [
            SourceSettings(url="http://oi/api/v1/subscribe/intents/i1"),
            SourceSettings(url="http://agent/stream"),
            SourceSettings(url="http://oi/api/v1/subscribe/intents/i2", kind="sse", name="raw"),
        ],
    )
    assert [type(s) for s in manager.sources] == [OpenIntentSource, UpstreamSource, UpstreamSource]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@h:1/s?api_key=k&x=1", "http://u:***@h:1/s?api_key=***&x=1"),
        ("https://tok@h/s", "https://***@h/s"),
        ("http://h/s?access_token=a&Signature=b&page=2", "http://h/s?access_token=***&Signature=***&page=2"),
        ("http://h:8000/api/v1/subscribe/intents/i", "http://h:8000/api/v1/subscribe/intents/i"),
    ],
)
def test_credentials_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert len(set(delays)) == 6  # jittered, not lockstep
    backoff.reset()
    assert 0.25 <= backoff.next_delay() <= 0.5
    backoff.give_up_fast()
    assert 2.0 <= backoff.next_delay() <= 4.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("page_size", 0, "page_size must be 1..1000"),
        ("page_size", 1001, "page_size must be 1..1000"),
        ("backoff_initial_s", 0, "backoff_initial_s must be > 0"),
        ("backoff_max_s", 0.1, "backoff_max_s must be >= backoff_initial_s"),
        ("read_timeout_s", -1, "read_timeout_s must be > 0"),
    ],
)
def test_source_settings_are_validated(field: str, value: float, message: str, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[[sources]]\nurl = "http://a/s"\n{field} = {value}\n')
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


async def test_sources_route_is_behind_the_token_and_shows_a_source_before_it_runs() -> None:
    settings = Settings(
        auth=AuthSettings(token="secret-token-1"),
        sources=[SourceSettings(url="http://u:pw@127.0.0.1:9/s", dialect="ag-ui")],
    )
    app = create_app(settings)  # lifespan not run: the source never starts
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sidecar") as client:
        assert (await client.get("/v1/sources")).status_code == 401
        response = await client.get("/v1/sources", headers={"Authorization": "Bearer secret-token-1"})
    assert response.json() == {
        "sources": [
            {
                "name": "127.0.0.1:9/s",
                "kind": "sse",
                "url": "http://u:***@127.0.0.1:9/s",
                "dialect": "ag-ui",
                "dialect_forced": True,
                "connected": False,
                "last_event_time": None,
                "events": 0,
                "frames": 0,
                "reconnects": 0,
                "rejected": 0,
                "last_rejection": None,
                "last_event_id": None,
                "last_error": None,
                "last_error_time": None,
                "method": "GET",
                "request": "subscribe",
                "last_status": None,
                "done": False,
            }
        ]
    }
