# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A follower that advances its commit index to the leader's even past the entries this append verified (Figure 2: min(leaderCommit, index of last new entry))."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_a_follower_commits_only_entries_the_leader_vouched_for']


class RaftCore:
    def _handle_append(self, msg: AppendEntries) -> None:
        """Follower side of AppendEntries: consistency check, append, advance commit, reply."""
        if msg.prev_log_index < self.log.commit_index:
            self._send(AppendEntriesResponse(self.term, self.id, msg.leader_id, True, self.log.commit_index,
                                             read_context=msg.read_context))
            return
        tracked, before = self._configs[-1][0], self.configuration
        last_new = self.log.maybe_append(msg.prev_log_index, msg.prev_log_term, msg.entries)
        if last_new is None:
            conflict_term, conflict_index = self.log.find_conflict_hint(msg.prev_log_index)
            self._send(AppendEntriesResponse(self.term, self.id, msg.leader_id, False, 0, conflict_term,
                                             conflict_index, msg.read_context))
            return
        if self.log.truncated_at:
            self.log.truncated_at = 0
        if msg.entries and (tracked > msg.prev_log_index or any(e.type == EntryType.CONFIG_CHANGE
                                                                 for e in msg.entries)):
            self._rebuild_configs()
        # BUG: our entries after last_new were not checked against the leader's log
        if self.log.commit_to(min(msg.leader_commit, self.log.last_index())):
            self._trace("commit_advanced", commit=self.log.commit_index)
        self._send(AppendEntriesResponse(self.term, self.id, msg.leader_id, True, last_new,
                                         read_context=msg.read_context))
