"""Agreement and log-replication scenarios on the simulator (Raft paper §5.3-5.4)."""

from __future__ import annotations

from kvstore.raft import AppendEntries, RaftConfig
from kvstore.sim import SimConfig, Simulation, run_simulation
from kvstore.sim.testing import applied_commands, commit, quiet_sim, wait_for_leader


def test_basic_agreement_every_node_applies_the_same_commands_in_order() -> None:
    """Commands proposed one by one are applied by every node, in the same order."""
    sim = quiet_sim(3, seed=21)
    for i in range(10):
        commit(sim, f"cmd{i}".encode())
    expected = [f"cmd{i}".encode() for i in range(10)]
    for n in sim.ids:
        assert applied_commands(sim, n) == expected


def test_agreement_despite_a_follower_failing() -> None:
    """With one of three nodes down the other two commit; the failed one catches up when back."""
    sim = quiet_sim(3, seed=22)
    leader = wait_for_leader(sim)
    follower = next(n for n in sim.ids if n != leader)
    sim.crash(follower)
    for i in range(5):
        commit(sim, f"c{i}".encode())
    sim.restart(follower)
    last = commit(sim, b"final")
    assert sim.applied(follower) == last
    assert applied_commands(sim, follower) == applied_commands(sim, leader)


def test_no_agreement_without_a_majority() -> None:
    """With 3 of 5 followers down nothing new commits; it does once they return."""
    sim = quiet_sim(5, seed=23)
    leader = wait_for_leader(sim)
    commit(sim, b"first")
    followers = [n for n in sim.ids if n != leader]
    for n in followers[:3]:
        sim.crash(n)
    before = sim.core(leader).commit_index
    index = sim.propose(leader, b"stuck")
    sim.run_for(sim.cfg.raft.election_timeout_ticks - 1)  # before check-quorum could depose it
    assert sim.core(leader).commit_index == before and sim.core(leader).log.last_index() == index
    for n in followers[:3]:
        sim.restart(n)
    commit(sim, b"unstuck")


def test_concurrent_proposals_all_commit_in_one_order() -> None:
    """Many proposals submitted at once commit exactly once each, in one order on every node."""
    sim = quiet_sim(3, seed=24)
    leader = wait_for_leader(sim)
    sent = [f"p{i}".encode() for i in range(50)]
    for data in sent:
        sim.propose(leader, data)
    assert sim.run_until(lambda: sim.all_applied(sim.core(leader).log.last_index()), max_ticks=100)
    orders = {tuple(applied_commands(sim, n)) for n in sim.ids}
    assert len(orders) == 1 and sorted(orders.pop()) == sorted(sent)


def test_old_leader_rejoining_drops_its_uncommitted_entries() -> None:
    """A partitioned leader's entries that never committed are replaced by the new leader's log."""
    sim = quiet_sim(5, seed=25)
    old = wait_for_leader(sim)
    commit(sim, b"common")
    sim.isolate(old)
    for i in range(3):
        sim.propose(old, f"lost{i}".encode())
    others = [n for n in sim.ids if n != old]
    wait_for_leader(sim, among=others, max_ticks=300)
    commit(sim, b"new", on=others)
    sim.heal()
    last = commit(sim, b"together")
    assert sim.applied(old) == last
    assert not any(c.startswith(b"lost") for c in applied_commands(sim, old))
    assert applied_commands(sim, old) == applied_commands(sim, others[0])


def _divergent_cluster(seed: int) -> tuple[Simulation, list[str], str]:
    """A leader and one follower take 60 entries that never commit, while the majority commits 60 others."""
    sim = quiet_sim(5, seed=seed)
    old = wait_for_leader(sim)
    commit(sim, b"base")
    buddy = next(n for n in sim.ids if n != old)
    sim.partition([[old, buddy], [n for n in sim.ids if n not in (old, buddy)]])
    for i in range(60):
        sim.propose(old, f"minority{i}".encode())
    sim.run_for(3)
    majority = [n for n in sim.ids if n not in (old, buddy)]
    new = wait_for_leader(sim, among=majority, max_ticks=300)
    for i in range(60):
        sim.propose(new, f"majority{i}".encode())
    sim.run_until(lambda: sim.all_applied(sim.core(new).log.last_index(), majority), max_ticks=100)
    return sim, [old, buddy], new


def test_fast_backoff_repairs_a_long_divergent_log_in_a_few_round_trips() -> None:
    """Conflict term/index hints skip whole terms: 60 divergent entries cost a handful of rejections, not 60."""
    sim, stale, leader = _divergent_cluster(seed=26)
    mark = len(sim.tracer.events)
    sim.heal()
    # A fresh leader knows nothing of the stale logs: its first appends probe from its own last index.
    successor = next(n for n in sim.ids if n not in stale and n != leader)
    sim.do(leader, lambda c: c.transfer_leadership(successor))
    assert sim.run_until(lambda: sim.leader() == successor, max_ticks=20)
    last = commit(sim, b"healed")
    rejections = [e for e in list(sim.tracer.events)[mark:] if e.event == "append_rejected" and e.node in stale]
    assert rejections, "the divergent followers did reject appends"
    assert len(rejections) <= 3 * len(stale)
    assert all(sim.applied(n) == last for n in stale)


def test_message_budget_per_command_and_per_idle_heartbeat_interval() -> None:
    """Idle: at most 2(N-1) messages per heartbeat interval. Busy: at most 2(N-1) more per command."""
    n = 3
    sim = quiet_sim(n, seed=27)
    wait_for_leader(sim)
    commit(sim, b"warm-up")
    interval = sim.cfg.raft.heartbeat_interval_ticks
    before = sim.stats.messages_sent
    sim.run_for(100)
    idle = sim.stats.messages_sent - before
    heartbeat_budget = 2 * (n - 1) * (100 // interval + 1)
    assert 0 < idle <= heartbeat_budget
    before, start = sim.stats.messages_sent, sim.now
    for i in range(20):
        commit(sim, f"cmd{i}".encode())
    busy = sim.stats.messages_sent - before
    elapsed = sim.now - start
    assert busy <= 2 * (n - 1) * (elapsed // interval + 1) + 20 * 2 * (n - 1)


def test_unreliable_agreement_commits_through_drops_duplicates_delays_and_reordering() -> None:
    """Clients' writes and reads commit and check out while the network misbehaves in every way but cuts."""
    faults = frozenset({"drop", "duplicate", "delay", "reorder"})
    result = run_simulation(SimConfig(nodes=5, seed=28, faults=faults), ticks=1500)
    assert result.ok, result.summary()
    s = result.stats
    assert s.messages_dropped > 0 and s.messages_duplicated > 0 and s.messages_delayed > 0
    assert s.client_ok > 100
    assert result.history_check is not None and result.history_check.valid and result.history_check.checked_ops > 0


def test_appends_respect_the_byte_cap_while_a_follower_catches_up() -> None:
    """Flow control in a live cluster: no AppendEntries carries more than one entry over max_append_bytes."""
    sim = quiet_sim(3, seed=29, raft=RaftConfig(max_append_bytes=300, max_inflight_appends=4), trace_messages=True)
    leader = wait_for_leader(sim)
    lagging = next(n for n in sim.ids if n != leader)
    sim.crash(lagging)
    for i in range(40):
        sim.propose(leader, bytes(100) + bytes([i]))
    sim.run_for(10)
    sim.restart(lagging)
    sent: list[AppendEntries] = []
    original = sim._send

    def spy(msg: object) -> None:
        if isinstance(msg, AppendEntries) and msg.entries:
            sent.append(msg)
        original(msg)  # type: ignore[arg-type]

    sim._send = spy  # type: ignore[method-assign]
    commit(sim, b"caught up")
    assert sent and max(len(m.entries) for m in sent) <= 3
    assert all(sum(e.size_bytes() for e in m.entries) <= 300 or len(m.entries) == 1 for m in sent)
