"""The simulator's client histories plug into jepsen-lite's linearizability checker (the seam in history.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, check_operations
from jepsen_lite.history import pair_events, parse_jsonl
from jepsen_lite.models import RegisterModel

from kvstore.raft.planted import LeaseLessReadCore
from kvstore.sim import CheckResult, SimConfig, history_jsonl, parse_faults, run_simulation, scenarios


def linearizability_checker(events: list[dict[str, Any]]) -> CheckResult:
    """Adapter: a kvstore.sim HistoryChecker backed by jepsen-lite's register checker."""
    history = pair_events(parse_jsonl(json.dumps(e) for e in events))
    result = check_operations(history.operations, RegisterModel(), time_limit_s_per_key=20.0)
    return CheckResult(result.verdict == LINEARIZABLE, result.verdict, len(history.operations))


def test_concurrent_client_history_under_faults_is_linearizable() -> None:
    """Four concurrent clients through partitions, crashes and drops: jepsen-lite finds the history linearizable."""
    cfg = SimConfig(nodes=5, seed=51, faults=frozenset({"drop", "partition", "crash", "reorder"}), clients=4)
    result = run_simulation(cfg, ticks=800, history_checker=linearizability_checker)
    assert result.ok, result.summary()
    assert result.history_check is not None and result.history_check.checked_ops > 100
    assert result.stats.client_info + result.stats.client_fail > 0, "faults made some operations fail or hang"


def test_stale_read_from_a_planted_core_is_not_linearizable() -> None:
    """The same checker rejects the history of the deposed-leader read served without a quorum round."""
    sim, read = scenarios.deposed_leader_read(LeaseLessReadCore)
    assert read.outcome == "ok"
    events = [json.loads(line) for line in history_jsonl(sim).splitlines()]
    verdict = linearizability_checker(events)
    assert not verdict.valid and verdict.reason == NOT_LINEARIZABLE


@pytest.mark.soak
def test_many_concurrent_histories_under_faults_are_linearizable() -> None:
    """Soak: 200 seeds of 4-client histories under all faults, each checked by jepsen-lite."""
    for seed in range(1000, 1200):
        cfg = SimConfig(nodes=5, seed=seed, faults=parse_faults("all"), clients=4, snapshot_every_entries=20)
        result = run_simulation(cfg, ticks=600, history_checker=linearizability_checker)
        assert result.ok, f"seed {seed}: {result.summary()}"
