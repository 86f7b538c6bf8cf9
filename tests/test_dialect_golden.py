"""Golden span trees for every registered dialect: each capture replayed, the whole document compared.

A capture's folder names the dialect that decodes it (``tests/fixtures/<dialect>/<case>``).
The cases are derived from the registry: a registered dialect with no capture fails
here, as does a folder that names no dialect or a file that belongs to no case.
A failure prints both documents; regenerate with ``python -m tests.support.golden`` only for an intended change.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from otel_bridge.dialects import registry
from tests.support.golden import FIXTURES, cases, expected_path, golden_tree, is_case, load_expected, options_for

CASES = cases()
README = FIXTURES / "README.md"


def test_every_registered_dialect_has_golden_cases() -> None:
    covered = {p.parent.name for p in CASES}
    missing = sorted(name for name in registry.DIALECTS if name not in covered)
    assert missing == [], f"no golden case for {missing}: add a capture under tests/fixtures/<dialect>/"


def test_every_fixture_folder_names_a_registered_dialect() -> None:
    folders = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    assert [name for name in folders if name not in registry.DIALECTS] == []


def test_every_fixture_file_belongs_to_exactly_one_case() -> None:
    # Two captures with one stem (x.sse and x.ndjson) would share x.expected.json.
    shared = [path.name for path, n in Counter(expected_path(p) for p in CASES).items() if n > 1]
    assert shared == []
    owned = {expected_path(p) for p in CASES} | {p.with_name(p.stem + ".options.json") for p in CASES}
    orphans = sorted(
        str(p.relative_to(FIXTURES))
        for p in FIXTURES.rglob("*")
        if p.is_file() and p != README and not is_case(p) and p not in owned
    )
    assert orphans == []  # e.g. a <case>.expected.expected.json written by regenerating an expected tree


@pytest.mark.parametrize("capture", CASES, ids=[str(p.relative_to(FIXTURES)) for p in CASES])
def test_golden_span_tree(capture: Path) -> None:
    assert expected_path(capture).exists(), f"no expected tree: run python -m tests.support.golden {capture}"
    actual = golden_tree(capture)
    expected = load_expected(capture)
    if "dialect" not in options_for(capture):
        # Detection is part of the case: the fixture's folder names its dialect.
        assert actual["dialect"] == capture.parent.name
    assert actual == expected
