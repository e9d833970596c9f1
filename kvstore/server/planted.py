"""Planted bugs: testing-only switches that break the node on purpose.

They exist to prove that the fault harness (jepsen-lite) and the test suite
catch real mistakes: for each bug, a bounded run with a suitable fault must
report a violation, and the same run without the bug must pass. A node runs
with one only if its config says both::

    [testing]
    allow_planted_bugs = true
    planted_bug = "no-dedup"

Never in production. Each bug breaks exactly one rule.
"""

from __future__ import annotations

from typing import Any

from kvstore.raft.core import RaftCore
from kvstore.raft.messages import Entry
from kvstore.raft.planted import ForgetfulVoterCore

PLANTED_BUGS: dict[str, str] = {
    "stale-local-reads": "the leader serves reads from its local state without confirming leadership (no ReadIndex)",
    "follower-reads": "every node, leader or not, answers reads from its local state",
    "ack-before-commit": "a write is acknowledged as soon as the leader appends it, before it commits",
    "ack-before-fsync": "the Raft log is never fsynced, yet writes are acknowledged",
    "forget-vote": "the vote is not persisted, so a restarted node may vote twice in one term",
    "no-dedup": "retried commands are applied again instead of being answered from the session table",
    "skip-prev-term-check": "a follower accepts appends without checking the term of the previous entry",
    "early-tombstone-drop": "compaction drops tombstones before the bottom level, resurrecting older values",
}


class PrevTermBlindCore(RaftCore):
    """Accepts AppendEntries whenever it holds *some* entry at prev_log_index, whatever its term."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        log = self.log
        original = log.maybe_append

        def maybe_append(prev_log_index: int, prev_log_term: int, entries: tuple[Entry, ...]) -> int | None:
            actual = log.term(prev_log_index)
            return original(prev_log_index, prev_log_term if actual is None else actual, entries)

        log.maybe_append = maybe_append  # type: ignore[method-assign]


def core_class(bug: str) -> type[RaftCore]:
    """The Raft core to run for ``bug`` (the real one for bugs that live elsewhere)."""
    if bug == "forget-vote":
        return ForgetfulVoterCore
    if bug == "skip-prev-term-check":
        return PrevTermBlindCore
    return RaftCore


def plant_engine_bug(bug: str) -> None:
    """Process-wide engine bugs (the node process runs one engine)."""
    if bug == "early-tombstone-drop":
        import kvstore.lsm.engine as engine_module

        engine_module.tombstone_dropper = lambda version, compaction: (lambda key: True)  # type: ignore[attr-defined,assignment]
