"""The interfaces between the Raft core and the world around it.

The core does no I/O. Its caller owns a :class:`LogStorage` (durable Raft
state) and a :class:`StateMachine` (what committed commands are applied to),
and moves data between them and the core following the ``Ready`` contract
(see :mod:`kvstore.raft.core`). :func:`persist_ready` is that contract's
storage half, written once so every runtime persists in the same order.

Implementations: the simulator's ``SimDisk`` (``kvstore/sim/disk.py``, loses
un-fsynced writes on a simulated crash); the node runtime's durable log
(``kvstore/server``, later).
"""

from __future__ import annotations

from typing import Protocol

from kvstore.raft.core import Ready, RestoreState
from kvstore.raft.messages import Entry, HardState, Snapshot


class LogStorage(Protocol):
    """Durable Raft state of one node: hard state, snapshot and log tail.

    Contract:
        * Writes (``append``, ``set_hard_state``, ``save_snapshot``) may be
          buffered; only ``sync()`` makes them durable, all at once and in order.
          A crash loses everything written since the last ``sync()``.
        * ``append(entries)`` first deletes every stored entry with index
          ``>= entries[0].index``, then stores ``entries`` (contiguous).
        * ``save_snapshot(snap)`` stores the snapshot and deletes the stored
          entries up to ``snap.meta.index`` (all of them if the stored log does
          not contain that index with that term).
        * ``load()`` returns what survived: hard state, newest snapshot, and the
          contiguous entries after it.
    Raises:
        StorageError (or a subclass) on I/O failure; the outcome is then unknown.
    """

    def load(self) -> RestoreState:
        """Read back the durable state (for a restart)."""
        ...

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Store entries, replacing any stored suffix from ``entries[0].index``."""
        ...

    def set_hard_state(self, hard_state: HardState) -> None:
        """Store the hard state."""
        ...

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot and drop the log entries it covers."""
        ...

    def sync(self) -> None:
        """Make every write so far durable (fsync)."""
        ...


class StateMachine(Protocol):
    """The replicated application (the KV store). Deterministic: same entries, same state.

    Contract: ``apply`` is called once per committed entry, in index order,
    including NOOP and CONFIG_CHANGE entries (which it ignores but counts);
    ``restore`` replaces the whole state with a snapshot image produced by
    ``snapshot`` on any replica.
    """

    def apply(self, entry: Entry) -> object:
        """Apply one committed entry and return its result (for the waiting client)."""
        ...

    def snapshot(self) -> bytes:
        """An image of the whole state as of the last applied entry."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the state with a snapshot image."""
        ...


def persist_ready(storage: LogStorage, rd: Ready) -> None:
    """Persist the durable part of ``rd`` in the required order, then fsync once.

    Order: snapshot (it replaces the log), entries, hard state, ``sync()``. Only
    after this returns may ``rd.messages`` be sent.
    """
    if rd.snapshot is not None:
        storage.save_snapshot(rd.snapshot)
    if rd.entries:
        storage.append(rd.entries)
    if rd.hard_state is not None:
        storage.set_hard_state(rd.hard_state)
    if rd.snapshot is not None or rd.entries or rd.hard_state is not None:
        storage.sync()
