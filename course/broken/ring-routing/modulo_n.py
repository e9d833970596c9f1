# ruff: noqa: F821  (a patch fragment: names come from the file it patches)
"""Hash-mod-N instead of a ring: adding a shard reshuffles almost every key."""

FILE = "kvstore/client/ring.py"
CAUGHT_BY = [
    "test_adding_a_shard_moves_only_its_fair_share_of_keys",
    "test_adding_a_shard_moves_keys_only_onto_the_new_shard",
    "test_consistent_ring_agrees_with_an_independent_model",
]


class ConsistentHashRing:
    def shard_for(self, key):
        key = _validated_key(key)
        return self._shards[key_point(key) % len(self._shards)]
