# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A follower that keeps its conflicting entries (same index, other term) and skips the leader's: logs diverge."""

FILE = "kvstore/raft/log.py"
CAUGHT_BY = ['test_maybe_append_truncates_only_from_the_first_conflicting_entry', 'test_a_follower_replaces_a_conflicting_suffix_with_the_leaders_entries']


class RaftLog:
    def maybe_append(self, prev_log_index: int, prev_log_term: int, entries: tuple[Entry, ...]) -> int | None:
        """Follower side of AppendEntries (Raft paper, Figure 2, receiver steps 2-4)."""
        if self.term(prev_log_index) != prev_log_term:
            return None
        fresh = [e for e in entries if e.index > self.last_index()]  # BUG: a conflicting entry is kept
        self.append(fresh)
        return prev_log_index + len(entries)
