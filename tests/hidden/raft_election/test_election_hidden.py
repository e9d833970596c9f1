"""Hidden tests of the raft-election lab: votes, terms and the election restriction, by hand and on the simulator.

Mistakes they look for: a voter that grants a second vote in one term or forgets its vote across a
restart, an election restriction that compares lengths only, a candidate that counts refusals as votes,
a vote that survives into a new term (so the node never votes again), and anything that gives one term
two leaders under partitions and crashes. Seeded simulator runs print their seed; the grader scores them
by the fraction of seeds that pass.
"""

from __future__ import annotations

import random

import pytest

from kvstore.raft import (
    Entry,
    HardState,
    Message,
    RaftConfig,
    RaftCore,
    Ready,
    RequestVote,
    RequestVoteResponse,
    RestoreState,
    Role,
)
from kvstore.sim import SimConfig, SimViolation, run_simulation, scenarios

FIVE = ("n1", "n2", "n3", "n4", "n5")
THREE = ("n1", "n2", "n3")


def make(node: str = "n1", *, peers: tuple[str, ...] = THREE, restore: RestoreState | None = None) -> RaftCore:
    core = RaftCore(node, peers=peers, rng=random.Random(7), config=RaftConfig(), restore=restore)
    drain(core)
    return core


def drain(core: RaftCore) -> Ready:
    rd = core.ready()
    core.advance(rd)
    core.check_invariants()
    return rd


def vote_replies(rd: Ready) -> list[tuple[str, bool]]:
    return [(m.to, m.granted) for m in rd.messages if isinstance(m, RequestVoteResponse)]


def requests(rd: Ready) -> list[Message]:
    return [m for m in rd.messages if isinstance(m, RequestVote)]


def test_a_longer_log_of_an_older_term_does_not_win_a_vote() -> None:
    """§5.4.1: the last term decides first; a shorter log ending in a newer term wins, a longer older one loses."""
    entries = (Entry(1, 1), Entry(1, 2), Entry(3, 3))
    core = make(restore=RestoreState(hard_state=HardState(term=3), entries=entries))
    core.step(RequestVote(4, "n2", "n1", 9, 2))  # nine entries, but last term 2 < 3
    assert vote_replies(drain(core)) == [("n2", False)]
    core.step(RequestVote(5, "n3", "n1", 2, 4))  # two entries, last term 4 > 3
    assert vote_replies(drain(core)) == [("n3", True)]
    assert core.voted_for == "n3" and core.term == 5
    assert core.log.is_up_to_date(3, 3) and not core.log.is_up_to_date(2, 3) and not core.log.is_up_to_date(50, 1)


def test_refused_votes_do_not_make_a_leader() -> None:
    """A 5-node candidate refused by a majority never becomes leader, and steps down once a majority refused."""
    core = make(peers=FIVE)
    core.campaign(transfer=True)
    rd = drain(core)
    assert core.role == Role.CANDIDATE and len(requests(rd)) == 4
    term = core.term
    for voter in ("n2", "n3"):
        core.step(RequestVoteResponse(term, voter, "n1", granted=False))
        drain(core)
        assert core.role != Role.LEADER, f"leader after {voter} refused"
    core.step(RequestVoteResponse(term, "n4", "n1", granted=False))
    drain(core)
    assert core.role == Role.FOLLOWER and core.term == term


def test_a_new_term_frees_the_vote_of_the_old_one() -> None:
    """A node that voted in term 1 can vote for another candidate in term 2 (voted_for is per term)."""
    core = make()
    core.step(RequestVote(1, "n2", "n1", 0, 0))
    assert vote_replies(drain(core)) == [("n2", True)]
    core.step(RequestVote(2, "n3", "n1", 0, 0))
    assert vote_replies(drain(core)) == [("n3", True)]
    assert (core.term, core.voted_for) == (2, "n3")


def test_a_vote_is_never_given_to_two_candidates_of_one_term_even_after_a_restart() -> None:
    """The forgotten-vote story (a voter restarts between two candidates of one term) ends with one leader
    per term, and the restarted voter still refuses the second candidate."""
    try:
        sim = scenarios.forgotten_vote()
    except SimViolation as exc:
        pytest.fail(f"the simulator found a violation: {exc}")
    assert sim.checker.leaders.get(1) == "n1", "n1 led term 1"
    core = sim.core("n2")
    assert core is not None and core.voted_for == "n1" and core.term == 1


@pytest.mark.parametrize("seed", [201, 202, 203, 204, 205, 206])
def test_elections_under_partitions_crashes_and_drops_keep_one_leader_per_term(seed: int) -> None:
    """A seeded 5-node run with partitions, crashes, drops and clients: every safety check holds, leaders are
    elected again and again, and the cluster is live at the end."""
    print(f"seed {seed}")
    faults = frozenset({"partition", "crash", "drop", "reorder"})
    result = run_simulation(SimConfig(nodes=5, seed=seed, faults=faults, clients=2, nemesis_interval_ticks=30),
                            ticks=900)
    assert result.ok, result.summary()
    assert result.stats.elections_won >= 2 and result.stats.client_ok > 20, result.summary()
