# ruff: noqa: F821  (a patch fragment: names come from the file it patches)
"""Virtual nodes sorted by point only: on a collision the input order of shard names decides the owner."""

FILE = "kvstore/client/ring.py"
CAUGHT_BY = ["test_placement_breaks_point_collisions_by_the_smaller_name"]


def place_virtual_nodes(shards, vnodes_per_shard):
    placed = sorted(
        ((vnode_point(shard, index), shard) for shard in shards for index in range(vnodes_per_shard)),
        key=lambda pair: pair[0],
    )
    return tuple(point for point, _ in placed), tuple(owner for _, owner in placed)
