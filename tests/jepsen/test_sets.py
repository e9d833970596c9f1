"""The set / unique-append checker: lost, duplicated and unexpected elements."""

from __future__ import annotations

import pytest
from jepsen_lite.history import HistoryError
from jepsen_lite.sets import INVALID, UNKNOWN, VALID, check_sets
from jepsen_lite.testing import HistoryBuilder


def _adds(b: HistoryBuilder, outcomes: dict[int, str], key: str = "s") -> None:
    """Add element e from process e with the given outcome."""
    for element, outcome in outcomes.items():
        b.invoke(element, "add", key, element)
        b.complete(element, outcome)


def test_every_acknowledged_add_present_once_is_valid() -> None:
    """Acked adds all present, a failed one absent, an info one present (recovered): valid."""
    b = HistoryBuilder()
    _adds(b, {1: "ok", 2: "ok", 3: "fail", 4: "info"})
    b.invoke(100, "read-set", "s")
    b.ok(100, [2, 4, 1])
    result = check_sets(b.history().operations)
    assert result.verdict == VALID
    (key,) = result.keys
    assert (key.attempted, key.acknowledged, key.recovered, key.lost) == (3, 2, (4,), ())


def test_an_acknowledged_add_missing_from_the_final_read_is_lost() -> None:
    """The final read lacks an acked element: invalid, and the element is named."""
    b = HistoryBuilder()
    _adds(b, {1: "ok", 2: "ok"})
    b.invoke(100, "read-set", "s")
    b.ok(100, [1, 2])
    b.invoke(100, "read-set", "s")
    b.ok(100, [1])
    result = check_sets(b.history().operations)
    assert result.verdict == INVALID and result.keys[0].lost == (2,)


def test_an_element_applied_twice_is_duplicated() -> None:
    """An element appearing twice in a read (a retried append applied twice) is invalid."""
    b = HistoryBuilder()
    _adds(b, {1: "ok", 2: "info"})
    b.invoke(100, "read-set", "s")
    b.ok(100, [1, 2, 2])
    assert check_sets(b.history().operations).keys[0].duplicated == (2,)


def test_an_element_nobody_added_or_a_failed_add_in_a_read_is_unexpected() -> None:
    """A read may not invent elements, nor show an add that failed definitely."""
    b = HistoryBuilder()
    _adds(b, {1: "ok", 2: "fail"})
    b.invoke(100, "read-set", "s")
    b.ok(100, [1, 2, 9])
    result = check_sets(b.history().operations)
    assert result.verdict == INVALID and result.keys[0].unexpected == (2, 9)


def test_an_add_acknowledged_after_the_final_read_began_may_be_missing() -> None:
    """An add concurrent with the final read is unconfirmed, not lost."""
    b = HistoryBuilder()
    b.invoke(1, "add", "s", 1)
    b.invoke(100, "read-set", "s")
    b.ok(100, [])
    b.ok(1)
    result = check_sets(b.history().operations)
    assert result.verdict == VALID and result.keys[0].unconfirmed == (1,)


def test_a_set_never_read_is_unknown_and_sets_are_separate() -> None:
    """Adds with no read give unknown for that set; another set's result is its own."""
    b = HistoryBuilder()
    _adds(b, {1: "ok"}, key="a")
    _adds(b, {2: "ok"}, key="b")
    b.invoke(100, "read-set", "b")
    b.ok(100, [2])
    result = check_sets(b.history().operations)
    assert [(k.key, k.verdict) for k in result.keys] == [("a", UNKNOWN), ("b", VALID)]
    assert result.verdict == UNKNOWN


def test_a_read_set_that_is_not_a_list_is_a_history_error() -> None:
    """A read-set ok value must be a list."""
    b = HistoryBuilder()
    b.invoke(100, "read-set", "s")
    b.ok(100, 5)
    with pytest.raises(HistoryError, match="not a list"):
        check_sets(b.history().operations)
