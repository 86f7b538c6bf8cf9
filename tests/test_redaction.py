"""Redaction: every built-in detector finds what it should and leaves its near-misses alone;
user patterns, the key deny list, the counts, and JSON that stays valid."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_bridge import semconv as sc
from otel_bridge.config import ConfigError, RedactionSettings, load_settings
from otel_bridge.mapping import attributes as attrs
from otel_bridge.mapping.redaction import PII_DETECTORS, SECRET_DETECTORS, Redactor, _covering, luhn_ok
from otel_bridge.model import AgentEvent, EventKind, SpanEventRecord, SpanKind, SpanRecord

# Built from pieces so that no scanner mistakes this file for a leak.
OPENAI = "sk-" + "proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
ANTHROPIC = "sk-ant-" + "api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg"
GOOGLE = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
HF = "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456"
GROQ = "gsk_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1"
SLACK = "xoxb-" + "123456789012-abcdefABCDEF"
STRIPE = "sk_live_" + "a1B2c3D4e5F6g7H8i9J0k1L2"
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"  # 40 characters
JWT = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
BEARER = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5"
PEM = (
    "-----BEGIN RSA "
    + "PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA "
    + "PRIVATE KEY-----"
)

# detector -> (text with a secret, the secret, near-misses that must be left alone)
SECRETS: dict[str, tuple[str, str, list[str]]] = {
    "openai_key": (f"key={OPENAI}", OPENAI, ["sk-short", "task-" + "a" * 30, "disk-usage-report-for-2026-q3"]),
    "anthropic_key": (f"x-api-key: {ANTHROPIC}", ANTHROPIC, ["sk-ant-api03-short", "ask-ant-colony"]),
    "google_api_key": (f'{{"key":"{GOOGLE}"}}', GOOGLE, ["AIzaShort123", "AIza" + "b" * 20]),
    "github_token": (f"token {GITHUB}", GITHUB, ["ghp_short", "ghx_" + "a" * 36]),
    "huggingface_token": (f"HF_TOKEN={HF}", HF, ["hf_short", "shelf_" + "a" * 30]),
    "groq_key": (f"GROQ={GROQ}", GROQ, ["gsk_short", "gsk-" + "a" * 40]),
    "slack_token": (f"slack {SLACK}", SLACK, ["xoxb-", "xoxo-hugs-and-kisses", "xoxb-notdigits-abcdefgh"]),
    "stripe_key": (f"stripe {STRIPE}", STRIPE, ["sk_live_short", "sk_prod_" + "a" * 24]),
    "aws_access_key_id": (f"id {AWS_ID}", AWS_ID, ["AKIAshort", "AKIA" + "a" * 16, "XAKIA" + "B" * 16]),
    "aws_secret_access_key": (
        f'aws_secret_access_key = "{AWS_SECRET}"',
        AWS_SECRET,
        [f"secret = {AWS_SECRET}", "aws_secret_access_key = short"],
    ),
    "jwt": (f"Cookie: session={JWT}", JWT, ["eyJhbGciOi.eyJzdWI.sig", "eyJ" + "a" * 20 + ".notjwt"]),
    "bearer_token": (f"Authorization: Bearer {BEARER}", BEARER, ["Bearer short", "the bearer of bad news arrives"]),
    "private_key": (f"key:\n{PEM}\nend", PEM, ["-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"]),
}
CARD = "4111 1111 1111 1111"  # Visa's test number (Luhn-valid)
PII: dict[str, tuple[str, str, list[str]]] = {
    "email": (
        "write to ada.lovelace+notes@example.co.uk today",
        "ada.lovelace+notes@example.co.uk",
        ["user@localhost", "@handle", "a@b"],
    ),
    "phone": ("call +44 20 7946 0958 now", "+44 20 7946 0958", ["2026-11-21", "v1.2.3", "id 12345678901", "10:30:00"]),
    "card_number": (f"card {CARD} exp", CARD, ["4111 1111 1111 1112", "1234567890123", "2026-11-21-1234-5678"]),
}


def redactor(**settings: object) -> Redactor:
    return Redactor(RedactionSettings(**settings), Counter())  # type: ignore[arg-type]


def test_every_built_in_detector_has_cases() -> None:
    assert {d.name for d in SECRET_DETECTORS} == set(SECRETS)
    assert {d.name for d in PII_DETECTORS} == set(PII)


@pytest.mark.parametrize("name", list(SECRETS))
def test_a_secret_detector_finds_its_secret(name: str) -> None:
    text, secret, _ = SECRETS[name]
    r = redactor()
    out = r.text(text)
    assert secret not in out
    assert sc.REDACTED_MARK.format(name) in out
    assert r.counts == Counter({name: 1})


@pytest.mark.parametrize(("name", "near_miss"), [(n, m) for n, (_, _, misses) in SECRETS.items() for m in misses])
def test_a_secret_detector_leaves_near_misses_alone(name: str, near_miss: str) -> None:
    r = redactor()
    assert r.text(near_miss) == near_miss
    assert not r.counts


@pytest.mark.parametrize("name", list(PII))
def test_pii_detectors_are_opt_in(name: str) -> None:
    text, secret, _ = PII[name]
    assert redactor().text(text) == text  # off by default
    r = redactor(pii=True)
    out = r.text(text)
    assert secret not in out
    assert sc.REDACTED_MARK.format(name) in out
    assert r.counts[name] == 1


@pytest.mark.parametrize(("name", "near_miss"), [(n, m) for n, (_, _, misses) in PII.items() for m in misses])
def test_pii_detectors_leave_near_misses_alone(name: str, near_miss: str) -> None:
    r = redactor(pii=True)
    assert r.text(near_miss) == near_miss
    assert not r.counts


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("5500 0000 0000 0004")
    assert not luhn_ok("4111111111111112")
    assert not luhn_ok("411111")  # too short for a card


def test_the_bearer_word_stays_and_only_the_token_goes() -> None:
    assert redactor().text(f"Authorization: Bearer {BEARER}") == "Authorization: Bearer [REDACTED:bearer_token]"


def test_secrets_off_leaves_everything() -> None:
    r = redactor(secrets=False)
    assert not r.active
    text = SECRETS["openai_key"][0]
    assert r.text(text) == text


def test_user_patterns_and_a_bad_one() -> None:
    r = redactor(secrets=False, patterns={"ticket": r"TCK-\d{6}"})
    assert r.text("see TCK-123456 and TCK-12") == "see [REDACTED:ticket] and TCK-12"
    assert r.counts == Counter({"ticket": 1})
    with pytest.raises(ConfigError, match="redaction pattern 'bad'"):
        load_settings(environ={}, overrides={"redaction": {"patterns": {"bad": "("}}})
    # a user pattern's own named group does not break the combined pre-check
    assert redactor(secrets=False, patterns={"g": r"(?P<x>ab)c"}).text("xabcx") == "x[REDACTED:g]x"


def test_environment_switches() -> None:
    s = load_settings(environ={"OTEL_BRIDGE_REDACT_PII": "true", "OTEL_BRIDGE_REDACT_DENY_KEYS": "password, token"})
    assert (s.redaction.secrets, s.redaction.pii, s.redaction.deny_keys) == (True, True, ["password", "token"])
    assert load_settings(environ={"OTEL_BRIDGE_REDACT_SECRETS": "false"}).redaction.secrets is False


def event(**fields: object) -> AgentEvent:
    return AgentEvent(
        kind=EventKind.TOOL_STARTED, run_id="r", timestamp_ns=1, dialect="test", original_type="t", **fields
    )  # type: ignore[arg-type]


def test_an_event_keeps_valid_json_and_its_ids() -> None:
    args = msgspec.json.encode({"query": "x", "auth": f"Bearer {BEARER}", "key": OPENAI}).decode()
    payload = msgspec.Raw(msgspec.json.encode({"arguments": args, "note": AWS_ID}))
    original = event(call_id=OPENAI, arguments=args, result=JWT, text=GITHUB, error=STRIPE, payload=payload)
    r = redactor()
    out = r.event(original)
    assert out.call_id == OPENAI  # ids key the spans: never rewritten
    assert out.arguments is not None
    msgspec.json.decode(out.arguments)  # still JSON
    assert OPENAI not in out.arguments
    assert BEARER not in out.arguments
    assert out.result == "[REDACTED:jwt]"
    assert out.text == "[REDACTED:github_token]"
    assert out.error == "[REDACTED:stripe_key]"
    assert out.payload is payload  # redacted where it leaves: see the next test
    assert r.counts == Counter({"openai_key": 1, "bearer_token": 1, "jwt": 1, "github_token": 1, "stripe_key": 1})
    clean = event(arguments='{"q":"weather in Lisbon"}')
    assert r.event(clean) is clean  # nothing found: the same object


def test_a_payload_is_redacted_before_it_is_cut_onto_a_span_event() -> None:
    payload = msgspec.Raw(msgspec.json.encode({"note": "x" * 300 + f" {AWS_ID} " + "y" * 300}))
    progress = AgentEvent(
        kind=EventKind.PROGRESS, run_id="r", timestamp_ns=1, dialect="test", original_type="p", payload=payload
    )
    r = redactor()
    pairs = dict(attrs.span_event_pairs(progress, capture_content=False, limit=400, redact=r.json_text))
    kept = msgspec.json.decode(pairs[sc.BRIDGE_EVENT_PAYLOAD])  # cut, and still JSON
    assert kept["truncated_bytes"] == len(r.json_text(bytes(payload).decode()))
    assert "AKIA" not in pairs[sc.BRIDGE_EVENT_PAYLOAD]
    unredacted = dict(attrs.span_event_pairs(progress, capture_content=False, limit=1000))
    assert AWS_ID in unredacted[sc.BRIDGE_EVENT_PAYLOAD]  # the test can fail


def test_the_key_deny_list_in_json_content_and_on_span_attributes() -> None:
    r = redactor(secrets=False, deny_keys=["password", sc.GEN_AI_TOOL_CALL_RESULT])
    out = r.event(event(arguments='{"user":"ada","password":"hunter2","nested":[{"password":1}]}'))
    assert msgspec.json.decode(out.arguments or "") == {
        "user": "ada",
        "password": "[REDACTED:password]",
        "nested": [{"password": "[REDACTED:password]"}],
    }
    span = SpanRecord(
        trace_id=b"t" * 16,
        span_id=b"s" * 8,
        parent_span_id=None,
        name="execute_tool x",
        kind=SpanKind.INTERNAL,
        start_ns=1,
        end_ns=2,
        attributes={sc.GEN_AI_TOOL_CALL_RESULT: "secret result", sc.GEN_AI_TOOL_NAME: "x"},
        events=(SpanEventRecord("e", 1, {sc.GEN_AI_TOOL_CALL_RESULT: "again"}),),
    )
    cleaned = r.span(span)
    assert cleaned.attributes == {
        sc.GEN_AI_TOOL_CALL_RESULT: "[REDACTED:gen_ai.tool.call.result]",
        sc.GEN_AI_TOOL_NAME: "x",
    }
    assert cleaned.events[0].attributes == {sc.GEN_AI_TOOL_CALL_RESULT: "[REDACTED:gen_ai.tool.call.result]"}
    assert r.counts == Counter({"key:password": 2, f"key:{sc.GEN_AI_TOOL_CALL_RESULT}": 2})


_SECRET_NEEDLES = [n for d in SECRET_DETECTORS if not d.fold for n in d.needles]
_FOLDED_NEEDLES = [n for d in SECRET_DETECTORS if d.fold for n in d.needles]
_NEEDLE_PIECES = sorted(
    {n[:i] for n in _SECRET_NEEDLES for i in range(1, len(n) + 1)} | {" ", "x", "-", "_", "Secret", "BEARER", "sec"}
)


@given(st.lists(st.sampled_from(_NEEDLE_PIECES), max_size=12).map("".join))
def test_the_needle_covers_find_exactly_the_text_that_holds_a_needle(text: str) -> None:
    """The prefilter tests fewer, shorter substrings (covers) and then their members: text holds a cover and
    a member exactly when it holds one of the detectors' own needles (pieces of needles make near misses)."""
    holds = any(needle in text for needle in _SECRET_NEEDLES)
    covers = _covering(_SECRET_NEEDLES)
    assert any(cover in text and (not members or any(m in text for m in members)) for cover, members in covers) == holds
    folded = any(needle in text.lower() for needle in _FOLDED_NEEDLES)
    assert Redactor(RedactionSettings(), Counter())._may_hold_secret(text) == (holds or folded)


def test_the_needle_covers_are_fewer_tests_than_the_needles() -> None:
    covers = _covering(_SECRET_NEEDLES)
    assert len(covers) < len(_SECRET_NEEDLES)
    assert ("sk-", ()) in covers  # sk-ant- is found through sk-
    assert dict(covers)["gh"] == ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")
