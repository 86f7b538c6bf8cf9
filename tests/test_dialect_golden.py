"""Golden span trees for every dialect: each capture under tests/fixtures/ replayed, the whole document compared.

A failure prints both documents; regenerate with ``python -m tests.support.golden`` only for an intended change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.golden import FIXTURES, cases, expected_path, golden_tree, load_expected, options_for

CASES = cases()


def test_every_new_dialect_has_golden_cases() -> None:
    dirs = {p.parent.name for p in CASES}
    assert {
        "locus",
        "locus-agentserver",
        "ag-ui",
        "agentlang",
        "openai-chat",
        "openai-responses",
        "anthropic",
    } <= dirs


@pytest.mark.parametrize("capture", CASES, ids=[str(p.relative_to(FIXTURES)) for p in CASES])
def test_golden_span_tree(capture: Path) -> None:
    assert expected_path(capture).exists(), f"no expected tree: run python -m tests.support.golden {capture}"
    actual = golden_tree(capture)
    expected = load_expected(capture)
    if "dialect" not in options_for(capture):
        # Detection is part of the case: the fixture's folder names its dialect.
        assert actual["dialect"] == capture.parent.name
    assert actual == expected
