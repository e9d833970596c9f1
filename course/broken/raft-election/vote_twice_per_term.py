# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A voter that forgets its vote: it grants a second candidate a vote in the same term (two leaders)."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_vote_is_granted_at_most_once_per_term']


class RaftCore:
    def _handle_vote_request(self, msg: RequestVote) -> None:
        """Grant a vote (or pre-vote) if we can vote for this candidate and its log is up to date.

        We can vote if we already voted for it in this term, or have not voted and
        know no leader, or (pre-vote only) it asks about a term above ours. A real
        vote is recorded in ``voted_for``; the Ready contract persists it before
        the reply leaves.
        """
        can_vote = (
            self.voted_for == msg.candidate_id
            or self.leader_id is None  # BUG: forgets the vote already cast in this term
            or (msg.pre_vote and msg.term > self.term)
        )
        grant = can_vote and self.log.is_up_to_date(msg.last_log_index, msg.last_log_term)
        if grant and not msg.pre_vote:
            self.voted_for = msg.candidate_id
            self.election_elapsed = 0
        reply_term = msg.term if (grant and msg.pre_vote) else self.term
        self._send(RequestVoteResponse(reply_term, self.id, msg.candidate_id, grant, msg.pre_vote))
        self._trace("vote_granted" if grant else "vote_refused", candidate=msg.candidate_id, pre_vote=msg.pre_vote)
