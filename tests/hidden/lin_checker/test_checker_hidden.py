"""Hidden tests of the lin-checker lab: verdicts against brute force, info semantics, budgets, linearizations.

Randomized tests run over fixed seeds (the grader scores them by the fraction that pass) and print
their seed. The brute-force oracle (``jepsen_lite.testing``) and the history generator
(``jepsen_lite.synthetic``) are reference code, never the student's.
"""

from __future__ import annotations

import random
import time

import pytest
from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, check_operations, make_entries, search
from jepsen_lite.history import Operation, pair_events
from jepsen_lite.models import RegisterModel
from jepsen_lite.synthetic import simulate_register
from jepsen_lite.testing import HistoryBuilder, brute_force_linearizable

REGISTER = RegisterModel()
SEEDS = [11, 23, 47]


def random_small_history(rng: random.Random) -> list[Operation]:
    """Up to 6 register operations on one key with random intervals, outcomes and observations."""
    ops = []
    for i in range(rng.randint(1, 6)):
        f = rng.choice(["read", "write", "cas"])
        status = rng.choice(["ok", "ok", "ok", "info", "fail"])
        start = rng.randint(0, 8)
        end = float("inf") if status == "info" else float(start + rng.randint(0, 4))
        values = [None, 0, 1, 2]
        value: object = None
        if f == "write":
            value = rng.choice(values)
        elif f == "cas":
            value = [rng.choice(values), rng.choice(values)]
        output: object = None
        if status == "ok":
            output = rng.choice(values) if f == "read" else value if f == "write" else rng.choice([value, False])
        ops.append(Operation(i, i, f, "x", value, output, status, float(start), end, i))
    return ops


def kept_and_prepared(ops: list[Operation]) -> tuple[list[Operation], list[object]]:
    kept = sorted((op for op in ops if REGISTER.relevant(op)), key=lambda op: (op.call_time, op.id))
    return kept, [REGISTER.prepare(op) for op in kept]


@pytest.mark.parametrize("seed", SEEDS)
def test_checker_agrees_with_brute_force_on_random_small_histories(seed: int) -> None:
    """On 300 random small histories per seed, the verdict equals the brute-force definition's."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    for n in range(300):
        ops = random_small_history(rng)
        expected = LINEARIZABLE if brute_force_linearizable(ops, REGISTER) else NOT_LINEARIZABLE
        assert check_operations(ops, REGISTER).verdict == expected, (seed, n, ops)


def test_info_writes_that_never_took_effect_are_allowed() -> None:
    """Several indeterminate writes, none ever observed, do not make a history a violation."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.ok(0)
    for process, value in ((1, 7), (2, 8), (3, 9)):
        b.invoke(process, "write", "x", value)
        b.info(process)
    for _ in range(3):
        b.invoke(0, "read", "x")
        b.ok(0, 1)
    assert check_operations(b.history().operations, REGISTER).verdict == LINEARIZABLE


def test_an_info_write_observed_later_is_placed_after_its_call() -> None:
    """An info write seen by a later read is linearizable; seen by a read that ended before its call, not."""
    for read_first, expected in ((False, LINEARIZABLE), (True, NOT_LINEARIZABLE)):
        b = HistoryBuilder()
        if read_first:
            b.invoke(0, "read", "x")
            b.ok(0, 5)
        b.invoke(1, "write", "x", 5)
        b.info(1)
        if not read_first:
            b.invoke(0, "read", "x")
            b.ok(0, 5)
        assert check_operations(b.history().operations, REGISTER).verdict == expected, read_first


@pytest.mark.parametrize("seed", SEEDS)
def test_wide_linearizable_histories_are_decided_within_the_budget(seed: int) -> None:
    """Histories with 12 concurrent clients on one key are found linearizable within 3 s (memoization needed)."""
    print(f"seed {seed}")
    synthetic = simulate_register(seed=seed, ops=400, keys=1, processes_per_key=12, read_ratio=0.3, info_ratio=0.0)
    result = check_operations(pair_events(synthetic.events).operations, REGISTER, time_limit_s_per_key=3.0)
    assert result.verdict == LINEARIZABLE, (seed, result.keys[0].configurations)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_linearizable_verdict_comes_with_a_legal_real_time_order(seed: int) -> None:
    """The order search returns holds every ok operation, respects real time and is a legal run of the model."""
    print(f"seed {seed}")
    synthetic = simulate_register(seed=seed, ops=120, keys=1, processes_per_key=5, info_ratio=0.05)
    kept, prepared = kept_and_prepared(list(pair_events(synthetic.events).operations))
    outcome = search(make_entries(kept), prepared, REGISTER, deadline=time.monotonic() + 30)
    assert outcome.verdict == LINEARIZABLE
    order = [kept[i] for i in outcome.order]
    assert {op.id for op in kept if op.status == "ok"} <= {op.id for op in order}
    for i, earlier in enumerate(order):
        assert all(not later.return_time < earlier.call_time for later in order[i + 1 :]), "real-time order broken"
    state = REGISTER.init()
    for i in outcome.order:
        ok, state = REGISTER.step(state, prepared[i])
        assert ok, f"op {kept[i].id} is not legal in that order"


def test_search_restores_the_entry_list_after_a_violation() -> None:
    """After a NOT_LINEARIZABLE verdict every lift was undone: the list reads as before, both directions."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.invoke(1, "read", "x")
    b.ok(0)
    b.ok(1, 3)
    b.invoke(2, "write", "x", 2)
    b.info(2)
    kept, prepared = kept_and_prepared(list(b.history().operations))
    head = make_entries(kept)

    def walk() -> tuple[list[tuple[int, bool]], list[tuple[int, bool]]]:
        forward, entry, last = [], head.next, head
        while entry is not None:
            forward.append((entry.op, entry.is_call))
            last, entry = entry, entry.next
        backward = []
        while last is not head and last is not None:
            backward.append((last.op, last.is_call))
            last = last.prev
        return forward, backward

    before = walk()
    outcome = search(head, prepared, REGISTER, deadline=time.monotonic() + 10)
    assert outcome.verdict == NOT_LINEARIZABLE
    assert walk() == before
