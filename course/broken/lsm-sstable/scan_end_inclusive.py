# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A table scan that includes the end key: ``scan(start, end)`` is half-open, so the key equal to ``end`` leaks in."""

FILE = "kvstore/lsm/sstable.py"
CAUGHT_BY = ['test_table_scans_are_half_open_in_both_directions']


class TableReader:
    def chunks(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[list[bytes], list[bytes | None]]]:
        """Yield the entries with ``start <= key < end`` block by block, as (keys, values) runs."""
        n = len(self.index_keys)
        first = 0 if start is None else bisect_left(self.index_keys, start)
        last = n - 1 if end is None else min(n - 1, bisect_left(self.index_keys, end))
        order = range(last, first - 1, -1) if reverse else range(first, last + 1)
        for i in order:
            blk = self.block(i, fill_cache=False)
            keys = blk.keys
            lo = 0 if start is None else bisect_left(keys, start)
            hi = len(keys) if end is None else bisect_left(keys, end + b"\x00")  # BUG: includes end
            if lo < hi:
                yield keys[lo:hi], blk.values(lo, hi)
