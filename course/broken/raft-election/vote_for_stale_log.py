# ruff: noqa  (a patch fragment: names come from the file it patches)
"""The election restriction compares log lengths only: a voter elects a candidate whose log ends in an older term."""

FILE = "kvstore/raft/log.py"
CAUGHT_BY = ['test_voter_refuses_a_candidate_whose_log_is_less_up_to_date', 'test_a_longer_log_of_an_older_term_does_not_win_a_vote']


class RaftLog:
    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Election restriction (Raft paper §5.4.1)."""
        return last_index >= self.last_index()  # BUG: the last term decides first
