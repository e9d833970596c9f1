# ruff: noqa: F821, E501  (a patch fragment: names come from the file it patches)
"""Off-by-one wraparound: a key past the last virtual node goes to the last node instead of the first."""

FILE = "kvstore/client/ring.py"
CAUGHT_BY = ["test_the_search_wraps_around_the_top_of_the_circle", "test_consistent_ring_agrees_with_an_independent_model"]


class ConsistentHashRing:
    def shard_for(self, key):
        key = _validated_key(key)
        index = bisect.bisect_left(self._points, key_point(key))
        if index == len(self._points):
            index = len(self._points) - 1
        return self._owners[index]
