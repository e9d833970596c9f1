# ruff: noqa  (a patch fragment: names come from the file it patches)
"""sorted_keys merges new keys into the list it handed out before: a reader iterating a snapshot sees it change."""

FILE = "kvstore/lsm/memtable.py"
CAUGHT_BY = ['test_a_sorted_keys_snapshot_never_changes_while_writers_add_keys']


class Memtable:
    def sorted_keys(self) -> list[bytes]:
        """All keys in increasing order (tombstoned keys included)."""
        with self._lock:
            if self._pending:
                self._sorted.extend(self._pending)  # BUG: mutates the list earlier callers still hold
                self._sorted.sort()
                self._pending = []
            return self._sorted
