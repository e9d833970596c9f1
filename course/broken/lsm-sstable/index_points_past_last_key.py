# ruff: noqa  (a patch fragment: names come from the file it patches)
"""The table index searched for the first block whose last key is *greater* than the key: each block's last key is never found."""

FILE = "kvstore/lsm/sstable.py"
CAUGHT_BY = ['test_every_key_of_a_multi_block_table_is_found_including_block_boundaries']


class TableReader:
    def lookup(self, key: bytes) -> bytes | Sentinel | None:
        """Like :meth:`get` without the bloom check (the caller already probed the filter)."""
        index_keys = self.index_keys
        i = 0
        while i < len(index_keys) and index_keys[i] <= key:  # BUG: should stop at the first last-key >= key
            i += 1
        if i < len(index_keys):
            blk = self.block(i)
            j = blk.find(key)
            if j >= 0:
                return blk.value_at(j)
        self.bloom_false_positives += 1
        return MISSING
