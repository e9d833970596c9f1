"""Deliberately broken variants of :class:`RaftCore`, for proving the tests catch bugs.

Each class breaks exactly one rule of the protocol. The test suite
(``tests/sim/test_planted_bugs.py``) runs a named scenario or a seed sweep
against each variant and asserts that a violation is reported, so a test that
has silently stopped checking anything cannot go unnoticed. Never use these
outside tests.
"""

from __future__ import annotations

from kvstore.raft.core import RaftCore, ReadState, Role
from kvstore.raft.messages import HardState


class ForgetfulVoterCore(RaftCore):
    """Persists its term but not its vote: after a restart it may vote twice in one term."""

    def _hard_state(self) -> HardState:
        return HardState(self.term, None, self.log.commit_index)


class CountingCommitCore(RaftCore):
    """Commits any entry stored on a majority, even one of an older term (breaks Figure 8)."""

    def maybe_commit(self) -> bool:
        matches = sorted((self.progress[v].match_index for v in self.configuration.voters if v in self.progress),
                         reverse=True)
        quorum = self.configuration.quorum()
        if len(matches) < quorum or matches[quorum - 1] <= self.log.commit_index:
            return False
        self.log.commit_to(matches[quorum - 1])
        self._after_commit()
        return True


class LeaseLessReadCore(RaftCore):
    """Serves reads at once from its commit index, without confirming leadership with a quorum."""

    def read_index(self, context: bytes) -> None:
        if self.role != Role.LEADER:
            super().read_index(context)
            return
        self._read_states.append(ReadState(context, self.log.commit_index))


class PromiscuousVoterCore(RaftCore):
    """Ignores the election restriction (§5.4.1): votes for candidates with stale logs."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.log.is_up_to_date = lambda last_index, last_term: True  # type: ignore[method-assign]


PLANTED_VARIANTS: dict[str, type[RaftCore]] = {
    "forgetful-voter": ForgetfulVoterCore,
    "counting-commit": CountingCommitCore,
    "lease-less-read": LeaseLessReadCore,
    "promiscuous-voter": PromiscuousVoterCore,
}
