# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A new leader does not append an entry of its own term: entries of earlier terms can then never be committed (Figure 8) and reads stall."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_new_leader_appends_a_noop_of_its_term']


class RaftCore:
    def become_leader(self) -> None:
        """Take over: reset every member's progress and append an empty entry of our term (§5.4.2)."""
        invariant(self.role == Role.CANDIDATE, "only a candidate becomes leader")
        self.role = Role.LEADER
        self.leader_id = self.id
        self._reset_election_timer()
        last = self.log.last_index()
        self.progress = {m: Progress(next_index=last + 1) for m in self.configuration.members() | {self.id}}
        self.progress[self.id].match_index = self.log.stable_index
        self._trace("became_leader", votes=sorted(v for v, ok in self._votes.items() if ok), last_index=last)
        self._broadcast_heartbeat()  # BUG: no no-op of the new term
