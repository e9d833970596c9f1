# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A memtable put that keeps the first value of a key: an overwrite before the next flush is lost."""

FILE = "kvstore/lsm/memtable.py"
CAUGHT_BY = ['test_overwrites_and_deletes_before_a_flush_keep_the_newest_version']


class Memtable:
    def put(self, key: bytes, value: bytes | None) -> None:
        """Record ``value`` (or a tombstone if ``None``) as the newest version of ``key``."""
        invariant(not self._frozen, "no writes to a frozen memtable")
        with self._lock:
            if key not in self._data:
                self._pending.append(key)
                self._data[key] = value  # BUG: a later put of the same key is ignored
        self.approximate_bytes += len(key) + (len(value) if value is not None else 0) + ENTRY_OVERHEAD_BYTES
