"""The randomized seed sweep: every seed's simulation must pass all safety checks and end live.

Default run: SWEEP_SEEDS seeds in chunks (about two minutes on a 2-core CI
machine). ``make soak`` runs many more. A failure prints each failing seed, the
command that replays it, and its last events one column per node.
"""

from __future__ import annotations

import os

import pytest

from kvstore.sim.sweep import run_sweep

SWEEP_SEEDS = 480
CHUNKS = 8
SOAK_SEEDS = int(os.environ.get("KVSTORE_SOAK_SEEDS", "4000"))


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_seed_sweep_finds_no_violation(chunk: int) -> None:
    """Seeds chunk*N .. (chunk+1)*N - 1: all faults or seeded subsets, 3 to 7 nodes, checks after every event."""
    per = SWEEP_SEEDS // CHUNKS
    seeds = range(chunk * per, (chunk + 1) * per)
    print(f"sweep seeds {seeds.start}..{seeds.stop - 1}")
    report = run_sweep(seeds)
    assert report.seeds == per and report.node_ticks > 0
    assert not report.failures, report.describe_failures()


@pytest.mark.soak
def test_long_seed_sweep_finds_no_violation() -> None:
    """Many more seeds (KVSTORE_SOAK_SEEDS, default 4000), starting after the default sweep's."""
    seeds = range(SWEEP_SEEDS, SWEEP_SEEDS + SOAK_SEEDS)
    print(f"soak sweep seeds {seeds.start}..{seeds.stop - 1}")
    report = run_sweep(seeds)
    assert not report.failures, report.describe_failures()
