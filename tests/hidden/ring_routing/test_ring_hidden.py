"""Hidden tests of the ring-routing lab: each ring against an independent model written from the spec.

The models below use ``hashlib`` directly (never the student's module), so a ring that hashes the
wrong bytes, searches the circle wrongly, breaks ties wrongly or moves too many keys disagrees
with them. Randomized tests run over fixed seeds; the grader scores them by the fraction that pass.
"""

from __future__ import annotations

import bisect
import hashlib
import random

import pytest

from kvstore.client import ring as ring_module
from kvstore.client.ring import ConsistentHashRing, RendezvousRing, place_virtual_nodes

SEEDS = [11, 23, 47]


def h64(data: bytes) -> int:
    """The documented hash: BLAKE2b with digest_size=8, read big-endian."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def model_consistent(shards: list[str], vnodes: int, key: bytes) -> str:
    """Karger's ring as the docstrings specify it: first virtual node at or after the key, wrapping."""
    placed = sorted((h64(f"{s}#{i}".encode()), s) for s in shards for i in range(vnodes))
    points = [p for p, _ in placed]
    j = bisect.bisect_left(points, h64(key))
    return placed[j % len(placed)][1]


def model_rendezvous(shards: list[str], key: bytes) -> str:
    """Highest random weight: the largest hash of name || 0x00 || key, the smaller name on a tie."""
    return max(sorted(shards), key=lambda s: h64(s.encode() + b"\x00" + key))


def random_names(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rng.randint(1, 12))))
    return sorted(names)


def random_keys(rng: random.Random, count: int) -> list[bytes]:
    return [rng.randbytes(rng.randint(1, 24)) for _ in range(count)]


@pytest.mark.parametrize("seed", SEEDS)
def test_consistent_ring_agrees_with_an_independent_model(seed: int) -> None:
    """Every sampled key goes where the spec's ring (built here from hashlib) sends it."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    shards = random_names(rng, rng.randint(2, 7))
    vnodes = rng.choice([1, 3, 16, 64])
    ring = ConsistentHashRing(shards, vnodes_per_shard=vnodes)
    for key in random_keys(rng, 2000):
        assert ring.shard_for(key) == model_consistent(shards, vnodes, key), (shards, vnodes, key)


@pytest.mark.parametrize("seed", SEEDS)
def test_rendezvous_ring_agrees_with_an_independent_model(seed: int) -> None:
    """Every sampled key goes to the shard with the highest documented score."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    shards = random_names(rng, rng.randint(2, 9))
    ring = RendezvousRing(shards)
    for key in random_keys(rng, 2000):
        assert ring.shard_for(key) == model_rendezvous(shards, key), (shards, key)


def test_placement_breaks_point_collisions_by_the_smaller_name() -> None:
    """Two virtual nodes on one point (a forced collision) are listed smaller name first, whatever the input order."""
    original = ring_module.vnode_point
    try:
        ring_module.vnode_point = lambda shard, index: 1000 * index  # every shard collides at every index
        for order in (["b", "a", "c"], ["c", "b", "a"]):
            points, owners = place_virtual_nodes(order, 3)
            assert list(points) == [0, 0, 0, 1000, 1000, 1000, 2000, 2000, 2000]
            assert list(owners) == ["a", "b", "c"] * 3
    finally:
        ring_module.vnode_point = original


@pytest.mark.parametrize(("offset", "expected_index"), [(-1, 0), (0, 0), (1, 1)])
def test_a_key_exactly_on_a_virtual_node_belongs_to_that_node(offset: int, expected_index: int) -> None:
    """At or after: a key hashing onto a point belongs to it; one just past it, to the next one."""
    ring = ConsistentHashRing(["alpha", "beta", "gamma"], vnodes_per_shard=4)
    points, owners = place_virtual_nodes(["alpha", "beta", "gamma"], 4)
    target = 5
    original = ring_module.key_point
    try:
        ring_module.key_point = lambda key: points[target] + offset
        assert ring.shard_for(b"any") == owners[target + expected_index]
    finally:
        ring_module.key_point = original


@pytest.mark.parametrize("where", ["past-the-last", "at-zero", "at-the-last"])
def test_the_search_wraps_around_the_top_of_the_circle(where: str) -> None:
    """Past the last point the key belongs to the first virtual node; at the last point, to the last one."""
    ring = ConsistentHashRing(["alpha", "beta", "gamma"], vnodes_per_shard=4)
    points, owners = place_virtual_nodes(["alpha", "beta", "gamma"], 4)
    value, expected = {
        "past-the-last": (points[-1] + 1, owners[0]),
        "at-zero": (0, owners[0]),
        "at-the-last": (points[-1], owners[-1]),
    }[where]
    original = ring_module.key_point
    try:
        ring_module.key_point = lambda key: value
        assert ring.shard_for(b"any") == expected
    finally:
        ring_module.key_point = original


@pytest.mark.parametrize("seed", SEEDS)
def test_adding_a_shard_moves_only_its_fair_share_of_keys(seed: int) -> None:
    """Adding one shard to N moves keys only onto it, and no more than twice the fair 1/(N+1) of them."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    shards = random_names(rng, rng.randint(3, 8))
    new = "new-" + str(seed)
    keys = random_keys(rng, 6000)
    for before in (ConsistentHashRing(shards, vnodes_per_shard=128), RendezvousRing(shards)):
        after = before.with_shard(new)
        moved = [k for k in keys if before.shard_for(k) != after.shard_for(k)]
        assert all(after.shard_for(k) == new for k in moved)
        assert len(moved) / len(keys) < 2 / (len(shards) + 1), (type(before).__name__, len(moved))


def test_small_rings_route_the_same_in_every_process() -> None:
    """Known answers computed from the documented hash: no per-process salt (Python's hash()) anywhere."""
    shards = ["s0", "s1", "s2"]
    keys = [b"user:%d" % i for i in range(200)]
    ring = ConsistentHashRing(shards, vnodes_per_shard=8)
    rendezvous = RendezvousRing(shards)
    assert [ring.shard_for(k) for k in keys] == [model_consistent(shards, 8, k) for k in keys]
    assert [rendezvous.shard_for(k) for k in keys] == [model_rendezvous(shards, k) for k in keys]
