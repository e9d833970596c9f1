# ruff: noqa: F821, E501  (a patch fragment: names come from the file it patches)
"""Rendezvous scores hash name + key without the 0x00 separator: ("a", b"bc") and ("ab", b"c") collide."""

FILE = "kvstore/client/ring.py"
CAUGHT_BY = ["test_rendezvous_ring_agrees_with_an_independent_model", "test_small_rings_route_the_same_in_every_process"]


class RendezvousRing:
    def shard_for(self, key):
        key = _validated_key(key)
        best_index = 0
        best_score = -1
        for index, shard in enumerate(self._shards):
            score = hash64(shard.encode() + key)
            if score > best_score:
                best_index, best_score = index, score
        return self._shards[best_index]
