"""Crash consistency: a simulated power cut at every mutating file operation of a workload.

Each crash point runs a seeded workload on a simulated disk that stops at the N-th mutating
operation (write, fsync, create, rename, remove, directory fsync), loses every un-fsynced
byte and directory change (half the runs also keep a torn prefix of the last write), then
reopens the engine. With ``sync="always"`` the recovered contents must be exactly what was
acknowledged, or that plus the single operation in flight — never a lost acknowledged write,
never a resurrected delete, never a half-applied batch, never an error on reopen.
"""

from __future__ import annotations

import collections
import os

import pytest

from kvstore.lsm.testing import (
    TINY_OPTIONS,
    CrashOutcome,
    acceptable_states,
    apply_to_model,
    count_mutating_ops,
    make_workload,
    run_crash_point,
)

# Three workloads x every crash point: about 1,450 crash points in the default run.
DEFAULT_WORKLOAD_SEEDS = (1, 2, 3)
WORKLOAD_OPS = 150


def _sweep(workload_seed: int, n_ops: int, *, options: dict[str, object] | None = None) -> list[CrashOutcome]:
    ops = make_workload(workload_seed, n_ops)
    total = count_mutating_ops(ops, options=options)
    outcomes = []
    for point in range(total):
        outcome = run_crash_point(ops, point, seed=point, tear=point % 2 == 0, options=options)
        legal = list(acceptable_states(outcome))
        if outcome.recovered not in legal:
            missing = {k for k in outcome.acknowledged if outcome.recovered.get(k) != outcome.acknowledged[k]}
            extra = {k for k in outcome.recovered if k not in outcome.acknowledged}
            pytest.fail(
                f"workload seed {workload_seed}, crash point {point} ({outcome.activity}): recovered state is not "
                f"acknowledged (+ in-flight {outcome.in_flight!r}); differing keys {sorted(missing)[:5]}, "
                f"resurrected or unacknowledged keys {sorted(extra)[:5]}"
            )
        outcomes.append(outcome)
    return outcomes


def test_every_crash_point_recovers_acknowledged_writes_exactly() -> None:
    """~1,450 crash points across WAL appends, flushes, compactions and manifest updates all recover correctly."""
    outcomes: list[CrashOutcome] = []
    for workload_seed in DEFAULT_WORKLOAD_SEEDS:
        print(f"workload seed={workload_seed}")
        outcomes += _sweep(workload_seed, WORKLOAD_OPS)
    crashed = [o for o in outcomes if o.crashed]
    by_activity = collections.Counter(o.activity for o in crashed)
    print(f"{len(crashed)} crash points: {dict(by_activity)}")
    assert len(crashed) >= 1000
    for activity in ("wal", "flush", "compaction", "manifest"):
        assert by_activity[activity] >= 10, f"too few crashes during {activity}: {by_activity}"
    # The faults happened: un-synced bytes and directory entries were lost, and torn prefixes kept.
    assert sum(o.report.lost_bytes for o in crashed if o.report) > 0
    assert sum(o.report.lost_entries for o in crashed if o.report) > 0
    assert sum(o.report.torn_bytes for o in crashed if o.report) > 0
    # And some crashes really cost the in-flight write, while others kept it.
    in_flight_writes = [o for o in crashed if o.in_flight is not None and o.in_flight[0] in ("put", "delete", "batch")]
    kept = sum(o.recovered != o.acknowledged for o in in_flight_writes)
    assert 0 < kept < len(in_flight_writes)


def test_unsynced_mode_recovers_a_prefix_of_the_writes() -> None:
    """With sync="never" a crash may lose recent writes, but what survives is always a prefix of the history."""
    ops = make_workload(7, 120)
    options = {**TINY_OPTIONS, "sync": "never"}
    states: list[dict[bytes, bytes]] = [{}]
    for op in ops:
        state = dict(states[-1])
        apply_to_model(state, op)
        states.append(state)
    total = count_mutating_ops(ops, options=options)
    lost_some = 0
    for point in range(0, total, 3):
        outcome = run_crash_point(ops, point, seed=point, tear=True, options=options)
        assert outcome.recovered in states, f"crash point {point}: recovered state is not a prefix of the history"
        lost_some += outcome.recovered != outcome.acknowledged
    assert lost_some > 0  # without fsyncs, crashes did lose acknowledged writes


@pytest.mark.soak
def test_soak_many_workloads_every_crash_point() -> None:
    """The long run: many more workloads (KVSTORE_SOAK_WORKLOADS, default 20), every crash point each."""
    n = int(os.environ.get("KVSTORE_SOAK_WORKLOADS", "20"))
    total = 0
    for workload_seed in range(100, 100 + n):
        print(f"workload seed={workload_seed}")
        total += sum(o.crashed for o in _sweep(workload_seed, 250))
    assert total >= 1000 * n // 2
