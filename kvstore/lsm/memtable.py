"""The memtable: the newest writes, in memory, until they are flushed to an SSTable.

Theory of operation. A memtable maps each key to its newest value, or to ``None`` — a
*tombstone* recording a delete that must hide older values in SSTables. Writes go to one
*active* memtable; when it holds ``capacity_bytes`` it is frozen (becomes immutable), a fresh
one takes writes, and a background flush turns the frozen one into a level-0 SSTable.

Why a dict plus a lazily sorted key list, not a skip list. Measured on this project's
machine (50,000 random 16-byte keys, CPython 3.11, per put):

=====================================  =========
structure                              put cost
=====================================  =========
dict + sort keys once when needed      0.34 µs
dict + ``bisect.insort`` into a list   3.0 µs
pure-Python skip list (p=1/4)          7.9 µs
=====================================  =========

In C a skip list is the natural choice (LevelDB, RocksDB); in Python every node is an object
and every comparison an interpreted step, so it loses by 20×. A hash map gives O(1) puts and
point reads; ordered iteration needs the keys sorted, which we do lazily: new keys collect in
``_pending`` and :meth:`sorted_keys` merges them into the sorted run (``list.sort`` on two
sorted runs is a linear merge in C). The sorted list is never changed in place once
published, so a reader that holds it keeps a stable snapshot of the key order.

Thread safety: one writer at a time (the engine's write lock) plus any number of readers;
the internal lock guards only the pending/sorted hand-over. Point reads of a batch applied
with :meth:`apply` are atomic (one ``dict.update`` under the GIL).
"""

from __future__ import annotations

import enum
import itertools
import threading

from kvstore.invariants import invariant

# Approximate per-entry overhead of a dict slot plus two bytes objects, counted in the size
# so that a memtable of many tiny entries still flushes at a sensible memory footprint.
ENTRY_OVERHEAD_BYTES = 64


class Sentinel(enum.Enum):
    """The type of :data:`MISSING`."""

    MISSING = 0


MISSING = Sentinel.MISSING
"""Returned by lookups when a key has no entry at all (``None`` means a tombstone)."""


class Memtable:
    """An in-memory ordered map ``key -> value | None`` (``None`` is a tombstone).

    Args:
        capacity_bytes: :meth:`is_full` becomes true once the approximate size reaches it.

    Invariants:
        every key in ``_sorted`` and ``_pending`` is in ``_data`` and appears once overall;
        ``_sorted`` is strictly increasing; ``approximate_bytes`` >= 0 and never decreases.
    """

    __slots__ = (
        "_data",
        "_frozen",
        "_lock",
        "_pending",
        "_sorted",
        "approximate_bytes",
        "capacity_bytes",
        "log_number",
    )

    def __init__(self, *, capacity_bytes: int, log_number: int = 0) -> None:
        invariant(capacity_bytes > 0, "memtable capacity is positive")
        self.log_number = log_number  # the WAL file holding this memtable's writes (0: none)
        self.capacity_bytes = capacity_bytes
        self.approximate_bytes = 0
        self._data: dict[bytes, bytes | None] = {}
        self._sorted: list[bytes] = []
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._frozen = False

    def put(self, key: bytes, value: bytes | None) -> None:
        """Record ``value`` (or a tombstone if ``None``) as the newest version of ``key``.

        A later put of the same key replaces the earlier one. Adds ``len(key) + len(value) +
        ENTRY_OVERHEAD_BYTES`` to ``approximate_bytes`` (overwrites are counted too: the size
        is an upper bound). REQUIRES: not frozen.

        Complexity: O(1) expected.
        """
        # BEGIN SOLUTION lsm-memtable-wal
        invariant(not self._frozen, "no writes to a frozen memtable")
        with self._lock:
            if key not in self._data:
                self._pending.append(key)
            self._data[key] = value
        self.approximate_bytes += len(key) + (len(value) if value is not None else 0) + ENTRY_OVERHEAD_BYTES
        # END SOLUTION

    def apply(self, ops: dict[bytes, bytes | None], payload_bytes: int) -> None:
        """Apply a whole batch (newest value per key) so that point readers see all or none of it.

        Args:
            ops: key -> value or ``None`` (tombstone); at most one entry per key.
            payload_bytes: the batch's key and value bytes, added to the size estimate.
        """
        invariant(not self._frozen, "no writes to a frozen memtable")
        data = self._data
        with self._lock:
            self._pending.extend([k for k in ops if k not in data])
            data.update(ops)
        self.approximate_bytes += payload_bytes + ENTRY_OVERHEAD_BYTES * len(ops)

    def get(self, key: bytes) -> bytes | Sentinel | None:
        """The newest value of ``key``: bytes, ``None`` for a tombstone, or MISSING if absent.

        Complexity: O(1) expected.
        """
        # BEGIN SOLUTION lsm-memtable-wal
        return self._data.get(key, MISSING)
        # END SOLUTION

    def sorted_keys(self) -> list[bytes]:
        """All keys in increasing order (tombstoned keys included).

        The returned list is a snapshot: it is never modified afterwards, so a reader may
        keep iterating it while writers continue. Keys added later appear only in later calls.

        Complexity: O(n) when keys were added since the last call (a merge of two sorted
        runs), O(1) otherwise.
        """
        # BEGIN SOLUTION lsm-memtable-wal
        with self._lock:
            if self._pending:
                pending = self._pending
                pending.sort()
                merged = self._sorted + pending
                merged.sort()  # two sorted runs: timsort merges them in linear time
                self._sorted = merged
                self._pending = []
            return self._sorted
        # END SOLUTION

    def value_of(self, key: bytes) -> bytes | None:
        """The stored value or tombstone of a key known to be present (for iteration)."""
        return self._data[key]

    def freeze(self) -> None:
        """Make the memtable immutable (it will be flushed); sorts its keys once."""
        self.sorted_keys()
        self._frozen = True

    @property
    def frozen(self) -> bool:
        """True once :meth:`freeze` was called."""
        return self._frozen

    def is_full(self) -> bool:
        """Whether the size estimate reached the capacity."""
        return self.approximate_bytes >= self.capacity_bytes

    def __len__(self) -> int:
        return len(self._data)

    def check_invariants(self) -> None:
        """Check the structure (O(n log n); for tests)."""
        with self._lock:
            s = self._sorted
            invariant(all(a < b for a, b in itertools.pairwise(s)), "sorted run is strictly increasing")
            invariant(len(s) + len(self._pending) == len(self._data), "each key is in exactly one run")
            invariant(set(s).isdisjoint(self._pending), "pending keys are not yet sorted")
            invariant(all(k in self._data for k in s), "sorted keys are stored keys")
            invariant(self.approximate_bytes >= 0, "size estimate is not negative")
