"""Cluster-wide safety checks, run by the simulator after every event.

Each check keeps a small registry so that running it after every event costs
O(what changed), yet together they cover the whole cluster's history:

* **Election safety**: at most one leader per term (``leaders``: term -> node).
* **Log matching**: any two entries with the same index and term hold the same
  data and follow an entry of the same term (``entries``), which by induction
  means the logs are identical up to there.
* **Leader completeness**: a node that becomes leader holds every entry known
  committed (``committed``: index -> term), unless covered by its snapshot.
* **Committed entries never change** and **commit_index never decreases**
  while a node stays up.
* **State machine safety**: every node applies, at each index, the same entry
  (``applied``: index -> (term, data)), each index once and in order.
* **The Ready contract** (persistence rules): a granted vote or a candidate's
  own vote is durable before the message leaves, and an acknowledged append is
  durable before the acknowledgement leaves.
"""

from __future__ import annotations

from kvstore.raft.core import RaftCore, Ready, Role
from kvstore.raft.messages import AppendEntriesResponse, Entry, RequestVote, RequestVoteResponse
from kvstore.sim.disk import SimDisk


class SimViolation(Exception):
    """A cluster-wide safety or liveness rule was broken (always a bug in the core)."""


class ClusterChecker:
    """Registries and checks; one per simulation. Raises SimViolation on the first problem."""

    def __init__(self) -> None:
        self.leaders: dict[int, str] = {}
        self.entries: dict[tuple[int, int], tuple[bytes, int | None]] = {}
        self.committed: dict[int, int] = {}
        self.applied: dict[int, tuple[int, bytes]] = {}
        self._seen_commit: dict[str, int] = {}
        self._seen_role: dict[str, tuple[int, Role]] = {}
        self._applied_upto: dict[str, int] = {}
        self.checks_run = 0

    def node_restarted(self, node: str, applied_index: int) -> None:
        """Volatile state starts over: commit index may be lower after a restart."""
        self._seen_commit.pop(node, None)
        self._seen_role.pop(node, None)
        self._applied_upto[node] = applied_index

    def check_node(self, core: RaftCore) -> None:
        """Run the per-event checks for one node that just handled an event."""
        self.checks_run += 1
        core.check_invariants()
        node = core.id
        state = (core.term, core.role)
        if self._seen_role.get(node) != state:
            self._seen_role[node] = state
            if core.role == Role.LEADER:
                self._check_new_leader(core)
        commit = core.log.commit_index
        seen = self._seen_commit.get(node)
        if seen is not None and commit < seen:
            raise SimViolation(f"commit_index of {node} went down from {seen} to {commit}")
        start = max(seen or 0, core.log.snapshot_index)
        for i in range(start + 1, commit + 1):
            self._register_committed(node, i, core.log.term(i))
        self._seen_commit[node] = commit

    def _check_new_leader(self, core: RaftCore) -> None:
        other = self.leaders.setdefault(core.term, core.id)
        if other != core.id:
            raise SimViolation(f"election safety: two leaders in term {core.term}: {other} and {core.id}")
        for index, term in self.committed.items():
            if index <= core.log.snapshot_index:
                continue
            if core.log.term(index) != term:
                raise SimViolation(
                    f"leader completeness: new leader {core.id} (term {core.term}) lacks committed entry "
                    f"{index} of term {term} (has {core.log.term(index)})"
                )

    def _register_committed(self, node: str, index: int, term: int | None) -> None:
        if term is None:
            return
        known = self.committed.setdefault(index, term)
        if known != term:
            raise SimViolation(f"committed entry {index} changed: term {known} before, term {term} on {node}")

    def check_ready(self, core: RaftCore, rd: Ready, disk: SimDisk) -> None:
        """Log matching for the entries about to be stored, and the persistence rules for
        the messages about to be sent (called after the disk was synced)."""
        for e in rd.entries:
            self._check_entry(core, e)
        hs = disk.durable_hard_state()
        for msg in rd.messages:
            if isinstance(msg, RequestVoteResponse) and msg.granted and not msg.pre_vote:
                if hs.term != msg.term or hs.voted_for != msg.to:
                    raise SimViolation(
                        f"persistence: {core.id} granted its term-{msg.term} vote to {msg.to} before persisting it "
                        f"(disk has term {hs.term}, vote {hs.voted_for})"
                    )
            elif isinstance(msg, RequestVote) and not msg.pre_vote:
                if hs.term != msg.term or hs.voted_for != core.id:
                    raise SimViolation(f"persistence: {core.id} campaigned in term {msg.term} before persisting it")
            elif isinstance(msg, AppendEntriesResponse) and msg.success:
                m = msg.match_index
                if m > disk.durable_snapshot_index() and disk.durable_term(m) != core.log.term(m):
                    raise SimViolation(f"persistence: {core.id} acknowledged index {m} before persisting it")

    def _check_entry(self, core: RaftCore, e: Entry) -> None:
        prev = core.log.term(e.index - 1)
        key = (e.index, e.term)
        known = self.entries.get(key)
        if known is None:
            self.entries[key] = (e.data, prev)
            return
        if known[0] != e.data or (prev is not None and known[1] is not None and known[1] != prev):
            raise SimViolation(f"log matching: entry {e.index} of term {e.term} differs on {core.id}")

    def check_apply(self, node: str, e: Entry) -> None:
        """State machine safety: the same entry at each index on every node, applied in order."""
        upto = self._applied_upto.get(node, 0)
        if e.index != upto + 1:
            raise SimViolation(f"{node} applied index {e.index} after {upto}")
        self._applied_upto[node] = e.index
        known = self.applied.setdefault(e.index, (e.term, e.data))
        if known != (e.term, e.data):
            raise SimViolation(
                f"state machine safety: {node} applied term {e.term} at index {e.index}, another node applied "
                f"term {known[0]} there"
            )

    def snapshot_restored(self, node: str, index: int, term: int) -> None:
        """A node's state machine jumped to a snapshot: it covers exactly the committed prefix."""
        known = self.committed.get(index)
        if known is not None and known != term:
            raise SimViolation(f"{node} installed a snapshot at {index} of term {term}, committed term is {known}")
        self._applied_upto[node] = index
