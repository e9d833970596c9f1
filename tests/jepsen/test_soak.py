"""Long randomized runs of the checker (`make soak`): more examples, bigger histories, full benchmark size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, check_key, check_operations
from jepsen_lite.history import Operation, pair_events
from jepsen_lite.models import RegisterModel
from jepsen_lite.synthetic import simulate_register
from jepsen_lite.testing import brute_force_linearizable

pytestmark = pytest.mark.soak
REGISTER = RegisterModel()
VALUES = st.sampled_from([None, 0, 1, 2])


@st.composite
def histories(draw: st.DrawFn) -> list[Operation]:
    """Up to 7 register operations with random intervals, outcomes and observations."""
    ops = []
    for i in range(draw(st.integers(1, 7))):
        f = draw(st.sampled_from(["read", "write", "cas"]))
        status = draw(st.sampled_from(["ok", "ok", "ok", "info", "fail"]))
        start = draw(st.integers(0, 10))
        end = float("inf") if status == "info" else float(start + draw(st.integers(0, 5)))
        value: object = None if f == "read" else draw(VALUES) if f == "write" else [draw(VALUES), draw(VALUES)]
        output: object = None
        if status == "ok":
            output = draw(VALUES) if f == "read" else value if f == "write" else draw(st.sampled_from([value, False]))
        ops.append(Operation(i, i, f, "x", value, output, status, float(start), end, i))
    return ops


@settings(max_examples=4000, deadline=None)
@given(histories())
def test_checker_agrees_with_brute_force_on_many_histories(ops: list[Operation]) -> None:
    """Thousands of random small histories: the search and the definition agree on every one."""
    expected = LINEARIZABLE if brute_force_linearizable(ops, REGISTER) else NOT_LINEARIZABLE
    assert check_key("x", ops, REGISTER, time_limit_s=60.0).verdict == expected, [op.describe() for op in ops]


@pytest.mark.parametrize("seed", range(1, 6))
@pytest.mark.parametrize("violations", [0, 5])
def test_benchmark_size_histories_get_the_right_verdict(seed: int, violations: int) -> None:
    """10,000 operations over 100 keys: linearizable, or flagged in exactly the planted keys."""
    synthetic = simulate_register(seed=seed, ops=10_000, keys=100, processes_per_key=8, violations=violations)
    result = check_operations(pair_events(synthetic.events).operations, REGISTER, time_limit_s_per_key=60.0)
    flagged = tuple(k.key for k in result.keys if k.verdict == NOT_LINEARIZABLE)
    assert result.verdict == (NOT_LINEARIZABLE if violations else LINEARIZABLE), f"seed {seed}"
    assert flagged == synthetic.planted_keys, f"seed {seed}"


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(1, 10), info_ratio=st.sampled_from([0.0, 0.1, 0.3]))
def test_many_simulated_histories_are_linearizable(seed: int, width: int, info_ratio: float) -> None:
    """Hundreds of generated concurrent histories with info operations all pass."""
    synthetic = simulate_register(seed=seed, ops=300, keys=3, processes_per_key=width, info_ratio=info_ratio)
    result = check_operations(pair_events(synthetic.events).operations, REGISTER, time_limit_s_per_key=60.0)
    assert result.verdict == LINEARIZABLE, f"seed {seed}"
