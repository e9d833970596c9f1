"""The reference checker's two prunings (read-only operations first; no write right after an open write).

These go beyond the lin-checker lab's contract — a plain Wing & Gong search with Lowe's
cache is correct and passes the lab's tests — so they live apart from the lab's public
test files (test_checker.py, test_properties.py, test_fixtures.py).
"""

from __future__ import annotations

from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, check_key
from jepsen_lite.models import RegisterModel
from jepsen_lite.testing import HistoryBuilder

REGISTER = RegisterModel()


def test_read_only_operations_are_placed_before_concurrent_writes() -> None:
    """A read that fits now is placed first: with many concurrent writes the search stays small and correct."""
    b = HistoryBuilder()
    for p in range(8):
        b.invoke(p, "write", "x", p)
    b.invoke(20, "read", "x")
    b.ok(20, None)
    for p in range(8):
        b.ok(p)
    result = check_key("x", b.history().operations, REGISTER, time_limit_s=60.0)
    assert result.verdict == LINEARIZABLE
    assert result.configurations < 300, "the read was branched on instead of placed first"


def test_many_timed_out_writes_do_not_explode_the_search() -> None:
    """Twelve open writes before a read that no order explains: found quickly (no 2^12 subsets), verdict exact."""
    b = HistoryBuilder()
    for p in range(12):
        b.invoke(p, "write", "x", p + 1)
        b.info(p)
    b.invoke(50, "write", "x", 100)
    b.ok(50)
    b.invoke(50, "read", "x")
    b.ok(50, 7)
    b.invoke(50, "read", "x")
    b.ok(50, 100)
    result = check_key("x", b.history().operations, REGISTER, time_limit_s=60.0)
    assert result.verdict == NOT_LINEARIZABLE
    assert result.configurations < 500, "open writes were tried back to back"
    assert result.violation is not None and result.violation.failing.output == 100
