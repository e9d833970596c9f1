# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A node keeps ``voted_for`` when it moves to a higher term: once it has voted it never votes for anyone else again."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_a_new_term_frees_the_vote_of_the_old_one']


class RaftCore:
    def become_follower(self, term: int, leader_id: str | None) -> None:
        """Become a follower in ``term`` (clearing the vote if the term is new)."""
        was_leader = self.role == Role.LEADER
        invariant(term >= self.term, "a node's term never decreases")
        if term > self.term:
            self.term = term  # BUG: the vote of the old term is kept
        self.role = Role.FOLLOWER
        self.leader_id = leader_id
        self._reset_election_timer()
        self._votes = {}
        if was_leader:
            self._drop_leader_state()
        self._trace("became_follower", leader=leader_id)
