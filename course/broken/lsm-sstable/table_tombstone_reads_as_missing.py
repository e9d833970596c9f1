# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A table lookup that reports a tombstone as "not in this table": the read goes on to an older table and resurrects the key."""

FILE = "kvstore/lsm/sstable.py"
CAUGHT_BY = ['test_a_tombstone_in_a_newer_table_hides_the_value_in_an_older_one']


class TableReader:
    def lookup(self, key: bytes) -> bytes | Sentinel | None:
        """Like :meth:`get` without the bloom check (the caller already probed the filter)."""
        i = bisect_left(self.index_keys, key)
        if i < len(self.index_keys):
            blk = self.block(i)
            j = blk.find(key)
            if j >= 0:
                value = blk.value_at(j)
                return MISSING if value is None else value  # BUG: a tombstone is an answer
        self.bloom_false_positives += 1
        return MISSING
