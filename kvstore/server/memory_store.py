"""TemporaryMemoryStore: an in-memory ordered map standing in for the real store.

**Temporary.** This exists so the wire protocol, the node process and the
``kv`` CLI can be exercised end to end before the LSM engine (kvstore.lsm)
and Raft (kvstore.raft) are wired in. It keeps nothing across restarts and
replicates nothing; a node serving it reports the role ``standalone`` and the
engine ``temporary-memory``. The replicated node replaces it.

Keys are kept in a sorted list beside a dict, so point operations are O(1)
(plus O(n) list insertion for new keys) and scans are O(log n + k).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from kvstore.invariants import invariant
from kvstore.types import CasResult


class TemporaryMemoryStore:
    """An ordered bytes -> bytes map with the operations of the KV service."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or None."""
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> bytes | None:
        """Store ``value``; return the value it replaced, or None."""
        previous = self._data.get(key)
        if previous is None:
            bisect.insort(self._keys, key)
        self._data[key] = value
        return previous

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; return whether it existed."""
        if key not in self._data:
            return False
        del self._data[key]
        i = bisect.bisect_left(self._keys, key)
        del self._keys[i]
        return True

    def cas(self, key: bytes, expected: bytes | None, value: bytes) -> CasResult:
        """Store ``value`` if the current value equals ``expected`` (None: absent)."""
        current = self._data.get(key)
        if current != expected:
            return CasResult(False, current)
        self.put(key, value)
        return CasResult(True, current)

    def scan(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with ``start <= key < end`` in key order (descending if ``reverse``)."""
        lo = 0 if start is None else bisect.bisect_left(self._keys, start)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end)
        keys = self._keys[lo:hi]
        if reverse:
            keys.reverse()
        if limit is not None:
            keys = keys[:limit]
        for k in keys:
            yield k, self._data[k]

    def check_invariants(self) -> None:
        """The sorted key list and the dict hold the same keys, in order."""
        invariant(len(self._keys) == len(self._data), "key list and dict have the same size")
        invariant(all(a < b for a, b in zip(self._keys, self._keys[1:], strict=False)), "keys strictly ascending")
        invariant(all(k in self._data for k in self._keys), "every listed key is stored")
