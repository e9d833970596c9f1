"""Hidden tests of the raft-replication lab: the follower's append rules and the leader's commit rule.

Mistakes they look for: a follower that keeps conflicting entries instead of truncating them, a follower
that commits past the entries the leader vouched for in this append, a leader that commits an entry of an
older term by counting replicas (Figure 8), and anything that lets logs diverge under drops, reordering,
partitions and crashes. Seeded simulator runs print their seed.
"""

from __future__ import annotations

import random

import pytest

from kvstore.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    RaftConfig,
    RaftCore,
    RaftLog,
    Ready,
    RequestVoteResponse,
    RestoreState,
    Role,
)
from kvstore.sim import SimConfig, run_simulation

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


def log_of(core: RaftCore) -> list[tuple[int, int]]:
    return [(e.index, e.term) for e in core.log.entries]


def test_a_follower_replaces_a_conflicting_suffix_with_the_leaders_entries() -> None:
    """Entries 2..3 of term 2 conflict with the leader's term-3 entries at 2..4: they are replaced, and an
    append repeating entries the follower already has changes nothing."""
    core = make("n2", restore=RestoreState(hard_state=HardState(term=2),
                                           entries=(Entry(1, 1), Entry(2, 2), Entry(2, 3))))
    core.step(AppendEntries(3, "n1", "n2", 1, 1, (Entry(3, 2), Entry(3, 3), Entry(3, 4)), 1))
    rd = drain(core)
    assert log_of(core) == [(1, 1), (2, 3), (3, 3), (4, 3)]
    acks = [m for m in rd.messages if isinstance(m, AppendEntriesResponse)]
    assert len(acks) == 1 and acks[0].success and acks[0].match_index == 4
    core.step(AppendEntries(3, "n1", "n2", 1, 1, (Entry(3, 2),), 1))  # a stale, shorter duplicate
    drain(core)
    assert log_of(core) == [(1, 1), (2, 3), (3, 3), (4, 3)], "a matching prefix never truncates"
    log = RaftLog()
    log.append([Entry(1, 1), Entry(1, 2), Entry(1, 3)])
    assert log.maybe_append(1, 1, (Entry(1, 2), Entry(4, 3))) == 3
    assert [(e.index, e.term) for e in log.entries] == [(1, 1), (2, 1), (3, 4)]


def test_a_follower_commits_only_entries_the_leader_vouched_for() -> None:
    """Figure 2: commit_index = min(leaderCommit, index of the last new entry). A heartbeat that matched at
    index 2 says nothing about the follower's stale entries 3..4, so they must not be committed."""
    stale = (Entry(1, 1), Entry(1, 2), Entry(2, 3), Entry(2, 4))
    core = make("n2", restore=RestoreState(hard_state=HardState(term=2), entries=stale))
    core.step(AppendEntries(3, "n1", "n2", 2, 1, (), 4))
    drain(core)
    assert core.commit_index == 2
    core.step(AppendEntries(3, "n1", "n2", 2, 1, (Entry(3, 3),), 4))
    drain(core)
    assert core.commit_index == 3 and log_of(core) == [(1, 1), (2, 1), (3, 3)]


def test_an_old_term_entry_commits_only_through_an_entry_of_the_current_term() -> None:
    """Figure 8 with five nodes: entry 2 (term 1) on three of five is not committed by counting; once the
    new leader's own no-op is on a majority, both commit."""
    core = make(peers=FIVE, restore=RestoreState(hard_state=HardState(term=2), entries=(Entry(1, 1), Entry(1, 2))))
    core.campaign(transfer=True)
    drain(core)
    for voter in ("n2", "n3"):
        core.step(RequestVoteResponse(core.term, voter, "n1", granted=True))
    drain(core)
    assert core.role == Role.LEADER and core.log.last_index() == 3 and core.log.term(3) == core.term
    for follower in ("n2", "n3", "n4"):
        core.step(AppendEntriesResponse(core.term, follower, "n1", True, match_index=2))
        drain(core)
        assert core.commit_index == 0, f"committed by counting after {follower}"
    core.step(AppendEntriesResponse(core.term, "n2", "n1", True, match_index=3))
    drain(core)
    assert core.commit_index == 0, "the no-op is on two of five only"
    core.step(AppendEntriesResponse(core.term, "n3", "n1", True, match_index=3))
    drain(core)
    assert core.commit_index == 3


@pytest.mark.parametrize("seed", [301, 302, 303, 304, 305, 306])
def test_replication_under_drops_reordering_partitions_and_crashes_keeps_logs_consistent(seed: int) -> None:
    """A seeded 5-node run under every network fault and crashes, with clients: log matching, leader
    completeness and state machine safety hold throughout, and the cluster commits at the end."""
    print(f"seed {seed}")
    faults = frozenset({"drop", "reorder", "duplicate", "delay", "partition", "crash"})
    result = run_simulation(SimConfig(nodes=5, seed=seed, faults=faults, clients=3, nemesis_interval_ticks=25),
                            ticks=900)
    assert result.ok, result.summary()
    assert result.stats.client_ok > 20, result.summary()
