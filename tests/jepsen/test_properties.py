"""Property tests: the checker against a brute-force definition, and against histories with known verdicts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, check_key, check_operations
from jepsen_lite.history import Operation, pair_events
from jepsen_lite.models import KVAppendModel, RegisterModel
from jepsen_lite.synthetic import simulate_register
from jepsen_lite.testing import brute_force_linearizable

REGISTER = RegisterModel()
VALUES = st.sampled_from([None, 0, 1, 2])


@st.composite
def small_histories(draw: st.DrawFn) -> list[Operation]:
    """Up to 6 register operations with random intervals, outcomes and observations (mostly not linearizable)."""
    ops = []
    for i in range(draw(st.integers(1, 6))):
        f = draw(st.sampled_from(["read", "write", "cas"]))
        status = draw(st.sampled_from(["ok", "ok", "ok", "info", "fail"]))
        start = draw(st.integers(0, 8))
        end = float("inf") if status == "info" else float(start + draw(st.integers(0, 4)))
        value: object = None if f == "read" else draw(VALUES) if f == "write" else [draw(VALUES), draw(VALUES)]
        output: object = None
        if status == "ok":
            output = draw(VALUES) if f == "read" else value if f == "write" else draw(st.sampled_from([value, False]))
        ops.append(Operation(i, i, f, "x", value, output, status, float(start), end, i))
    return ops


@settings(max_examples=400, deadline=None, derandomize=True)
@given(small_histories())
def test_checker_agrees_with_brute_force_on_small_histories(ops: list[Operation]) -> None:
    """On every small history the search gives the verdict of trying every order of every subset."""
    expected = LINEARIZABLE if brute_force_linearizable(ops, REGISTER) else NOT_LINEARIZABLE
    result = check_key("x", ops, REGISTER, time_limit_s=30.0)
    assert result.verdict == expected, [op.describe() for op in ops]


@st.composite
def sequential_runs(draw: st.DrawFn) -> list[Operation]:
    """A register run one operation at a time (disjoint intervals), results computed by the model itself."""
    state: object = None
    ops = []
    for i in range(draw(st.integers(1, 30))):
        f = draw(st.sampled_from(["read", "write", "cas"]))
        value: object = None
        output: object = None
        if f == "read":
            output = state
        elif f == "write":
            value = output = state = draw(VALUES)
        else:
            value = [draw(VALUES), draw(VALUES)]
            swapped = value[0] == state and type(value[0]) is type(state)
            output, state = (value, value[1]) if swapped else (False, state)
        ops.append(Operation(i, 0, f, "x", value, output, "ok", 2.0 * i, 2.0 * i + 1, 2 * i, 2 * i + 1))
    return ops


@settings(max_examples=150, deadline=None, derandomize=True)
@given(sequential_runs())
def test_a_sequential_run_of_the_model_is_linearizable(ops: list[Operation]) -> None:
    """Whatever the run, the model's own sequential results are linearizable."""
    assert check_key("x", ops, REGISTER, time_limit_s=30.0).verdict == LINEARIZABLE


@settings(max_examples=150, deadline=None, derandomize=True)
@given(sequential_runs(), st.data())
def test_a_single_corrupted_read_in_a_sequential_run_is_detected(ops: list[Operation], data: st.DataObject) -> None:
    """Changing what any one read returned in a sequential run makes it not linearizable, at that read."""
    reads = [op for op in ops if op.f == "read"]
    if not reads:
        ops = [*ops, Operation(len(ops), 0, "read", "x", None, "?", "ok", 2.0 * len(ops), 2.0 * len(ops) + 1, 0)]
        victim = ops[-1]
        # The true value is anything but "?", so this appended read is already corrupt.
    else:
        victim = data.draw(st.sampled_from(reads))
        wrong = data.draw(VALUES.filter(lambda v: not (v == victim.output and type(v) is type(victim.output))))
        ops = [
            Operation(op.id, op.process, op.f, op.key, op.value, wrong, op.status, op.call_time, op.return_time, 0)
            if op is victim
            else op
            for op in ops
        ]
    result = check_key("x", ops, REGISTER, time_limit_s=30.0)
    assert result.verdict == NOT_LINEARIZABLE
    assert result.violation is not None and result.violation.failing.id == victim.id


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    keys=st.integers(1, 4),
    width=st.integers(1, 6),
    info_ratio=st.sampled_from([0.0, 0.05, 0.15]),
)
def test_simulated_concurrent_register_histories_are_linearizable(
    seed: int, keys: int, width: int, info_ratio: float
) -> None:
    """Histories generated with linearization points inside each interval always pass."""
    synthetic = simulate_register(seed=seed, ops=40 * keys, keys=keys, processes_per_key=width, info_ratio=info_ratio)
    result = check_operations(pair_events(synthetic.events).operations, REGISTER, time_limit_s_per_key=60.0)
    assert result.verdict == LINEARIZABLE, f"seed {seed}"


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(2, 6))
def test_planted_stale_reads_are_found_in_exactly_the_planted_keys(seed: int, width: int) -> None:
    """A stale read planted in a concurrent history is detected, and only planted keys are flagged."""
    synthetic = simulate_register(seed=seed, ops=300, keys=5, processes_per_key=width, violations=2)
    assert synthetic.planted_keys, f"seed {seed}: nothing could be planted"
    result = check_operations(pair_events(synthetic.events).operations, REGISTER, time_limit_s_per_key=60.0)
    flagged = tuple(k.key for k in result.keys if k.verdict == NOT_LINEARIZABLE)
    assert result.verdict == NOT_LINEARIZABLE and flagged == synthetic.planted_keys, f"seed {seed}"


def test_synthetic_histories_replay_exactly_from_their_seed() -> None:
    """The same seed and arguments give the same events; another seed gives others."""
    a = simulate_register(seed=7, ops=200, keys=3, violations=1, faults=2)
    b = simulate_register(seed=7, ops=200, keys=3, violations=1, faults=2)
    c = simulate_register(seed=8, ops=200, keys=3, violations=1, faults=2)
    assert a == b and a.events != c.events
    assert sum(1 for e in a.events if e.is_nemesis) == 4


@settings(max_examples=20, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(2, 10))
def test_the_reported_failing_operation_is_the_planted_stale_read(seed: int, width: int) -> None:
    """The violation points at the very read that was corrupted (found by diffing against the unplanted history)."""
    good = simulate_register(seed=seed, ops=200, keys=2, processes_per_key=width)
    bad = simulate_register(seed=seed, ops=200, keys=2, processes_per_key=width, violations=1)
    changed = [b.index for a, b in zip(good.events, bad.events, strict=True) if a != b]
    assert len(changed) == 1, f"seed {seed}: planting changed {changed}"
    history = pair_events(bad.events)
    planted = next(op for op in history.operations if op.return_index == changed[0])
    violation = check_operations(history.operations, REGISTER).first_violation
    assert violation is not None and violation.failing.id == planted.id, f"seed {seed}"
    assert violation.key == planted.key and planted in violation.candidates


@st.composite
def info_heavy_histories(draw: st.DrawFn) -> list[Operation]:
    """Up to 7 operations, mostly writes, many of them open (info): where the open-blind-write pruning acts."""
    ops = []
    for i in range(draw(st.integers(2, 7))):
        f = draw(st.sampled_from(["read", "write", "write", "cas"]))
        status = draw(st.sampled_from(["ok", "ok", "info", "info", "fail"]))
        start = draw(st.integers(0, 8))
        end = float("inf") if status == "info" else float(start + draw(st.integers(0, 4)))
        value: object = None if f == "read" else draw(VALUES) if f == "write" else [draw(VALUES), draw(VALUES)]
        output: object = None
        if status == "ok":
            output = draw(VALUES) if f == "read" else value if f == "write" else draw(st.sampled_from([value, False]))
        ops.append(Operation(i, i, f, "x", value, output, status, float(start), end, i))
    return ops


@settings(max_examples=300, deadline=None, derandomize=True)
@given(info_heavy_histories())
def test_checker_agrees_with_brute_force_when_many_writes_are_open(ops: list[Operation]) -> None:
    """With many timed-out writes (skipped right after one another by the search) the verdict is still exact."""
    expected = LINEARIZABLE if brute_force_linearizable(ops, REGISTER) else NOT_LINEARIZABLE
    assert check_key("x", ops, REGISTER, time_limit_s=30.0).verdict == expected, [op.describe() for op in ops]


@st.composite
def kv_histories(draw: st.DrawFn) -> list[Operation]:
    """Up to 6 get/put/append operations on one string key."""
    ops = []
    for i in range(draw(st.integers(1, 6))):
        f = draw(st.sampled_from(["get", "put", "append"]))
        status = draw(st.sampled_from(["ok", "ok", "info", "fail"]))
        start = draw(st.integers(0, 8))
        end = float("inf") if status == "info" else float(start + draw(st.integers(0, 4)))
        value = None if f == "get" else draw(st.sampled_from(["a", "b"]))
        output = draw(st.sampled_from(["", "a", "b", "ab", "ba", "aa"])) if status == "ok" and f == "get" else value
        ops.append(Operation(i, i, f, "k", value, output, status, float(start), end, i))
    return ops


@settings(max_examples=200, deadline=None, derandomize=True)
@given(kv_histories())
def test_checker_agrees_with_brute_force_on_the_append_model(ops: list[Operation]) -> None:
    """The search is exact for the get/put/append model too (put is blind, get read-only, append neither)."""
    model = KVAppendModel()
    expected = LINEARIZABLE if brute_force_linearizable(ops, model) else NOT_LINEARIZABLE
    assert check_key("k", ops, model, time_limit_s=30.0).verdict == expected, [op.describe() for op in ops]
