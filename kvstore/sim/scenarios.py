"""Scripted scenarios shared by the scenario tests and the planted-bug tests.

Each function drives a :class:`Simulation` through a story from the Raft
paper or thesis and returns it; the cluster checker raises
:class:`SimViolation` the moment a rule breaks. They take a ``core_factory``
so the same story can be told with a deliberately broken core
(:mod:`kvstore.raft.planted`).
"""

from __future__ import annotations

from kvstore.raft.core import RaftConfig, RaftCore, Role
from kvstore.sim.cluster import ClientOp, CoreFactory, Simulation
from kvstore.sim.testing import quiet_sim


def _force_leader(sim: Simulation, node: str, *, attempts: int = 3, ticks: float = 4) -> bool:
    """Force-campaign ``node`` until it leads (or attempts run out)."""
    for _ in range(attempts):
        if sim.leader() == node:
            return True
        sim.campaign(node, force=True)
        sim.run_until(lambda: sim.leader() == node, max_ticks=ticks)
    return sim.leader() == node


def figure8(core_factory: CoreFactory = RaftCore, *, seed: int = 1) -> Simulation:
    """Figure 8 of the Raft paper, step by step, on five nodes (one entry per append).

    (a) n1 leads term 1 and stores entry A at index 3 on n1 and n2 only.
    (b) n1 crashes; n5 wins term 2 with n3, n4 and stores its no-op at index 3
        on itself only, then crashes.
    (c) n1 restarts and wins a later term; it re-sends A to n3. A is now on a
        majority, but of an old term: a correct leader does not count it
        committed until its own no-op (index 4) is on a majority too. We stop
        n1 the moment its commit index reaches 3.
    (d) n5 restarts and campaigns. If A had been committed by counting alone,
        n5 could win (its last term 2 beats n3's and n4's) and overwrite A,
        an entry a state machine already applied: the checker reports it.
    Finally the network heals and the cluster must agree again.
    """
    sim = quiet_sim(5, seed, core_factory=core_factory, min_delay=0.5, max_delay=0.5,
                    raft=RaftConfig(max_append_bytes=1))
    if not _force_leader(sim, "n1"):
        raise AssertionError("setup: n1 did not win term 1")
    index = sim.propose("n1", b"x0")
    sim.run_until(lambda: sim.all_applied(index), max_ticks=20)
    # (a)
    sim.partition([["n1", "n2"], ["n3", "n4", "n5"]])
    a_index = sim.propose("n1", b"A")
    sim.run_until(lambda: sim.core("n2").log.last_index() >= a_index, max_ticks=5)
    # (b)
    sim.crash("n1")
    if not _force_leader(sim, "n5"):
        raise AssertionError("setup: n5 did not win term 2")
    sim.crash("n5")
    sim.isolate("n5")
    # (c)
    sim.restart("n1")
    sim.partition([["n1", "n2", "n3", "n4"], ["n5"]])
    if not _force_leader(sim, "n1", attempts=4):
        raise AssertionError("setup: n1 did not win again")
    sim.run_until(lambda: sim.core("n1").commit_index >= a_index, max_ticks=10)
    sim.crash("n1")
    sim.isolate("n1")
    # (d)
    sim.restart("n5")
    sim.partition([["n2", "n3", "n4", "n5"], ["n1"]])
    _force_leader(sim, "n5", attempts=3)
    sim.run_for(10)
    sim.heal()
    sim.restart("n1")
    return sim


def forgotten_vote(core_factory: CoreFactory = RaftCore, *, seed: int = 1, check_ready_contract: bool = True
                   ) -> Simulation:
    """A voter restarts between two candidates of the same term (the reason votes are persisted).

    n2 votes for n1 in term 1 and n1 leads. n2 crashes and restarts. Now n3,
    cut off from n1, campaigns in term 1 too. A node that persisted its vote
    refuses n3; one that forgot it votes again, and term 1 gets two leaders.
    """
    sim = quiet_sim(3, seed, core_factory=core_factory, check_ready_contract=check_ready_contract)
    sim.partition([["n1", "n2"], ["n3"]])
    if not _force_leader(sim, "n1", attempts=1):
        raise AssertionError("setup: n1 did not win term 1")
    sim.crash("n2")
    sim.restart("n2")
    sim.partition([["n1"], ["n2", "n3"]])
    sim.campaign("n3", force=True)
    sim.run_for(5)
    return sim


def deposed_leader_read(core_factory: CoreFactory = RaftCore, *, seed: int = 1) -> tuple[Simulation, ClientOp]:
    """A leader cut off from the majority is asked for a read after the others moved on.

    Check-quorum is off here so the old leader keeps believing it leads: only
    ReadIndex's quorum round stands between the client and a stale value.
    x=1 is written through n1; n1 is isolated; the others elect a leader and
    write x=2; then a client reads x from n1. Returns the simulation and the read.
    """
    sim = quiet_sim(5, seed, core_factory=core_factory, raft=RaftConfig(check_quorum=False))
    if not _force_leader(sim, "n1"):
        raise AssertionError("setup: n1 did not lead")
    w1 = sim.submit(0, "write", "x", 1, node="n1")
    sim.run_until(lambda: w1.outcome is not None, max_ticks=20)
    sim.isolate("n1")
    others = ["n2", "n3", "n4", "n5"]
    sim.run_until(lambda: any(sim.core(n).role == Role.LEADER for n in others), max_ticks=200)
    new_leader = next(n for n in others if sim.core(n).role == Role.LEADER)
    w2 = sim.submit(0, "write", "x", 2, node=new_leader)
    sim.run_until(lambda: w2.outcome is not None, max_ticks=20)
    sim.run_for(1)  # the read starts strictly after the write returned
    read = sim.submit(1, "read", "x", None, node="n1")
    sim.run_until(lambda: read.outcome is not None, max_ticks=sim.cfg.client_timeout_ticks + 5)
    sim.heal()
    sim.run_for(30)
    return sim, read
