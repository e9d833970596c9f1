# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A memtable whose get reports a tombstone as "absent", so an older value in an SSTable shows through a delete."""

FILE = "kvstore/lsm/memtable.py"
CAUGHT_BY = ['test_a_delete_in_the_memtable_hides_an_older_value_in_a_table']


class Memtable:
    def get(self, key: bytes) -> bytes | Sentinel | None:
        """The newest value of ``key``: bytes, ``None`` for a tombstone, or MISSING if absent."""
        value = self._data.get(key)
        return MISSING if value is None else value  # BUG: a tombstone is not "absent"
