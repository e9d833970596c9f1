# ruff: noqa: F821, E501  (a patch fragment: names come from the file it patches)
"""Virtual nodes placed with Python's built-in hash(): salted per process, so clients disagree on routing."""

FILE = "kvstore/client/ring.py"
CAUGHT_BY = [
    "test_routing_is_identical_in_processes_with_different_hash_seeds",
    "test_consistent_ring_agrees_with_an_independent_model",
    "test_small_rings_route_the_same_in_every_process",
]


def place_virtual_nodes(shards, vnodes_per_shard):
    placed = sorted((hash(f"{shard}#{index}") % HASH_SPACE, shard) for shard in shards for index in range(vnodes_per_shard))
    return tuple(point for point, _ in placed), tuple(owner for _, owner in placed)
