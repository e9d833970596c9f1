# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A follower that heard from its leader moments ago still grants votes for a higher term: a partitioned node deposes a healthy leader."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_follower_in_lease_ignores_vote_requests_from_a_higher_term']


class RaftCore:
    def _step_term(self, msg: Message) -> bool:
        """Apply the term rules common to all roles. Returns whether to process ``msg`` further."""
        if msg.term > self.term:
            if isinstance(msg, RequestVote):
                in_lease = (
                    self.cfg.check_quorum
                    and self.leader_id is not None
                    and self.election_elapsed < self.cfg.election_timeout_ticks
                )
                if False:  # BUG: the lease (check-quorum) must hold off vote requests
                    self._trace("vote_ignored_in_lease", candidate=msg.candidate_id, their_term=msg.term)
                    return False
                if msg.pre_vote:
                    return True
            if isinstance(msg, RequestVoteResponse) and msg.pre_vote and msg.granted:
                return True
            leader = msg.leader_id if isinstance(msg, (AppendEntries, InstallSnapshot, TimeoutNow)) else None
            self.become_follower(msg.term, leader)
            return True
        if msg.term < self.term:
            if isinstance(msg, AppendEntries):
                self._send(AppendEntriesResponse(self.term, self.id, msg.leader_id, success=False))
            elif isinstance(msg, InstallSnapshot):
                self._send(InstallSnapshotResponse(self.term, self.id, msg.leader_id, success=False))
            elif isinstance(msg, RequestVote):
                self._send(RequestVoteResponse(self.term, self.id, msg.candidate_id, False, msg.pre_vote))
            return False
        return True
