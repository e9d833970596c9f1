# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A pre-vote request is handled like a real vote request: the voter moves to the candidate's term, so a rejoining node disrupts the cluster."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_pre_vote_changes_no_terms']


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
                if in_lease and not msg.transfer:
                    self._trace("vote_ignored_in_lease", candidate=msg.candidate_id, their_term=msg.term)
                    return False
                # BUG: a pre-vote must not change the voter's term
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
