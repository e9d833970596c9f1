"""The in-memory Raft log of one node: a snapshot point followed by entries.

Theory of operation. The core keeps its whole log tail in memory::

      snapshot_index      applied_index   commit_index   stable_index   last_index
    ... compacted ] [ e e e e e e e e e e e e e e e e e e e e e e e e e e e ]

* Entries up to ``snapshot_index`` were compacted into a snapshot; only the
  term of the snapshot's last entry (``snapshot_term``) is remembered.
* ``stable_index``: entries up to here have been handed to storage in a
  ``Ready`` and acknowledged with ``advance()``; later ones are *unstable*
  and go into the next ``Ready``. A truncation pulls ``stable_index`` back.
* ``commit_index``: known committed (replicated on a majority, Figure 8 rule).
* ``applied_index``: handed to the state machine.

Invariants (``check_invariants``)::

    snapshot_index <= applied_index <= commit_index <= last_index
    entries are contiguous from snapshot_index + 1 and terms never decrease

The log does no I/O: storage is the runtime's business (see ``storage.py``).
"""

from __future__ import annotations

from kvstore.invariants import invariant, invariant_failed
from kvstore.raft.messages import Entry, Snapshot


class RaftLog:
    """A snapshot point plus the entries after it. Not thread-safe (nothing in the core is)."""

    def __init__(self, *, snapshot_index: int = 0, snapshot_term: int = 0, entries: list[Entry] | None = None) -> None:
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        self.entries: list[Entry] = list(entries or [])
        self.commit_index = snapshot_index
        self.applied_index = snapshot_index
        self.stable_index = self.last_index()
        self._checked_upto = snapshot_index  # entries up to here passed check_invariants
        self.truncated_at = 0  # first index removed by the last truncation (0: none); the core traces and clears it

    # -- reading ----------------------------------------------------------

    def last_index(self) -> int:
        """Index of the last entry (or of the snapshot point when the tail is empty)."""
        return self.snapshot_index + len(self.entries)

    def last_term(self) -> int:
        """Term of the last entry (or of the snapshot point)."""
        return self.entries[-1].term if self.entries else self.snapshot_term

    def first_index(self) -> int:
        """Index of the first entry still held (``snapshot_index + 1``)."""
        return self.snapshot_index + 1

    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``; ``None`` if compacted away or past the end.

        ``term(snapshot_index)`` is ``snapshot_term``, so ``term(0)`` is 0 until the
        first compaction (the empty prefix matches everyone).
        """
        if index == self.snapshot_index:
            return self.snapshot_term
        if index < self.snapshot_index or index > self.last_index():
            return None
        return self.entries[index - self.snapshot_index - 1].term

    def entry(self, index: int) -> Entry:
        """The entry at ``index``. Requires ``first_index() <= index <= last_index()``."""
        invariant(self.first_index() <= index <= self.last_index(), f"entry {index} is in the log")
        return self.entries[index - self.snapshot_index - 1]

    def slice(self, lo: int, hi: int, *, max_bytes: int | None = None) -> list[Entry]:
        """Entries ``lo <= index < hi``, cut at ``max_bytes`` but always at least one.

        Requires ``lo >= first_index()``. Complexity: O(number returned).
        """
        invariant(lo >= self.first_index(), f"slice from {lo} is not compacted")
        hi = min(hi, self.last_index() + 1)
        out: list[Entry] = []
        size = 0
        for i in range(lo, hi):
            e = self.entries[i - self.snapshot_index - 1]
            size += e.size_bytes()
            if out and max_bytes is not None and size > max_bytes:
                break
            out.append(e)
        return out

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Election restriction (Raft paper §5.4.1): is a log ending at (last_index, last_term)
        at least as up to date as ours? Compare last terms, then lengths."""
        # BEGIN SOLUTION raft-election
        if last_term != self.last_term():
            return last_term > self.last_term()
        return last_index >= self.last_index()
        # END SOLUTION

    def find_conflict_hint(self, prev_log_index: int) -> tuple[int, int]:
        """Fast back-off hint for a rejected append at ``prev_log_index``.

        Returns:
            ``(conflict_term, conflict_index)``: ``(0, last_index + 1)`` if the log is
            shorter than ``prev_log_index``; otherwise the term of our entry there and
            the first index we hold with that term.
        """
        # BEGIN SOLUTION raft-replication
        if prev_log_index > self.last_index():
            return 0, self.last_index() + 1
        conflict_term = self.term(prev_log_index)
        if conflict_term is None:  # compacted: we cannot say more than "after the snapshot"
            return 0, self.first_index()
        index = prev_log_index
        while index - 1 > self.snapshot_index and self.term(index - 1) == conflict_term:
            index -= 1
        return conflict_term, index
        # END SOLUTION

    def last_index_of_term(self, term: int) -> int:
        """The last index holding an entry of ``term``, or 0 if none (leader side of back-off)."""
        for e in reversed(self.entries):
            if e.term == term:
                return e.index
            if e.term < term:
                break
        return 0

    # -- writing ----------------------------------------------------------

    def append(self, entries: list[Entry]) -> None:
        """Append entries at the end (leader proposals). Requires contiguity."""
        for e in entries:
            invariant(e.index == self.last_index() + 1, "appended entries are contiguous")
            invariant(e.term >= self.last_term(), "terms in the log never decrease")
            self.entries.append(e)

    def truncate_from(self, index: int) -> None:
        """Delete entries at ``index`` and after. Never below the commit point."""
        invariant(index > self.commit_index, f"never truncate committed entries (at {index} <= {self.commit_index})")
        del self.entries[index - self.snapshot_index - 1 :]
        self.stable_index = min(self.stable_index, index - 1)
        self._checked_upto = min(self._checked_upto, index - 1)
        self.truncated_at = index

    def maybe_append(self, prev_log_index: int, prev_log_term: int, entries: tuple[Entry, ...]) -> int | None:
        """Follower side of AppendEntries (Raft paper, Figure 2, receiver steps 2-4).

        If our entry at ``prev_log_index`` has ``prev_log_term``, delete any
        existing entry that conflicts with a new one (same index, other term) and
        everything after it, then append the new entries not already present.

        Returns:
            The index of the last new entry (``prev_log_index + len(entries)``) on
            success; ``None`` if the consistency check failed (log unchanged).
        Requires: ``prev_log_index >= commit_index`` (the caller answers older
        appends from the commit point).
        """
        # BEGIN SOLUTION raft-replication
        if self.term(prev_log_index) != prev_log_term:
            return None
        for i, e in enumerate(entries):
            existing = self.term(e.index)
            if existing == e.term:
                continue
            if existing is not None:
                self.truncate_from(e.index)
            self.append(list(entries[i:]))
            break
        return prev_log_index + len(entries)
        # END SOLUTION

    def commit_to(self, index: int) -> bool:
        """Raise ``commit_index`` to ``index`` (never lower it). Returns whether it moved."""
        if index <= self.commit_index:
            return False
        invariant(index <= self.last_index(), f"commit {index} beyond last index {self.last_index()}")
        self.commit_index = index
        return True

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log with a snapshot point (follower installs a snapshot).

        Afterwards the log is empty after ``snapshot.meta.index``; the snapshot
        point becomes the snapshot, commit, applied and stable index (the caller
        persists the snapshot through the next Ready). Requires the snapshot not
        to be behind the commit index.
        """
        # BEGIN SOLUTION raft-persistence
        meta = snapshot.meta
        invariant(meta.index >= self.commit_index, "a restored snapshot is not behind the commit point")
        self.snapshot_index = meta.index
        self.snapshot_term = meta.term
        self.entries = []
        self.commit_index = meta.index
        self.applied_index = meta.index
        self.stable_index = meta.index
        # END SOLUTION
        self._checked_upto = meta.index

    def compact(self, index: int, term: int) -> None:
        """Drop entries up to ``index`` (which the application snapshotted).

        Afterwards ``snapshot_index == index`` and ``snapshot_term == term``; the
        entries after ``index`` stay. Requires ``snapshot_index < index <=
        applied_index`` and ``term(index) == term``.
        """
        # BEGIN SOLUTION raft-persistence
        invariant(self.snapshot_index < index <= self.applied_index, f"compact to {index} is within applied")
        if self.term(index) != term:
            invariant_failed(f"compact point {index} has term {term}")
        del self.entries[: index - self.snapshot_index]
        self.snapshot_index = index
        self.snapshot_term = term
        # END SOLUTION

    def check_invariants(self) -> None:
        """Check the ordering of the indexes and the shape of the tail."""
        invariant(self.snapshot_index <= self.applied_index, "snapshot_index <= applied_index")
        invariant(self.applied_index <= self.commit_index, "applied_index <= commit_index")
        invariant(self.commit_index <= self.last_index(), "commit_index <= last_index")
        invariant(self.snapshot_index <= self.stable_index <= self.last_index(), "stable_index within the log")
        # Entries are immutable once appended, so each is checked once (amortized O(1) per call).
        start = max(self._checked_upto, self.snapshot_index)
        prev_term = self.term(start)
        invariant(prev_term is not None, "the checked prefix is still in the log")
        for e in self.entries[start - self.snapshot_index :]:
            invariant(e.index == start + 1, "entries are contiguous")
            invariant(prev_term is not None and e.term >= prev_term, "terms never decrease along the log")
            prev_term, start = e.term, e.index
        self._checked_upto = start
