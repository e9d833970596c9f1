"""Persistence, snapshot and Figure 8 scenarios on the simulator (Raft paper §5.4, §7)."""

from __future__ import annotations

import pytest

from kvstore.errors import InvalidArgument
from kvstore.raft import Entry, HardState, RaftConfig
from kvstore.sim import SimConfig, SimDisk, run_simulation, scenarios
from kvstore.sim.testing import applied_commands, commit, quiet_sim, wait_for_leader


def test_state_survives_a_restart_of_one_node() -> None:
    """A restarted follower comes back with its term, vote and log from disk, and re-applies its commands."""
    sim = quiet_sim(3, seed=31)
    for i in range(5):
        commit(sim, f"c{i}".encode())
    leader = wait_for_leader(sim)
    follower = next(n for n in sim.ids if n != leader)
    term, last = sim.core(follower).term, sim.core(follower).log.last_index()
    sim.crash(follower)
    sim.restart(follower)
    assert sim.core(follower).term == term and sim.core(follower).log.last_index() == last
    final = commit(sim, b"after")
    assert sim.applied(follower) == final
    assert applied_commands(sim, follower) == applied_commands(sim, leader)


def test_state_survives_a_restart_of_all_nodes() -> None:
    """Crash every node at once: the committed log is on disk, a leader is elected, nothing is lost."""
    sim = quiet_sim(3, seed=32)
    for i in range(5):
        commit(sim, f"c{i}".encode())
    before = applied_commands(sim, "n1")
    for n in sim.ids:
        sim.crash(n)
    for n in sim.ids:
        sim.restart(n)
    commit(sim, b"after")
    for n in sim.ids:
        assert applied_commands(sim, n) == [*before, b"after"]


def test_leader_crash_mid_replication_loses_no_committed_entry() -> None:
    """A leader crashing with appends in flight: whatever had committed survives on the new leader."""
    sim = quiet_sim(5, seed=33)
    leader = wait_for_leader(sim)
    commit(sim, b"safe")
    for i in range(5):
        sim.propose(leader, f"inflight{i}".encode())
    sim.run_for(0.6)
    committed = sim.core(leader).commit_index
    sim.crash(leader)
    new = wait_for_leader(sim, max_ticks=300)
    assert sim.core(new).log.last_index() >= committed
    sim.restart(leader)
    final = commit(sim, b"next")
    assert all(sim.applied(n) == final for n in sim.ids)


def test_crash_before_fsync_loses_only_unacknowledged_writes() -> None:
    """The simulated disk drops un-fsynced writes on a crash, and the cluster loses nothing committed."""
    disk = SimDisk()
    disk.append((Entry(1, 1),))
    disk.set_hard_state(HardState(1, "n1", 0))
    disk.sync()
    disk.append((Entry(1, 2),))
    assert disk.crash() == 1
    assert [e.index for e in disk.load().entries] == [1] and disk.load().hard_state.voted_for == "n1"
    result = run_simulation(SimConfig(nodes=5, seed=34, faults=frozenset({"disk", "drop"})), ticks=1500)
    assert result.ok, result.summary()
    assert result.stats.torn_crashes > 0 and result.stats.writes_lost > 0


def test_figure8_old_term_entry_is_not_committed_by_counting() -> None:
    """Figure 8 (reliable network), scripted: the cluster stays safe and ends up agreeing on entry A."""
    sim = scenarios.figure8()
    assert 1 in sim.checker.leaders and sim.checker.leaders[1] == "n1", "n1 led term 1"
    assert sim.checker.leaders.get(2) == "n5", "n5 led term 2 (the dangerous branch was reached)"
    final = commit(sim, b"agree", max_ticks=400)
    assert all(sim.applied(n) == final for n in sim.ids)
    assert b"A" in applied_commands(sim, "n5"), "entry A committed (through the new leader's no-op)"


def test_figure8_unreliable_network_with_leader_crashes_stays_safe() -> None:
    """Figure 8 (unreliable): drops, reordering and frequent crashes; every check holds on several seeds."""
    faults = frozenset({"drop", "reorder", "delay", "crash"})
    for seed in range(3):
        cfg = SimConfig(nodes=5, seed=100 + seed, faults=faults, nemesis_interval_ticks=15, clients=3)
        result = run_simulation(cfg, ticks=800)
        assert result.ok, f"seed {cfg.seed}: {result.summary()}"
        assert result.stats.crashes >= 5


def test_churn_with_crashes_and_clients_stays_safe_and_live() -> None:
    """Random crashes and restarts under client load: safety after every event, liveness at the end."""
    result = run_simulation(SimConfig(nodes=5, seed=35, faults=frozenset({"crash", "disk"}), clients=2),
                            ticks=1500)
    assert result.ok, result.summary()
    assert result.stats.crashes > 3 and result.stats.client_ok > 50


def test_snapshot_install_brings_a_lagging_follower_up_to_date() -> None:
    """A follower back after the leader compacted its log receives InstallSnapshot and the same state."""
    sim = quiet_sim(3, seed=36, snapshot_every_entries=10)
    leader = wait_for_leader(sim)
    lagging = next(n for n in sim.ids if n != leader)
    sim.crash(lagging)
    for i in range(40):
        commit(sim, f'{{"id": {i + 1}, "f": "write", "key": "k{i % 3}", "value": {i}}}'.encode())
    assert sim.core(leader).log.snapshot_index > 0, "the leader compacted"
    sim.restart(lagging)
    final = commit(sim, b"after")
    assert sim.stats.snapshots_installed >= 1
    assert sim.applied(lagging) == final
    assert sim.nodes[lagging].sm.data == sim.nodes[leader].sm.data == {"k0": 39, "k1": 37, "k2": 38}


def test_snapshot_install_under_message_drops() -> None:
    """Snapshots still land when a quarter of all messages are dropped (lost snapshots are resent)."""
    sim = quiet_sim(3, seed=37, snapshot_every_entries=10, drop_rate=0.25, faults=frozenset({"drop"}))
    sim.faults_on = False
    leader = wait_for_leader(sim)
    lagging = next(n for n in sim.ids if n != leader)
    sim.crash(lagging)
    for i in range(30):
        commit(sim, f"c{i}".encode())
    sim.faults_on = True
    sim.restart(lagging)
    final = commit(sim, b"after", max_ticks=600)
    assert sim.stats.messages_dropped > 0 and sim.stats.snapshots_installed >= 1
    assert sim.applied(lagging) == final


def test_snapshot_install_with_crashes_restarts_from_snapshot_plus_log_tail() -> None:
    """Nodes crash while snapshots are taken and installed; each restarts from its snapshot and log tail."""
    result = run_simulation(
        SimConfig(nodes=5, seed=38, faults=frozenset({"crash", "partition"}), snapshot_every_entries=8, clients=2),
        ticks=2000,
    )
    assert result.ok, result.summary()
    assert result.stats.snapshots_taken > 0 and result.stats.crashes > 0
    sim = quiet_sim(3, seed=39, snapshot_every_entries=5)
    for i in range(12):
        commit(sim, f"c{i}".encode())
    node = "n2"
    assert sim.nodes[node].disk.durable_snapshot_index() > 0
    sim.crash(node)
    sim.restart(node)
    assert sim.core(node).log.snapshot_index > 0 and sim.applied(node) >= sim.core(node).log.snapshot_index
    final = commit(sim, b"after")
    assert sim.applied(node) == final


def test_raft_config_tuning_is_validated() -> None:
    """A heartbeat not shorter than the election timeout is refused up front."""
    with pytest.raises(InvalidArgument):
        quiet_sim(3, raft=RaftConfig(election_timeout_ticks=4, heartbeat_interval_ticks=4))
