"""Helpers shared by the Raft and simulator tests (not a test module itself)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kvstore.raft.core import RaftConfig, RaftCore, Role
from kvstore.sim.cluster import CoreFactory, SimConfig, Simulation


def quiet_sim(
    nodes: int = 3,
    seed: int = 1,
    *,
    core_factory: CoreFactory = RaftCore,
    raft: RaftConfig | None = None,
    **overrides: Any,
) -> Simulation:
    """A simulation with a reliable network and no automatic clients or faults: the test drives it."""
    cfg = replace(SimConfig(nodes=nodes, seed=seed, raft=raft or RaftConfig()), **overrides)
    return Simulation(cfg, core_factory=core_factory, keep_trace=None, auto_clients=False, auto_nemesis=False)


def wait_for_leader(sim: Simulation, *, max_ticks: int = 200, among: list[str] | None = None) -> str:
    """Run until some running node (optionally one of ``among``) leads; return its id.

    Raises:
        AssertionError: no leader within ``max_ticks``.
    """
    def found() -> bool:
        leader = sim.leader()
        return leader is not None and (among is None or leader in among)

    if not sim.run_until(found, max_ticks=max_ticks):
        raise AssertionError(f"no leader within {max_ticks} ticks (seed {sim.cfg.seed})")
    return sim.leader() or ""


def commit(sim: Simulation, data: bytes, *, max_ticks: int = 200, on: list[str] | None = None) -> int:
    """Propose ``data`` on the current leader and run until the given (default: running) nodes applied it."""
    leader = wait_for_leader(sim, max_ticks=max_ticks)
    index = sim.propose(leader, data)
    nodes = on if on is not None else sim.up()
    if not sim.run_until(lambda: sim.all_applied(index, nodes), max_ticks=max_ticks):
        raise AssertionError(f"entry {index} not applied on {nodes} within {max_ticks} ticks (seed {sim.cfg.seed})")
    return index


def leaders_by_term(sim: Simulation) -> dict[int, str]:
    """Every (term, leader) the checker has seen."""
    return dict(sim.checker.leaders)


def roles(sim: Simulation) -> dict[str, Role | None]:
    """Each node's role (None when down)."""
    out: dict[str, Role | None] = {}
    for n in sim.ids:
        core = sim.nodes[n].core
        out[n] = core.role if core is not None else None
    return out


def applied_commands(sim: Simulation, node: str) -> list[bytes]:
    """The NORMAL entries a node has applied so far, as recorded by the checker's registry."""
    upto = sim.applied(node)
    return [data for i, (_, data) in sorted(sim.checker.applied.items()) if i <= upto and data]
