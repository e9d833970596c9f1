# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A candidate that counts every vote reply as a vote, granted or not: it becomes leader without a majority."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_refused_votes_do_not_make_a_leader']


class RaftCore:
    def _step_candidate(self, msg: Message) -> None:
        """Count votes; a leader of our term turns us back into a follower."""
        if isinstance(msg, RequestVoteResponse):
            pre = self.role == Role.PRE_CANDIDATE
            if msg.pre_vote != pre or (pre and msg.granted and msg.term != self.term + 1):
                return
            if msg.from_ not in self.configuration.voters:
                return
            self._votes[msg.from_] = True  # BUG: a refusal is not a vote
            granted = [v for v, ok in self._votes.items() if ok]
            if self._voter_quorum_reached(granted):
                if pre:
                    self.become_candidate()
                else:
                    self.become_leader()
        elif isinstance(msg, (AppendEntries, InstallSnapshot)):
            self.become_follower(self.term, msg.leader_id)
            self._step_follower(msg)
