"""The named partition shapes cut the links they promise, and the cluster stays safe under each."""

from __future__ import annotations

import pytest

from kvstore.sim import PARTITION_SHAPES, Simulation
from kvstore.sim.testing import commit, quiet_sim, wait_for_leader


def _sees(sim: Simulation, node: str) -> set[str]:
    return {other for other in sim.ids if sim.connected(node, other)}


@pytest.mark.parametrize("shape", PARTITION_SHAPES)
def test_cluster_is_safe_under_each_partition_shape_and_recovers_after_healing(shape: str) -> None:
    """Five nodes under one shape for 150 ticks: every check holds, and after healing a command commits."""
    sim = quiet_sim(5, seed=61)
    leader = wait_for_leader(sim)
    commit(sim, b"before")
    sim.partition_shape(shape)
    cut = [(a, b) for a in sim.ids for b in sim.ids if not sim.connected(a, b)]
    assert cut, f"{shape} cut some links"
    sim.run_for(150)
    sim.heal()
    commit(sim, b"after", max_ticks=300)
    assert sim.checker.leaders, f"leaders were tracked (first: {leader})"


def test_majorities_ring_lets_each_node_see_a_different_majority() -> None:
    """majorities_ring: every node sees exactly a majority (itself included), and no two see the same set."""
    sim = quiet_sim(5, seed=62)
    sim.partition_shape("majorities_ring")
    views = [frozenset(_sees(sim, n)) for n in sim.ids]
    assert all(len(v) == 3 for v in views)
    assert len(set(views)) == 5


def test_bridge_node_sees_everyone_while_the_two_sides_are_cut() -> None:
    """bridge: one node is connected to all; the others only to their own side and the bridge."""
    sim = quiet_sim(5, seed=63)
    sim.partition_shape("bridge")
    views = {n: _sees(sim, n) for n in sim.ids}
    bridges = [n for n, v in views.items() if len(v) == 5]
    assert len(bridges) == 1
    assert all(len(v) == 3 for n, v in views.items() if n not in bridges)


def test_isolate_leader_cuts_off_exactly_the_current_leader() -> None:
    """isolate_leader: the leader sees only itself; everyone else sees the other four."""
    sim = quiet_sim(5, seed=64)
    leader = wait_for_leader(sim)
    sim.partition_shape("isolate_leader")
    assert _sees(sim, leader) == {leader}
    assert all(len(_sees(sim, n)) == 4 for n in sim.ids if n != leader)
