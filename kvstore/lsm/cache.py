"""A bounded LRU cache of decoded SSTable blocks, shared by all tables of an engine.

Entries are charged by their size in bytes (the block's encoded size plus a fixed overhead
for the decoded key list); inserting past ``capacity_bytes`` evicts the least recently used
blocks. Thread-safe: inserts and evictions hold one lock around an ``OrderedDict``; a lookup
takes no lock (each ``OrderedDict`` method is one atomic step under the interpreter lock, and
an entry evicted between the lookup and its move to the front is simply not moved). Every
operation is O(1). The hit and miss counters are statistics: increments racing between
reader threads may be lost.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from kvstore.invariants import invariant

V = TypeVar("V")

ADMISSION_WINDOW_BYTES_PER_KEY = 4096  # the doorkeeper window: one remembered key per 4 KiB of capacity


class BlockCache(Generic[V]):
    """LRU map ``(file_number, block_offset) -> decoded block`` bounded by total charge.

    Invariants: ``used_bytes`` equals the sum of the charges of the cached entries and is at
    most ``capacity_bytes`` after every insert (a single entry larger than the whole cache is
    not cached).
    """

    def __init__(self, *, capacity_bytes: int) -> None:
        invariant(capacity_bytes >= 0, "cache capacity is not negative")
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        self.hits = 0
        self.misses = 0
        self._map: OrderedDict[tuple[int, int], tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._seen: set[tuple[int, int]] = set()  # keys refused once by admit(), in the current window
        self._seen_limit = max(64, capacity_bytes // ADMISSION_WINDOW_BYTES_PER_KEY)

    def get(self, key: tuple[int, int]) -> V | None:
        """The cached value (marking it most recently used), or None."""
        entry = self._map.get(key)
        if entry is None:
            self.misses += 1
            return None
        try:  # not contextlib.suppress: this is the hot path of every cached read
            self._map.move_to_end(key)
        except KeyError:  # evicted by another thread just now
            return entry[0]
        self.hits += 1
        return entry[0]

    def admit(self, key: tuple[int, int]) -> bool:
        """Whether a value just missed should be inserted: only on its second miss in a window.

        A "doorkeeper" (as in TinyLFU): the first miss of a key only records it in a set, so a
        block read once and never again — most blocks under uniformly random reads of a large
        table set — neither costs an insert nor evicts a block that is read often. The set
        holds at most about as many keys as the cache holds blocks, and is cleared when full
        (a new window). Thread-safe: set operations are atomic; a race only admits or refuses
        one extra key.
        """
        seen = self._seen
        if key in seen:
            seen.discard(key)
            return True
        if len(seen) >= self._seen_limit:
            seen.clear()
        seen.add(key)
        return False

    def put(self, key: tuple[int, int], value: V, charge_bytes: int) -> None:
        """Insert ``value`` charged ``charge_bytes``; evict LRU entries to stay within capacity."""
        if charge_bytes > self.capacity_bytes:
            return
        with self._lock:
            old = self._map.pop(key, None)
            if old is not None:
                self.used_bytes -= old[1]
            self._map[key] = (value, charge_bytes)
            self.used_bytes += charge_bytes
            while self.used_bytes > self.capacity_bytes:
                _, (_, charge) = self._map.popitem(last=False)
                self.used_bytes -= charge

    def evict_file(self, file_number: int) -> None:
        """Drop every block of one file (called when the file becomes obsolete)."""
        with self._lock:
            for key in [k for k in self._map if k[0] == file_number]:
                self.used_bytes -= self._map.pop(key)[1]

    def __len__(self) -> int:
        return len(self._map)

    def check_invariants(self) -> None:
        """Charges add up and stay within capacity."""
        with self._lock:
            invariant(self.used_bytes == sum(c for _, c in self._map.values()), "used_bytes is the sum of charges")
            invariant(self.used_bytes <= self.capacity_bytes, "cache stays within capacity")
