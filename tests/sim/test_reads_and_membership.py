"""ReadIndex reads and membership changes on the simulator (thesis §6.4, §4.1)."""

from __future__ import annotations

import pytest

from kvstore.errors import Unavailable
from kvstore.raft import Role
from kvstore.sim import scenarios
from kvstore.sim.testing import commit, quiet_sim, wait_for_leader


def test_reads_from_a_deposed_leader_are_refused() -> None:
    """An isolated old leader never answers a read after the majority moved on (ReadIndex needs a quorum)."""
    sim, read = scenarios.deposed_leader_read()
    assert read.outcome == "fail", f"the read must fail, got {read.outcome} {read.result!r}"
    assert sim.checker.leaders.get(1) == "n1" and len(sim.checker.leaders) >= 2, "leadership did move"
    check = sim.check_history()
    assert check.valid and check.checked_ops >= 2


def test_linearizable_read_returns_the_latest_committed_write() -> None:
    """A read through ReadIndex on the leader sees a write that completed before it was invoked."""
    sim = quiet_sim(3, seed=41)
    leader = wait_for_leader(sim)
    write = sim.submit(0, "write", "k", 42, node=leader)
    assert sim.run_until(lambda: write.outcome == "ok", max_ticks=30)
    read = sim.submit(0, "read", "k", None, node=leader)
    assert sim.run_until(lambda: read.outcome is not None, max_ticks=30)
    assert (read.outcome, read.result) == ("ok", 42)


def test_many_reads_share_quorum_rounds() -> None:
    """100 reads issued together are confirmed by far fewer than 100 heartbeat rounds (batching)."""
    sim = quiet_sim(3, seed=42)
    leader = wait_for_leader(sim)
    commit(sim, b"warm")
    reads = [sim.submit(i, "read", "k", None, node=leader) for i in range(100)]
    assert sim.run_until(lambda: all(r.outcome == "ok" for r in reads), max_ticks=30)
    rounds = [e for e in sim.tracer.events if e.node == leader and e.event == "read_round_started"]
    assert 1 <= len(rounds) <= 10


def test_follower_refuses_reads_with_a_leader_hint() -> None:
    """A read sent to a follower fails at once (definite) and the client learns who leads."""
    sim = quiet_sim(3, seed=43)
    leader = wait_for_leader(sim)
    follower = next(n for n in sim.ids if n != leader)
    sim.run_for(5)  # the follower hears from the leader
    read = sim.submit(0, "read", "k", None, node=follower)
    assert sim.run_until(lambda: read.outcome is not None, max_ticks=5)
    assert (read.outcome, read.error) == ("fail", "not_leader")
    assert sim.leader_guess(0) == leader


def test_new_node_joins_as_learner_catches_up_and_is_promoted() -> None:
    """Single-server change: n4 starts empty, receives the log as a learner, then becomes a voter."""
    sim = quiet_sim(3, seed=44)
    leader = wait_for_leader(sim)
    for i in range(10):
        commit(sim, f"c{i}".encode())
    sim.add_node("n4")
    sim.do(leader, lambda c: c.add_learner("n4"))
    lead = sim.core(leader)
    assert sim.run_until(lambda: lead.progress["n4"].match_index >= lead.commit_index > 10, max_ticks=50)
    assert sim.run_until(lambda: sim.applied("n4") >= 10, max_ticks=10)
    assert "n4" in sim.core("n4").configuration.learners and sim.core("n4").role == Role.FOLLOWER
    sim.do(leader, lambda c: c.promote_learner("n4"))
    commit(sim, b"as voter")
    assert all("n4" in sim.core(n).configuration.voters for n in sim.ids)
    # Four voters need three: with one original follower down, n4's vote is required.
    down = next(n for n in ("n1", "n2", "n3") if n != leader)
    sim.crash(down)
    commit(sim, b"n4 counts toward the majority")


def test_promotion_is_refused_until_the_learner_has_caught_up() -> None:
    """A learner whose log is behind the commit index cannot be promoted yet."""
    sim = quiet_sim(3, seed=45)
    leader = wait_for_leader(sim)
    commit(sim, b"c")
    sim.add_node("n4")
    sim.crash("n4")
    sim.do(leader, lambda c: c.add_learner("n4"))
    commit(sim, b"config committed", on=[n for n in sim.ids if n != "n4"])
    with pytest.raises(Unavailable):
        sim.core(leader).promote_learner("n4")


def test_removed_leader_steps_down_and_the_rest_carry_on() -> None:
    """Removing the leader itself: it steps down once the change commits and the others elect a leader."""
    sim = quiet_sim(3, seed=46)
    leader = wait_for_leader(sim)
    commit(sim, b"c")
    sim.do(leader, lambda c: c.remove_member(leader))
    rest = [n for n in sim.ids if n != leader]
    assert sim.run_until(lambda: sim.core(leader).role == Role.FOLLOWER, max_ticks=20)
    new = wait_for_leader(sim, among=rest, max_ticks=200)
    commit(sim, b"without the old leader", on=rest)
    sim.run_for(200)
    assert sim.leader() == new, "the removed node never campaigns again"
    assert sim.core(leader).configuration.voters == frozenset(rest)
