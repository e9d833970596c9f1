"""A simulated disk for one node's Raft state: writes are lost unless fsynced.

Theory of operation. ``SimDisk`` implements :class:`kvstore.raft.LogStorage`.
Every write is queued in a volatile buffer (the OS page cache); ``sync()``
applies the buffer to the durable image in order (fsync); ``crash()`` throws
the buffer away and counts what was lost, so a test can prove the fault
happened. ``load()`` reads only the durable image, as a restarted process would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvstore.invariants import invariant
from kvstore.raft.core import RestoreState
from kvstore.raft.messages import Entry, HardState, Snapshot


@dataclass(slots=True)
class _Image:
    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)

    def snapshot_index(self) -> int:
        return self.snapshot.meta.index if self.snapshot else 0

    def last_index(self) -> int:
        return self.snapshot_index() + len(self.entries)

    def term(self, index: int) -> int | None:
        if self.snapshot is not None and index == self.snapshot.meta.index:
            return self.snapshot.meta.term
        if index == 0:
            return 0
        first = self.snapshot_index() + 1
        if index < first or index > self.last_index():
            return None
        return self.entries[index - first].term


_Op = tuple[Entry, ...] | HardState | Snapshot


class SimDisk:
    """Durable image plus a volatile write buffer. See the module docstring."""

    def __init__(self) -> None:
        self._durable = _Image()
        self._buffer: list[_Op] = []
        self.syncs = 0
        self.writes_lost = 0

    # -- LogStorage --------------------------------------------------------

    def load(self) -> RestoreState:
        """The durable state, as a restarted node sees it."""
        d = self._durable
        return RestoreState(hard_state=d.hard_state, snapshot=d.snapshot, entries=tuple(d.entries))

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Queue: replace the stored suffix from ``entries[0].index`` with ``entries``."""
        if entries:
            self._buffer.append(entries)

    def set_hard_state(self, hard_state: HardState) -> None:
        """Queue a hard-state write."""
        self._buffer.append(hard_state)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Queue a snapshot write (drops the entries it covers)."""
        self._buffer.append(snapshot)

    def sync(self) -> None:
        """fsync: apply every queued write to the durable image, in order."""
        for op in self._buffer:
            if isinstance(op, HardState):
                self._durable.hard_state = op
            elif isinstance(op, Snapshot):
                self._apply_snapshot(op)
            else:
                self._apply_append(op)
        self._buffer.clear()
        self.syncs += 1

    # -- simulation --------------------------------------------------------

    def crash(self) -> int:
        """Lose every write not yet synced; returns how many were lost."""
        lost = len(self._buffer)
        self.writes_lost += lost
        self._buffer.clear()
        return lost

    def durable_hard_state(self) -> HardState:
        """The hard state a restart would see."""
        return self._durable.hard_state

    def durable_term(self, index: int) -> int | None:
        """Term of the durable entry at ``index`` (None if absent or compacted)."""
        return self._durable.term(index)

    def durable_snapshot_index(self) -> int:
        """Index covered by the durable snapshot (0 if none)."""
        return self._durable.snapshot_index()

    def _apply_append(self, entries: tuple[Entry, ...]) -> None:
        d = self._durable
        first = entries[0].index
        invariant(first > d.snapshot_index(), "no append below the durable snapshot")
        invariant(first <= d.last_index() + 1, "appends leave no gap on disk")
        del d.entries[first - d.snapshot_index() - 1 :]
        d.entries.extend(entries)

    def _apply_snapshot(self, snap: Snapshot) -> None:
        d = self._durable
        meta = snap.meta
        if d.term(meta.index) == meta.term and meta.index <= d.last_index():
            del d.entries[: meta.index - d.snapshot_index()]
        else:
            d.entries = []
        d.snapshot = snap
