# ruff: noqa: F821  (a patch fragment: names come from the file it patches)
"""Successor search with bisect_right: a key hashing exactly onto a virtual node skips to the next one."""

FILE = "kvstore/client/ring.py"
CAUGHT_BY = ["test_a_key_exactly_on_a_virtual_node_belongs_to_that_node"]


class ConsistentHashRing:
    def shard_for(self, key):
        key = _validated_key(key)
        index = bisect.bisect_right(self._points, key_point(key))
        if index == len(self._points):
            index = 0
        return self._owners[index]
