"""Deliberately broken cores must be caught: proof that the named tests and the sweep can fail."""

from __future__ import annotations

import pytest

from kvstore.raft import RaftCore
from kvstore.raft.planted import (
    CountingCommitCore,
    ForgetfulVoterCore,
    LeaseLessReadCore,
    PromiscuousVoterCore,
)
from kvstore.sim import SimViolation, default_config, parse_faults, run_simulation, scenarios
from kvstore.sim.testing import quiet_sim


def test_forgetting_the_vote_is_caught_by_the_persistence_check() -> None:
    """A core that does not persist voted_for is reported before its vote even leaves the node."""
    with pytest.raises(SimViolation, match="persistence"):
        scenarios.forgotten_vote(ForgetfulVoterCore)


def test_forgetting_the_vote_elects_two_leaders_in_one_term() -> None:
    """With the persistence check off, the forgotten-vote story ends with two leaders in term 1."""
    with pytest.raises(SimViolation, match="two leaders in term 1"):
        scenarios.forgotten_vote(ForgetfulVoterCore, check_ready_contract=False)
    sim = scenarios.forgotten_vote(RaftCore, check_ready_contract=False)
    assert sim.checker.leaders[1] == "n1", "the correct core tells the same story safely"


def test_committing_an_old_term_entry_by_counting_breaks_figure8() -> None:
    """The Figure 8 scenario catches a leader that counts replicas of an entry from an older term."""
    with pytest.raises(SimViolation, match=r"leader completeness|state machine safety|committed entry"):
        scenarios.figure8(CountingCommitCore)


def test_serving_reads_without_a_quorum_round_returns_a_stale_value() -> None:
    """The deposed-leader read scenario, with a core that skips ReadIndex's round, yields an invalid history."""
    sim, read = scenarios.deposed_leader_read(LeaseLessReadCore)
    assert (read.outcome, read.result) == ("ok", 1), "the stale leader answered with the overwritten value"
    check = sim.check_history()
    assert not check.valid and "read 1" in check.reason


def test_ignoring_the_election_restriction_is_caught_by_the_seed_sweep() -> None:
    """A core that votes for stale logs loses committed entries; the fault sweep finds it within 10 seeds."""
    caught = []
    for seed in range(10):
        result = run_simulation(default_config(nodes=5, seed=seed, faults=parse_faults("all")), ticks=1000,
                                core_factory=PromiscuousVoterCore)
        if not result.ok:
            caught.append((seed, result.violation))
            break
    print("caught:", caught)
    assert caught, "the sweep must catch a core without the election restriction"


def test_a_runtime_that_sends_before_fsync_is_caught_by_the_ready_contract_check() -> None:
    """Breaking the Ready contract in the runtime (never fsyncing) is noticed at the first vote or ack."""
    sim = quiet_sim(3, seed=71)
    for node in sim.ids:
        sim.nodes[node].disk.sync = lambda: None  # type: ignore[method-assign]
    with pytest.raises(SimViolation, match="persistence"):
        sim.run_for(100)
