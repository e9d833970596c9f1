# ruff: noqa  (a patch fragment: names come from the file it patches)
"""The Figure 8 bug: a leader commits an entry of an earlier term by counting replicas (§5.4.2)."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_leader_does_not_commit_an_old_term_entry_by_counting_replicas']


class RaftCore:
    def maybe_commit(self) -> bool:
        """Advance ``commit_index`` to the highest index stored on a majority of voters,
        but only if that entry is of the current term (Figure 8, §5.4.2). Returns whether it moved."""
        matches = sorted((self.progress[v].match_index for v in self.configuration.voters if v in self.progress),
                         reverse=True)
        quorum = self.configuration.quorum()
        if len(matches) < quorum:
            return False
        candidate = matches[quorum - 1]
        if candidate <= self.log.commit_index:  # BUG: commits an old term's entry by counting replicas
            return False
        self.log.commit_to(candidate)
        self._after_commit()
        return True
