"""The checker reproduces every verdict of the Porcupine fixtures (expected.tsv)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jepsen_lite.checker import check_operations
from jepsen_lite.formats import load

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "linearizability"  # as in conftest


def _expected() -> list[tuple[str, str]]:
    path = FIXTURES / "expected.tsv"
    if not path.is_file():
        return [("<fixtures missing>", "linearizable")]
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [(row[0], row[1]) for row in rows]


def _format(name: str) -> str:
    return "jepsen-log" if name.endswith(".log") else "edn-kv"


@pytest.mark.parametrize(("name", "verdict"), _expected())
def test_fixture_verdict_matches_porcupine(fixtures_dir: Path, name: str, verdict: str) -> None:
    """The checker's verdict on this fixture history is the one expected.tsv records."""
    history, model = load(fixtures_dir / name, _format(name))
    result = check_operations(history.operations, model, time_limit_s_per_key=60.0)
    assert result.verdict == verdict, [k.to_json() for k in result.keys if k.verdict != "linearizable"]


def test_fixture_list_covers_both_formats_and_both_verdicts(fixtures_dir: Path) -> None:
    """expected.tsv holds the 64 histories of both formats with both verdicts (so the test above tests something)."""
    rows = _expected()
    assert len(rows) == 64
    assert {_format(name) for name, _ in rows} == {"jepsen-log", "edn-kv"}
    assert {verdict for _, verdict in rows} == {"linearizable", "not-linearizable"}
    assert all((fixtures_dir / name).is_file() for name, _ in rows)
