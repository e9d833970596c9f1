"""Shared fixtures for the jepsen-lite tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "linearizability"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The Porcupine fixture folder, ``<repo root>/../shared/fixtures/linearizability``; fails loudly if absent."""
    if not (FIXTURES / "expected.tsv").is_file():
        pytest.fail(
            f"linearizability fixtures not found at {FIXTURES} (expected.tsv missing). CI must place a copy of "
            "shared/ beside the clone; locally, make ../shared/fixtures/linearizability available.",
            pytrace=False,
        )
    return FIXTURES
