"""Load-balance and key-movement bounds of both rings, measured over many keys.

The bounds are the ones stated and justified in docs/ring.md:

* consistent ring, default 512 virtual nodes: every shard within ±20 % of the mean load;
* rendezvous: every shard within ±6 % of the mean with 100,000 keys (sampling noise only);
* adding (removing) one shard of N moves only keys onto (off) that shard, and their number is
  within ±20 % of 1/(N+1) (of 1/N).

Randomness (key sets, random shard names, which shard to remove) comes from one seed, printed by
every test; set KVSTORE_RING_SEED to replay or vary it. The default seed is fixed, so the default
run is deterministic; the soak tests draw a fresh seed unless one is given.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from kvstore.client.ring import DEFAULT_VNODES_PER_SHARD, ConsistentHashRing, RendezvousRing, Ring

DEFAULT_SEED = 20261127
CONSISTENT_LOAD_BOUND = 0.20  # ±20 % of the mean, docs/ring.md "Load"
RENDEZVOUS_LOAD_BOUND = 0.06  # ±6 % of the mean at 100,000 keys
MOVEMENT_TOLERANCE = 0.20  # moved fraction within ±20 % of 1/(N+1) or 1/N
SOAK_RANDOM_SET_BOUND = 0.25  # fresh random name sets in soak: a 5-sigma margin, see test docstring


def seed_for(test: str, *, soak: bool = False) -> int:
    """The seed of this run (KVSTORE_RING_SEED, else fixed, else fresh for soak), printed for replay."""
    given = os.environ.get("KVSTORE_RING_SEED")
    seed = int(given) if given else (random.SystemRandom().randrange(2**32) if soak else DEFAULT_SEED)
    print(f"{test}: seed {seed} (replay with KVSTORE_RING_SEED={seed})")
    return seed


def sample_keys(seed: int, count: int) -> list[bytes]:
    """``count`` distinct keys: half sequential (``user:<n>``), half random bytes of 4..24 bytes."""
    rng = random.Random(seed)
    chosen = {b"user:%d" % i for i in range(count // 2)}
    while len(chosen) < count:
        chosen.add(rng.randbytes(rng.randint(4, 24)))
    return sorted(chosen)


def random_names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct random shard names such as ``"9f3a0c17e2b4"``."""
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.add(f"{rng.getrandbits(48):012x}")
    return sorted(chosen)


def numbered(count: int) -> list[str]:
    return [f"shard-{i}" for i in range(count)]


def load_ratios(ring: Ring, sample: Sequence[bytes]) -> tuple[float, float]:
    """(max/mean, min/mean) of the number of keys per shard; a shard with no key counts as 0."""
    counts = Counter(ring.shard_for(key) for key in sample)
    loads = [counts.get(name, 0) for name in ring.shards]
    mean = len(sample) / len(ring.shards)
    return max(loads) / mean, min(loads) / mean


def route(ring: Ring, sample: Sequence[bytes]) -> list[str]:
    return [ring.shard_for(key) for key in sample]


def assert_addition_moves_about_one_share(before: list[str], after: list[str], new: str, shard_count: int) -> float:
    """Check the keys that moved all went to ``new``, and that about 1/shard_count of them did; return the ratio."""
    moved = [(old, now) for old, now in zip(before, after, strict=True) if old != now]
    assert all(now == new for _, now in moved), "a key moved between two shards that were both present"
    ratio = len(moved) / len(before) * shard_count
    assert abs(ratio - 1) <= MOVEMENT_TOLERANCE, f"adding {new!r} moved {ratio:.3f}/{shard_count} of the keys"
    return ratio


def assert_removal_moves_about_one_share(before: list[str], after: list[str], gone: str, shard_count: int) -> float:
    """Check only keys of ``gone`` moved, that all of them did, and that about 1/shard_count did; return the ratio."""
    moved = [(old, now) for old, now in zip(before, after, strict=True) if old != now]
    assert all(old == gone for old, _ in moved), "a key moved between two shards that were both present"
    assert len(moved) == before.count(gone), "some key of the removed shard did not move"
    ratio = len(moved) / len(before) * shard_count
    assert abs(ratio - 1) <= MOVEMENT_TOLERANCE, f"removing {gone!r} moved {ratio:.3f}/{shard_count} of the keys"
    return ratio


# ----------------------------------------------------------------------------
# Load.
# ----------------------------------------------------------------------------


def test_consistent_ring_loads_stay_within_20_percent_of_the_mean_over_100k_keys() -> None:
    """With 512 virtual nodes, 100k keys spread over 2..16 shards put every shard within ±20 % of the mean."""
    seed = seed_for("consistent load")
    sample = sample_keys(seed, 100_000)
    for shard_count in range(2, 17):
        ring = ConsistentHashRing(numbered(shard_count))
        assert ring.vnodes_per_shard == DEFAULT_VNODES_PER_SHARD
        high, low = load_ratios(ring, sample)
        print(f"  {shard_count:2d} shards: max/mean {high:.3f} min/mean {low:.3f}")
        assert high <= 1 + CONSISTENT_LOAD_BOUND, (shard_count, high)
        assert low >= 1 - CONSISTENT_LOAD_BOUND, (shard_count, low)


def test_consistent_ring_exact_shares_stay_within_20_percent_for_random_names() -> None:
    """For three seeded random name sets per size 2..16, every shard's exact arc share is within ±20 % of 1/N."""
    seed = seed_for("consistent exact shares")
    rng = random.Random(seed)
    worst_high, worst_low = 0.0, 2.0
    for shard_count in range(2, 17):
        for _ in range(3):
            shares = ConsistentHashRing(random_names(rng, shard_count)).ownership().values()
            worst_high = max(worst_high, max(shares) * shard_count)
            worst_low = min(worst_low, min(shares) * shard_count)
    print(f"  worst max/mean {worst_high:.3f}, worst min/mean {worst_low:.3f}")
    assert worst_high <= 1 + CONSISTENT_LOAD_BOUND
    assert worst_low >= 1 - CONSISTENT_LOAD_BOUND


def test_consistent_ring_with_one_virtual_node_is_badly_balanced() -> None:
    """Control: the load check can fail; with 1 virtual node per shard some shard is far outside ±20 %."""
    seed = seed_for("one virtual node")
    sample = sample_keys(seed, 20_000)
    high, low = load_ratios(ConsistentHashRing(numbered(8), vnodes_per_shard=1), sample)
    print(f"  8 shards, V=1: max/mean {high:.3f} min/mean {low:.3f}")
    assert high > 1 + CONSISTENT_LOAD_BOUND or low < 1 - CONSISTENT_LOAD_BOUND


@pytest.mark.parametrize("shard_count", [2, 4, 8, 16])
def test_rendezvous_loads_stay_within_6_percent_of_the_mean_over_100k_keys(shard_count: int) -> None:
    """Rendezvous spreads 100k keys with only sampling noise: every shard within ±6 % of the mean."""
    seed = seed_for(f"rendezvous load, {shard_count} shards")
    high, low = load_ratios(RendezvousRing(numbered(shard_count)), sample_keys(seed, 100_000))
    print(f"  max/mean {high:.3f} min/mean {low:.3f}")
    assert high <= 1 + RENDEZVOUS_LOAD_BOUND
    assert low >= 1 - RENDEZVOUS_LOAD_BOUND


# ----------------------------------------------------------------------------
# Movement.
# ----------------------------------------------------------------------------


def test_consistent_ring_membership_changes_move_about_one_nth_of_the_keys() -> None:
    """For N = 2..16, adding a shard moves ~1/(N+1) of 50k keys (all onto it), removing one ~1/N (all off it)."""
    seed = seed_for("consistent movement")
    rng = random.Random(seed)
    sample = sample_keys(seed, 50_000)
    ring = ConsistentHashRing(numbered(2))
    routes = route(ring, sample)
    for shard_count in range(2, 17):
        gone = rng.choice(ring.shards)
        shrunk_routes = route(ring.without_shard(gone), sample)
        removal = assert_removal_moves_about_one_share(routes, shrunk_routes, gone, shard_count)
        new = f"shard-{shard_count}"
        grown = ring.with_shard(new)
        grown_routes = route(grown, sample)
        addition = assert_addition_moves_about_one_share(routes, grown_routes, new, shard_count + 1)
        print(f"  {shard_count:2d} shards: -{gone} moved {removal:.3f}/N, +{new} moved {addition:.3f}/(N+1)")
        ring, routes = grown, grown_routes


@pytest.mark.parametrize("shard_count", [2, 4, 8, 16])
def test_rendezvous_membership_changes_move_about_one_nth_of_the_keys(shard_count: int) -> None:
    """Rendezvous: adding a shard moves ~1/(N+1) of 20k keys (all onto it), removing one ~1/N (all off it)."""
    seed = seed_for(f"rendezvous movement, {shard_count} shards")
    rng = random.Random(seed)
    sample = sample_keys(seed, 20_000)
    ring = RendezvousRing(random_names(rng, shard_count))
    routes = route(ring, sample)
    gone = rng.choice(ring.shards)
    removal = assert_removal_moves_about_one_share(routes, route(ring.without_shard(gone), sample), gone, shard_count)
    new = "new-shard"
    addition = assert_addition_moves_about_one_share(routes, route(ring.with_shard(new), sample), new, shard_count + 1)
    print(f"  removal moved {removal:.3f}/N, addition moved {addition:.3f}/(N+1)")


def test_movement_check_catches_a_ring_that_reshuffles() -> None:
    """Control: the movement check can fail; a modulo-N placement moves keys between surviving shards."""
    sample = sample_keys(DEFAULT_SEED, 2_000)
    modulo_before = [f"shard-{sum(key) % 4}" for key in sample]
    modulo_after = [f"shard-{sum(key) % 5}" for key in sample]
    with pytest.raises(AssertionError, match="both present"):
        assert_addition_moves_about_one_share(modulo_before, modulo_after, "shard-4", 5)


# ----------------------------------------------------------------------------
# Soak: the same bounds over fresh seeds and more work (make soak).
# ----------------------------------------------------------------------------


@pytest.mark.soak
def test_soak_consistent_ring_exact_shares_over_many_random_name_sets() -> None:
    """Over 100 fresh random name sets per size 2..16, no share leaves ±25 % and under 1 % leave ±20 %.

    ±20 % held for every one of the 6,000 random sets measured for docs/ring.md, but a tail
    probability per set is not zero (a shard's share has a relative spread of about 4.4 %, so
    ±20 % is about 4.5 sigma), so a fresh-seed run asserts the ~5.7-sigma bound ±25 % for every
    set and the stated ±20 % for all but 1 % of them, and prints the worst it saw.
    """
    seed = seed_for("soak consistent exact shares", soak=True)
    rng = random.Random(seed)
    ratios: list[tuple[float, float]] = []
    for shard_count in range(2, 17):
        for _ in range(100):
            shares = ConsistentHashRing(random_names(rng, shard_count)).ownership().values()
            ratios.append((max(shares) * shard_count, min(shares) * shard_count))
    worst_high, worst_low = max(r[0] for r in ratios), min(r[1] for r in ratios)
    outside = sum(1 for high, low in ratios if max(high - 1, 1 - low) > CONSISTENT_LOAD_BOUND)
    print(f"  {len(ratios)} sets: worst max/mean {worst_high:.3f}, min/mean {worst_low:.3f}; {outside} outside ±20 %")
    assert worst_high <= 1 + SOAK_RANDOM_SET_BOUND
    assert worst_low >= 1 - SOAK_RANDOM_SET_BOUND
    assert outside <= len(ratios) // 100


@pytest.mark.soak
def test_soak_rendezvous_loads_over_100k_keys_for_every_size() -> None:
    """Rendezvous keeps every shard within ±6 % of the mean for each of 2..16 shards, fresh keys."""
    seed = seed_for("soak rendezvous load", soak=True)
    sample = sample_keys(seed, 100_000)
    for shard_count in range(2, 17):
        high, low = load_ratios(RendezvousRing(numbered(shard_count)), sample)
        print(f"  {shard_count:2d} shards: max/mean {high:.3f} min/mean {low:.3f}")
        assert high <= 1 + RENDEZVOUS_LOAD_BOUND
        assert low >= 1 - RENDEZVOUS_LOAD_BOUND


@pytest.mark.soak
@pytest.mark.parametrize("kind", ["consistent", "rendezvous"])
def test_soak_membership_changes_over_100k_keys_for_every_size(kind: str) -> None:
    """Both rings: for every N in 2..16 and fresh random names, additions and removals move ~1/N of 100k keys."""
    seed = seed_for(f"soak {kind} movement", soak=True)
    rng = random.Random(seed)
    sample = sample_keys(seed, 100_000)
    for shard_count in range(2, 17):
        names = random_names(rng, shard_count + 1)
        new = names.pop()
        ring: Ring = ConsistentHashRing(names) if kind == "consistent" else RendezvousRing(names)
        routes = route(ring, sample)
        gone = rng.choice(ring.shards)
        shrunk_routes, grown_routes = route(ring.without_shard(gone), sample), route(ring.with_shard(new), sample)
        removal = assert_removal_moves_about_one_share(routes, shrunk_routes, gone, shard_count)
        addition = assert_addition_moves_about_one_share(routes, grown_routes, new, shard_count + 1)
        print(f"  {shard_count:2d} shards: removal {removal:.3f}/N, addition {addition:.3f}/(N+1)")
