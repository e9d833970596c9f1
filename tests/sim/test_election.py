"""Election scenarios on the simulator (Raft paper §5.2, thesis §9.6)."""

from __future__ import annotations

from kvstore.raft import RaftConfig, Role
from kvstore.sim import SimConfig, Simulation, run_simulation
from kvstore.sim.testing import commit, leaders_by_term, quiet_sim, wait_for_leader


def test_initial_election_elects_exactly_one_leader_and_keeps_it() -> None:
    """A fresh 3-node cluster elects one leader, and with no faults nobody else ever leads."""
    sim = quiet_sim(3, seed=11)
    leader = wait_for_leader(sim, max_ticks=50)
    term = sim.core(leader).term
    sim.run_for(300)
    assert sim.leader() == leader and sim.core(leader).term == term
    assert leaders_by_term(sim) == {term: leader}


def test_re_election_after_the_leader_crashes() -> None:
    """When the leader crashes, the survivors elect a new leader of a higher term."""
    sim = quiet_sim(3, seed=12)
    old = wait_for_leader(sim)
    old_term = sim.core(old).term
    sim.crash(old)
    new = wait_for_leader(sim, max_ticks=100)
    assert new != old and sim.core(new).term > old_term
    sim.restart(old)
    sim.run_for(50)
    assert sim.core(old).role == Role.FOLLOWER and sim.core(old).leader_id == new


def test_no_leader_is_elected_without_a_quorum() -> None:
    """With 3 of 5 nodes down, no election succeeds; bring one back and one does."""
    sim = quiet_sim(5, seed=13)
    leader = wait_for_leader(sim)
    down = [*[n for n in sim.ids if n != leader][:2], leader]
    for n in down:
        sim.crash(n)
    sim.run_for(300)
    assert sim.leader() is None
    assert any(e.event == "became_pre_candidate" for e in sim.tracer.events), "elections were attempted"
    sim.restart(down[0])
    wait_for_leader(sim, max_ticks=200)


def test_many_elections_under_churn_keep_one_leader_per_term() -> None:
    """Crashing the leader over and over yields a new leader each time, never two in one term."""
    sim = quiet_sim(5, seed=14)
    seen = set()
    for _ in range(8):
        leader = wait_for_leader(sim, max_ticks=300)
        seen.add(sim.core(leader).term)
        sim.crash(leader)
        sim.run_for(5)
        sim.restart(leader)
    assert len(seen) == 8
    assert len(leaders_by_term(sim)) >= 8


def test_dueling_candidates_still_elect_a_single_leader() -> None:
    """Two nodes campaigning at the same instant split votes at worst; randomized timeouts settle it."""
    sim = quiet_sim(3, seed=15, raft=RaftConfig(pre_vote=False))
    split_seen = False
    for _ in range(5):
        sim.campaign("n1", force=True)
        sim.campaign("n2", force=True)
        terms = (sim.core("n1").term, sim.core("n2").term)
        split_seen = split_seen or (terms[0] == terms[1] and sim.core("n1").role == sim.core("n2").role
                                    == Role.CANDIDATE)
        leader = wait_for_leader(sim, max_ticks=200)
        assert sim.leader() == leader
    assert split_seen, "two candidates did run in the same term"
    commit(sim, b"after the duel")


def test_rejoining_node_is_held_off_by_pre_vote() -> None:
    """Thesis §9.6: a follower cut off for a long time cannot raise its term, so on rejoining it
    does not depose the healthy leader; without pre-vote the same story costs an election."""
    outcomes = {}
    for pre_vote in (True, False):
        sim = quiet_sim(5, seed=16, raft=RaftConfig(pre_vote=pre_vote))
        leader = wait_for_leader(sim)
        term = sim.core(leader).term
        loner = next(n for n in sim.ids if n != leader)
        sim.isolate(loner)
        sim.run_for(200)
        loner_term = sim.core(loner).term
        sim.heal()
        sim.run_for(100)
        outcomes[pre_vote] = (loner_term > term, sim.leader() == leader and sim.core(leader).term == term)
    assert outcomes[True] == (False, True), "with pre-vote the loner's term stays and the leader stays"
    assert outcomes[False][0] and not outcomes[False][1], "without pre-vote the loner disrupts the leader"


def test_partitioned_leader_steps_down_by_check_quorum() -> None:
    """A leader that cannot reach a majority for an election timeout becomes a follower."""
    sim = quiet_sim(5, seed=17)
    leader = wait_for_leader(sim)
    sim.isolate(leader)
    sim.run_for(2 * sim.cfg.raft.election_timeout_ticks + 1)
    assert sim.core(leader).role == Role.FOLLOWER
    assert any(e.node == leader and e.event == "check_quorum_failed" for e in sim.tracer.events)


def test_leader_without_check_quorum_keeps_believing_it_leads() -> None:
    """Control for the test above: with check_quorum off, the isolated leader never notices."""
    sim = quiet_sim(5, seed=17, raft=RaftConfig(check_quorum=False))
    leader = wait_for_leader(sim)
    sim.isolate(leader)
    sim.run_for(100)
    assert sim.core(leader).role == Role.LEADER


def test_leadership_transfer_hands_over_to_the_chosen_node() -> None:
    """transfer_leadership(to) makes `to` leader in the next term without waiting for a timeout."""
    sim = quiet_sim(3, seed=18)
    leader = wait_for_leader(sim)
    commit(sim, b"before")
    target = next(n for n in sim.ids if n != leader)
    term = sim.core(leader).term
    sim.do(leader, lambda c: c.transfer_leadership(target))
    assert sim.run_until(lambda: sim.leader() == target, max_ticks=5), "took less than an election timeout"
    assert sim.core(target).term == term + 1
    commit(sim, b"after")


def test_elections_succeed_under_partitions_and_crashes() -> None:
    """Seeded nemesis of partitions and crashes: many leaders over time, all checks hold, liveness at the end."""
    result = run_simulation(SimConfig(nodes=5, seed=19, faults=frozenset({"partition", "crash"})), ticks=1500)
    assert result.ok, result.summary()
    assert result.stats.partitions > 0 and result.stats.crashes > 0
    assert result.stats.elections_won >= 3


def test_simulation_with_the_same_seed_replays_the_same_trace() -> None:
    """Determinism: two runs of one seed produce identical trace events and histories."""
    def run() -> Simulation:
        sim = Simulation(SimConfig(nodes=5, seed=20, faults=frozenset({"drop", "partition", "crash", "reorder"})),
                         keep_trace=None)
        sim.run_for(400)
        return sim

    a, b = run(), run()
    assert [e.to_json() for e in a.tracer.events] == [e.to_json() for e in b.tracer.events]
    assert a.history.events == b.history.events and len(a.history.events) > 10
