"""The linearizability checker on hand-drawn histories: the semantics of ok, fail and info, reports, budgets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jepsen_lite.checker import (
    LINEARIZABLE,
    NOT_LINEARIZABLE,
    UNKNOWN,
    Entry,
    check_entry_list,
    check_key,
    check_operations,
    combine,
    lift,
    make_entries,
    unlift,
)
from jepsen_lite.history import History, HistoryError, Operation
from jepsen_lite.models import KVAppendModel, RegisterModel
from jepsen_lite.testing import HistoryBuilder

from kvstore.invariants import InvariantViolation

REGISTER = RegisterModel()


def _verdict(history: History) -> str:
    return check_operations(history.operations, REGISTER).verdict


def test_sequential_write_then_read_of_that_value_is_linearizable() -> None:
    """w(1) then r -> 1, one after the other, is linearizable."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.ok(0)
    b.invoke(0, "read", "x")
    b.ok(0, 1)
    assert _verdict(b.history()) == LINEARIZABLE


def test_read_of_an_overwritten_value_after_both_writes_is_not_linearizable() -> None:
    """w(1); w(2); r -> 1 in real-time order is a stale read."""
    b = HistoryBuilder()
    for value in (1, 2):
        b.invoke(0, "write", "x", value)
        b.ok(0)
    b.invoke(1, "read", "x")
    b.ok(1, 1)
    assert _verdict(b.history()) == NOT_LINEARIZABLE


def test_a_read_concurrent_with_a_write_may_see_either_value() -> None:
    """A read overlapping w(2) may return 1 or 2 — but not 3."""
    for seen, expected in ((1, LINEARIZABLE), (2, LINEARIZABLE), (3, NOT_LINEARIZABLE)):
        b = HistoryBuilder()
        b.invoke(0, "write", "x", 1)
        b.ok(0)
        b.invoke(0, "write", "x", 2)
        b.invoke(1, "read", "x")
        b.ok(1, seen)
        b.ok(0)
        assert _verdict(b.history()) == expected, seen


def test_reads_that_disagree_on_order_are_not_linearizable() -> None:
    """Two sequential reads seeing 2 then 1 while w(1), w(2) are concurrent with both: the value went back."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.invoke(1, "write", "x", 2)
    b.invoke(2, "read", "x")
    b.ok(2, 2)
    b.invoke(2, "read", "x")
    b.ok(2, 1)
    b.invoke(2, "read", "x")
    b.ok(2, 2)
    b.ok(0)
    b.ok(1)
    assert _verdict(b.history()) == NOT_LINEARIZABLE


def test_a_failed_write_is_dropped() -> None:
    """Reading the value of a write that failed (certainly did not happen) is a violation."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.fail(0)
    b.invoke(1, "read", "x")
    b.ok(1, 1)
    assert _verdict(b.history()) == NOT_LINEARIZABLE


def test_an_info_write_may_take_effect_much_later() -> None:
    """An info write stays open: a read long after its timeout may still see it appear, after a newer write."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.info(0)
    b.invoke(1, "write", "x", 2)
    b.ok(1)
    b.invoke(1, "read", "x")
    b.ok(1, 2)
    b.invoke(1, "read", "x")
    b.ok(1, 1)
    assert _verdict(b.history()) == LINEARIZABLE


def test_an_info_write_may_never_take_effect() -> None:
    """Reads that never see an info write are fine: it may not have happened."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.info(0)
    b.invoke(1, "read", "x")
    b.ok(1, None)
    assert _verdict(b.history()) == LINEARIZABLE


def test_an_info_write_takes_effect_at_most_once() -> None:
    """Seeing an info write's value, then an older value, then its value again needs two effects: a violation."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.info(0)
    b.invoke(1, "read", "x")
    b.ok(1, 1)
    b.invoke(1, "write", "x", 2)
    b.ok(1)
    b.invoke(1, "read", "x")
    b.ok(1, 1)
    assert _verdict(b.history()) == NOT_LINEARIZABLE


def test_an_info_write_cannot_take_effect_before_its_invocation() -> None:
    """A read that returned before the info write was invoked cannot see it."""
    b = HistoryBuilder()
    b.invoke(1, "read", "x")
    b.ok(1, 1)
    b.invoke(0, "write", "x", 1)
    b.info(0)
    assert _verdict(b.history()) == NOT_LINEARIZABLE


def test_compare_and_set_swaps_only_when_the_value_matches() -> None:
    """cas [None, 1] on an absent key swaps; a later cas [5, 6] that claims success is a violation."""
    b = HistoryBuilder()
    b.invoke(0, "cas", "x", [None, 1])
    b.ok(0)
    b.invoke(0, "read", "x")
    b.ok(0, 1)
    assert _verdict(b.history()) == LINEARIZABLE
    b.invoke(0, "cas", "x", [5, 6])
    b.ok(0)
    assert _verdict(b.history()) == NOT_LINEARIZABLE


def test_a_refused_compare_and_set_is_an_observation() -> None:
    """A cas completed with output false saw another value: refused while the register held `expected` is wrong."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.ok(0)
    b.invoke(0, "cas", "x", [1, 2])
    b.ok(0, False)
    assert _verdict(b.history()) == NOT_LINEARIZABLE
    b2 = HistoryBuilder()
    b2.invoke(0, "write", "x", 3)
    b2.ok(0)
    b2.invoke(0, "cas", "x", [1, 2])
    b2.ok(0, False)
    assert _verdict(b2.history()) == LINEARIZABLE


def test_values_of_different_json_types_are_not_confused() -> None:
    """Writing 1 and reading true (or "1") is a violation: JSON types matter."""
    for seen in (True, "1", 1.5):
        b = HistoryBuilder()
        b.invoke(0, "write", "x", 1)
        b.ok(0)
        b.invoke(0, "read", "x")
        b.ok(0, seen)
        assert _verdict(b.history()) == NOT_LINEARIZABLE, seen


def test_keys_are_checked_independently() -> None:
    """A stale read on key y is reported against y alone; x stays linearizable."""
    b = HistoryBuilder()
    for key in ("x", "y"):
        b.invoke(0, "write", key, 1)
        b.ok(0)
        b.invoke(0, "write", key, 2)
        b.ok(0)
    b.invoke(1, "read", "x")
    b.ok(1, 2)
    b.invoke(1, "read", "y")
    b.ok(1, 1)
    result = check_operations(b.history().operations, REGISTER)
    assert result.verdict == NOT_LINEARIZABLE
    assert [(k.key, k.verdict) for k in result.keys] == [("x", LINEARIZABLE), ("y", NOT_LINEARIZABLE)]


def test_a_violation_names_the_key_the_failing_operation_and_a_legal_prefix() -> None:
    """The report gives the key, the stale read as the failing op, and a prefix the model accepts in real-time order."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.ok(0)
    b.invoke(0, "write", "x", 2)
    b.invoke(1, "read", "x")
    b.ok(1, 2)
    b.ok(0)
    b.invoke(1, "read", "x")
    b.ok(1, 1)
    history = b.history()
    result = check_operations(history.operations, REGISTER)
    violation = result.first_violation
    assert violation is not None and violation.key == "x"
    assert violation.failing.id == 3 and violation.failing.output == 1
    assert [op.id for op in violation.prefix] == [0, 1, 2]
    assert violation.state_after_prefix == "2"
    assert violation.failing in violation.candidates
    assert "no order of the pending operations explains op 3" in violation.explain()
    assert result.to_json()["first_failing_op"] == 3


def test_a_hard_search_that_runs_out_of_time_is_unknown_never_a_pass() -> None:
    """With a zero budget a history needing a long search is unknown; with a real budget it gets its true verdict."""
    for last_read, truth in ((0, LINEARIZABLE), (99, NOT_LINEARIZABLE)):
        b = HistoryBuilder()
        for p in range(10):
            b.invoke(p, "write", "x", p)
        for p in range(10):
            b.ok(p)
        b.invoke(20, "read", "x")
        b.ok(20, last_read)
        ops = b.history().operations
        full = check_key("x", ops, REGISTER, time_limit_s=60.0)
        assert full.verdict == truth
        assert full.configurations > 1000, "the search must be long enough for the zero budget to bite"
        starved = check_key("x", ops, REGISTER, time_limit_s=0.0)
        assert starved.verdict == UNKNOWN and starved.violation is None


def test_combined_verdict_prefers_violation_then_unknown() -> None:
    """One violated key makes the history not linearizable even if others are unknown; unknown beats linearizable."""
    assert combine([LINEARIZABLE, UNKNOWN, NOT_LINEARIZABLE]) == NOT_LINEARIZABLE
    assert combine([LINEARIZABLE, UNKNOWN]) == UNKNOWN
    assert combine([LINEARIZABLE, LINEARIZABLE]) == LINEARIZABLE
    assert combine([]) == LINEARIZABLE


def test_an_empty_history_and_a_history_of_only_failures_are_linearizable() -> None:
    """Nothing happened, so nothing can be wrong."""
    assert check_operations([], REGISTER).verdict == LINEARIZABLE
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.fail(0)
    assert _verdict(b.history()) == LINEARIZABLE


def test_unknown_operations_for_the_model_are_history_errors() -> None:
    """An 'increment' on a register, or a cas whose value is not a pair, is a HistoryError naming the op."""
    for f, value in (("increment", 1), ("cas", 5)):
        b = HistoryBuilder()
        b.invoke(0, f, "x", value)
        b.ok(0)
        with pytest.raises(HistoryError, match="operation 0"):
            check_operations(b.history().operations, REGISTER)


def test_kv_append_model_concatenates() -> None:
    """append "a", append "b" then get "ab" is linearizable; get "ba" is not."""
    for seen, expected in (("ab", LINEARIZABLE), ("ba", NOT_LINEARIZABLE), ("", NOT_LINEARIZABLE)):
        b = HistoryBuilder()
        for part in ("a", "b"):
            b.invoke(0, "append", "k", part)
            b.ok(0)
        b.invoke(0, "get", "k")
        b.ok(0, seen)
        assert check_operations(b.history().operations, KVAppendModel()).verdict == expected, seen


def test_lift_and_unlift_restore_the_entry_list() -> None:
    """Lifting entries in stack order and unlifting in reverse leaves the list exactly as it was."""
    ops = [
        Operation(i, i, "write", "x", i, None, status, float(i), float(i) + 2.5 if status == "ok" else float("inf"), i)
        for i, status in enumerate(["ok", "info", "ok", "ok"])
    ]
    head = make_entries(ops)

    def shape() -> list[tuple[int, bool]]:
        check_entry_list(head, ops)
        return [(entry.op, entry.is_call) for entry in _entries(head)]

    before = shape()
    assert before == [(0, True), (1, True), (2, True), (0, False), (3, True), (2, False), (3, False)]
    calls = {op: e for op, e in ((e.op, e) for e in _entries(head)) if e.is_call}
    for op in (1, 0, 3):
        lift(calls[op])
    assert shape() == [(2, True), (2, False)]
    for op in (3, 0, 1):
        unlift(calls[op])
    assert shape() == before


def _entries(head: Entry) -> Iterator[Entry]:
    entry = head.next
    while entry is not None:
        yield entry
        entry = entry.next


def test_entry_list_check_catches_a_broken_link() -> None:
    """check_entry_list fails loudly when a neighbour no longer points back."""
    ops = [Operation(i, i, "write", "x", i, i, "ok", float(i), float(i) + 1, i) for i in range(3)]
    head = make_entries(ops)
    check_entry_list(head, ops)
    assert head.next is not None and head.next.next is not None
    head.next.next.prev = head
    with pytest.raises(InvariantViolation, match=r"prev\.next is it"):
        check_entry_list(head, ops)
