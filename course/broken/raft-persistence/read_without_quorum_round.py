# ruff: noqa  (a patch fragment: names come from the file it patches)
"""ReadIndex answered at once from the leader's commit index, with no heartbeat round: a deposed leader serves stale reads."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_a_deposed_leader_never_confirms_a_read']


class RaftCore:
    def _queue_read(self, context: bytes) -> None:
        """Batch a read behind the next quorum round; start a round if none is in flight."""
        self._read_states.append(ReadState(context, self.log.commit_index))  # BUG: leadership not confirmed
