# ruff: noqa  (a patch fragment: names come from the file it patches)
"""Log compaction that also drops the first entry after the snapshot point: that entry is lost for lagging followers and restarts."""

FILE = "kvstore/raft/log.py"
CAUGHT_BY = ['test_snapshots_and_crashes_under_load_keep_every_replica_consistent']


class RaftLog:
    def compact(self, index: int, term: int) -> None:
        """Drop entries up to ``index`` (which the application snapshotted)."""
        invariant(self.snapshot_index < index <= self.applied_index, f"compact to {index} is within applied")
        if self.term(index) != term:
            invariant_failed(f"compact point {index} has term {term}")
        del self.entries[: index - self.snapshot_index + 1]  # BUG: off by one, entry index+1 goes too
        self.snapshot_index = index
        self.snapshot_term = term
