"""The randomized seed sweep: many short simulations, each fully determined by its seed.

``sweep_config(seed)`` derives the cluster size and fault mix from the seed
itself, so a failing seed reported by the sweep replays exactly with
``kv sim --seed S`` plus the printed options, or with ``run_sweep_case(S)``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass

from kvstore.sim.cluster import FAULT_KINDS, SimConfig, SimResult, default_config, run_simulation
from kvstore.sim.pretty import format_columns

SWEEP_TICKS = 800


def sweep_config(seed: int) -> SimConfig:
    """The configuration the sweep uses for ``seed``: 3, 5 or 7 nodes; all faults, or a seeded subset."""
    pick = random.Random(seed * 7919 + 1)
    nodes = pick.choice((3, 5, 5, 5, 7))
    if pick.random() < 0.6:
        faults = frozenset(FAULT_KINDS)
    else:
        faults = frozenset(k for k in FAULT_KINDS if pick.random() < 0.5) or frozenset({"drop"})
    return default_config(nodes=nodes, seed=seed, faults=faults, clients=pick.choice((1, 1, 2, 3)))


def run_sweep_case(seed: int, *, ticks: int = SWEEP_TICKS) -> SimResult:
    """Run the sweep's simulation for one seed."""
    return run_simulation(sweep_config(seed), ticks=ticks)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a sweep found, and how fast it ran."""

    seeds: int
    failures: tuple[SimResult, ...]
    node_ticks: int
    virtual_ticks: float
    wall_seconds: float

    def describe_failures(self) -> str:
        """Seed, summary and the last events (one column per node) of each failure."""
        parts = []
        for r in self.failures:
            cfg = sweep_config(r.seed)
            nodes = [f"n{i}" for i in range(1, cfg.nodes + 1)]
            faults = ",".join(sorted(cfg.faults))
            parts.append(
                f"{r.summary()}\n  replay: kv sim --nodes {cfg.nodes} --seed {r.seed} --ticks {SWEEP_TICKS} "
                f"--faults {faults} --clients {cfg.clients}\n"
                + format_columns(r.last_events[-30:], nodes)
            )
        return "\n\n".join(parts)


def run_sweep(seeds: Iterable[int], *, ticks: int = SWEEP_TICKS) -> SweepReport:
    """Run every seed; collect failures and speed figures."""
    start = time.perf_counter()
    failures: list[SimResult] = []
    count = node_ticks = 0
    virtual = 0.0
    for seed in seeds:
        result = run_sweep_case(seed, ticks=ticks)
        count += 1
        node_ticks += result.stats.ticks
        virtual += result.virtual_ticks
        if not result.ok:
            failures.append(result)
    return SweepReport(count, tuple(failures), node_ticks, virtual, time.perf_counter() - start)
