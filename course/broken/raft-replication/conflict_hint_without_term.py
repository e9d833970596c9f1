# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A follower's rejection hint never names the conflicting term: the leader backs off one entry per round trip (a long divergent log takes forever to repair)."""

FILE = "kvstore/raft/log.py"
CAUGHT_BY = ['test_conflict_hint_lets_the_leader_skip_a_whole_term_in_one_step']


class RaftLog:
    def find_conflict_hint(self, prev_log_index: int) -> tuple[int, int]:
        """Fast back-off hint for a rejected append at ``prev_log_index``."""
        if prev_log_index > self.last_index():
            return 0, self.last_index() + 1
        return 0, prev_log_index  # BUG: should name the conflicting term and its first index
