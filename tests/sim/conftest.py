"""Options for the simulator tests: ``--rewrite`` regenerates transcript expectations.

Run ``pytest tests/sim --rewrite`` (or set ``KVSTORE_REWRITE=1``) after an
intended behaviour change, then review the diff of ``tests/sim/testdata``.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--rewrite", action="store_true", default=False,
                     help="rewrite the expected output of transcript tests instead of comparing")


@pytest.fixture
def rewrite(request: pytest.FixtureRequest) -> bool:
    """True when expectations should be regenerated."""
    return bool(request.config.getoption("--rewrite", default=False)) or os.environ.get("KVSTORE_REWRITE") == "1"
