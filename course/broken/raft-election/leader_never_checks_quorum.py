# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A leader that never checks it still hears from a majority: cut off from the cluster, it keeps believing it leads."""

FILE = "kvstore/raft/core.py"
CAUGHT_BY = ['test_partitioned_leader_steps_down_by_check_quorum']


class RaftCore:
    def _tick_leader(self) -> None:
        """Leader: heartbeat every interval; every election timeout, check quorum and re-probe stalled followers."""
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_timeout_ticks:
            self.election_elapsed = 0
            if False:  # BUG: check-quorum never runs
                self._trace("check_quorum_failed")
                self.become_follower(self.term, None)
                return
            self._recover_stalled_followers()
        if self.heartbeat_elapsed >= self.cfg.heartbeat_interval_ticks:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat()
        if self.transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.cfg.election_timeout_ticks:
                self._trace("transfer_aborted", to=self.transferee)
                self.transferee = None
