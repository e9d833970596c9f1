# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A frozen memtable (being flushed) still accepts writes: they land after its keys were sorted and are never flushed."""

FILE = "kvstore/lsm/memtable.py"
CAUGHT_BY = ['test_memtable_reports_full_at_capacity']


class Memtable:
    def put(self, key: bytes, value: bytes | None) -> None:
        """Record ``value`` (or a tombstone if ``None``) as the newest version of ``key``."""
        with self._lock:  # BUG: no check that the memtable is still writable
            if key not in self._data:
                self._pending.append(key)
            self._data[key] = value
        self.approximate_bytes += len(key) + (len(value) if value is not None else 0) + ENTRY_OVERHEAD_BYTES
