"""The Raft consensus core: a pure state machine with no I/O (sans-I/O).

Theory of operation
-------------------
``RaftCore`` is driven entirely by its caller (the simulator, or the gRPC
runtime in ``kvstore/server``)::

    inputs                                   output
    ------                                   ------
    tick()                 time passes       ready() -> Ready   what to do now
    step(message)          a peer spoke      advance(ready)     "done it"
    propose(data)          a client wrote
    read_index(context)    a client reads
    transfer_leadership(to), add_learner(id), promote_learner(id), remove_member(id)

The caller loop is::

    while True:
        feed inputs (tick / step / propose / ...)
        if core.has_ready():
            rd = core.ready()
            storage: install rd.snapshot, append rd.entries, save rd.hard_state, fsync
            network: send rd.messages                     # only after the fsync
            state machine: restore rd.snapshot, apply rd.committed_entries in order
            serve rd.read_states once applied >= their index; fail rd.rejected_reads
            core.advance(rd)

**The Ready contract.** (1) Persist before sending: a granted vote and an
append acknowledgement in ``rd.messages`` are only true once ``rd.hard_state``
and ``rd.entries`` are durable. (2) Apply only ``rd.committed_entries``, in
order, exactly once. (3) No other input between ``ready()`` and ``advance()``
(checked: breaking it raises ``InvariantViolation``). The simulator checks (1)
against its simulated disk after every ``Ready``.

Algorithm (Raft paper and Ongaro's thesis; design after etcd-io/raft):

* Election: randomized timeouts in ``[T, 2T)`` ticks; **pre-vote** (thesis
  §9.6: a would-be candidate first asks "would you vote for me at term+1?",
  so a node rejoining from a partition cannot bump everyone's term);
  **check-quorum** (a leader that has not heard from a majority for an election
  timeout steps down; a follower that heard from a live leader within the
  timeout ignores vote requests: the "leader lease" that makes pre-vote safe).
* Replication: per-follower ``Progress`` in one of three states: PROBE (one
  append in flight, find the match point using the conflict hint), REPLICATE
  (pipelined, at most ``max_inflight_appends`` in flight, each at most
  ``max_append_bytes``), SNAPSHOT (waiting for an install-snapshot to land).
* Commit: only an entry of the current term commits by counting replicas
  (Figure 8); a new leader appends a NOOP entry so earlier entries commit.
* Snapshots: the application calls ``compact()``; followers whose next entry
  was compacted away receive ``InstallSnapshot``.
* Reads: ReadIndex (thesis §6.4). Reads queue behind one heartbeat round at a
  time, so many reads share one quorum confirmation (batching).
* Membership: **single-server changes** (thesis §4.1), not joint consensus:
  each change adds or removes one voter, so any two majorities of the old and
  new configurations overlap and no joint phase is needed. That is far less
  code for students to read and is what most production systems use day to
  day. A configuration takes effect as soon as it is appended (committed or
  not); at most one change is uncommitted at a time, and a leader proposes a
  change only after committing an entry of its own term (the fix for the bug
  Ongaro reported in 2015). New nodes join as learners (they receive the log
  but do not vote) and are promoted once caught up.

Every state transition emits a ``TraceEvent`` through the injected tracer. The
core reads no clock: trace time comes from an injected ``clock`` callable (the
simulator passes its virtual clock), and randomness from an injected
``random.Random``.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kvstore import limits
from kvstore.errors import InvalidArgument, LimitExceeded, NotLeaderError, Unavailable
from kvstore.invariants import invariant, invariant_failed
from kvstore.raft.log import RaftLog
from kvstore.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Configuration,
    Entry,
    EntryType,
    HardState,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)
from kvstore.trace import NULL_TRACER, TraceEvent, Tracer


class RandomSource(Protocol):
    """The core's only randomness, injected (``random.Random(seed)`` satisfies it).

    Typed structurally so that the core never imports the ``random`` module and
    cannot reach the global generator by accident.
    """

    def randrange(self, start: int, stop: int | None = ..., step: int = ...) -> int:
        """A random integer in ``range(start)`` (or ``range(start, stop, step)``)."""
        ...


class Role(enum.Enum):
    """What a node is doing in its current term."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class ProgressState(enum.Enum):
    """How the leader is feeding one follower (etcd's Progress states)."""

    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@dataclass(slots=True)
class Progress:
    """The leader's view of one member's log.

    Invariants: ``match_index < next_index``; in REPLICATE, ``inflight`` holds the
    last index of each unacknowledged append, ascending, at most the window size.
    """

    match_index: int = 0
    next_index: int = 1
    state: ProgressState = ProgressState.PROBE
    probe_sent: bool = False
    inflight: deque[int] = field(default_factory=deque)
    pending_snapshot: int = 0
    recent_active: bool = False
    match_at_last_check: int = 0

    def become_probe(self, next_index: int) -> None:
        """Find the match point again, one append at a time, starting at ``next_index``."""
        self.state = ProgressState.PROBE
        self.next_index = max(next_index, self.match_index + 1)
        self.probe_sent = False
        self.inflight.clear()
        self.pending_snapshot = 0

    def become_replicate(self) -> None:
        """Stream appends optimistically from just after the match point."""
        self.state = ProgressState.REPLICATE
        self.next_index = self.match_index + 1
        self.probe_sent = False
        self.inflight.clear()
        self.pending_snapshot = 0


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Tuning of one core. Times are in ticks (the caller decides how long a tick is).

    Attributes:
        election_timeout_ticks: T; a follower campaigns after a random ``[T, 2T)`` ticks
            of silence, a leader checks its quorum every T ticks.
        heartbeat_interval_ticks: the leader's heartbeat period; must be well under T.
        pre_vote: run a pre-vote round before each election (thesis §9.6).
        check_quorum: leaders step down without a live majority; followers honour a lease.
        max_append_bytes: cap on entry bytes per AppendEntries (at least one entry is sent).
        max_inflight_appends: unacknowledged appends per follower in REPLICATE state.
    """

    election_timeout_ticks: int = 10
    heartbeat_interval_ticks: int = 2
    pre_vote: bool = True
    check_quorum: bool = True
    max_append_bytes: int = limits.MAX_APPEND_BYTES
    max_inflight_appends: int = limits.MAX_INFLIGHT_APPENDS

    def validate(self) -> None:
        """Raise InvalidArgument for settings that cannot work."""
        if self.election_timeout_ticks < 2 or self.heartbeat_interval_ticks < 1:
            raise InvalidArgument("election_timeout_ticks >= 2 and heartbeat_interval_ticks >= 1")
        if self.heartbeat_interval_ticks >= self.election_timeout_ticks:
            raise InvalidArgument("heartbeat_interval_ticks must be below election_timeout_ticks")
        if self.max_append_bytes < 1 or self.max_inflight_appends < 1:
            raise InvalidArgument("max_append_bytes and max_inflight_appends must be positive")


@dataclass(frozen=True, slots=True)
class ReadState:
    """A read that may be served once the state machine has applied ``index``."""

    context: bytes
    index: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the caller must do now, in this order (see the module docstring).

    Attributes:
        hard_state: persist if not None.
        snapshot: a snapshot received from the leader: persist it (replacing the log)
            and restore the state machine from it before applying anything.
        entries: append to storage, first deleting any stored entry at index
            ``>= entries[0].index``.
        messages: send, only after the above is durable.
        committed_entries: apply to the state machine in order.
        read_states: reads confirmed by a quorum; serve each once applied >= its index.
        rejected_reads: contexts of reads this node can no longer serve (it lost
            leadership); answer them with NotLeaderError.
    """

    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    committed_entries: tuple[Entry, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    rejected_reads: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class RestoreState:
    """What a restarting node loaded from its storage.

    Attributes:
        hard_state: the last persisted hard state.
        snapshot: the last persisted snapshot, if any.
        entries: the stored log entries after the snapshot, contiguous.
        applied_index: how far a durable state machine has already applied
            (0 for an in-memory state machine restored from ``snapshot``).
    """

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
    applied_index: int = 0


class RaftCore:
    """One Raft node's algorithm, without I/O. See the module docstring for the call rules.

    Args:
        node_id: this node's id.
        peers: the initial voters (including ``node_id``) when storage holds no
            configuration yet; pass ``()`` for a node that will join as a learner.
        rng: the only source of randomness (election timeouts).
        config: tuning.
        restore: persisted state from storage (None for a brand-new node).
        tracer: where trace events go.
        clock: returns the time stamped on trace events (virtual in the simulator).
    """

    def __init__(
        self,
        node_id: str,
        *,
        peers: Iterable[str],
        rng: RandomSource,
        config: RaftConfig | None = None,
        restore: RestoreState | None = None,
        tracer: Tracer = NULL_TRACER,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.id = node_id
        self.cfg = config or RaftConfig()
        self.cfg.validate()
        self._rng = rng
        self._tracer = tracer
        self._ticks = 0
        self._clock = clock or (lambda: float(self._ticks))
        rs = restore or RestoreState()
        snap = rs.snapshot
        self.log = RaftLog(
            snapshot_index=snap.meta.index if snap else 0,
            snapshot_term=snap.meta.term if snap else 0,
            entries=list(rs.entries),
        )
        self.log.commit_index = min(max(self.log.snapshot_index, rs.hard_state.commit_index), self.log.last_index())
        self.log.applied_index = max(self.log.snapshot_index, min(rs.applied_index, self.log.commit_index))
        self.term = rs.hard_state.term
        self.voted_for = rs.hard_state.voted_for
        self.role = Role.FOLLOWER
        self.leader_id: str | None = None
        self._snapshot = snap
        self._base_config = snap.meta.configuration if snap else Configuration(voters=frozenset(peers))
        self._configs: list[tuple[int, Configuration]] = []
        self._rebuild_configs()
        self._persisted = rs.hard_state
        self._pending_snapshot: Snapshot | None = None
        self._msgs: list[Message] = []
        self._outstanding: Ready | None = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._randomized_timeout = self.cfg.election_timeout_ticks
        self._votes: dict[str, bool] = {}
        self.progress: dict[str, Progress] = {}
        self.transferee: str | None = None
        self._transfer_elapsed = 0
        self._read_seq = 0
        self._reads_waiting_commit: list[bytes] = []
        self._read_queue: list[bytes] = []
        self._read_rounds: dict[int, tuple[int, list[bytes], set[str]]] = {}
        self._read_states: list[ReadState] = []
        self._rejected_reads: list[bytes] = []
        self._checked_term = self.term
        self._checked_commit = self.log.commit_index
        self._reset_election_timer()
        self._trace("started", last_index=self.log.last_index(), commit=self.log.commit_index)

    # ------------------------------------------------------------------
    # Small helpers (plumbing; never marked).
    # ------------------------------------------------------------------

    @property
    def configuration(self) -> Configuration:
        """The membership in effect: the latest configuration in the log, committed or not.

        (Not to be confused with ``cfg``, this core's tuning.)
        """
        return self._configs[-1][1]

    @property
    def commit_index(self) -> int:
        """Highest index known committed."""
        return self.log.commit_index

    def is_promotable(self) -> bool:
        """May this node campaign? Only voters of the current configuration may."""
        return self.id in self.configuration.voters

    def _trace(self, event: str, **fields: Any) -> None:
        self._tracer.emit(TraceEvent(self._clock(), self.id, self.term, self.role.value, event, fields))

    def _send(self, msg: Message) -> None:
        self._msgs.append(msg)

    def _require_no_ready(self) -> None:
        invariant(self._outstanding is None, "no input between ready() and advance() (the Ready contract)")

    def _reset_election_timer(self) -> None:
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        t = self.cfg.election_timeout_ticks
        self._randomized_timeout = t + self._rng.randrange(t)

    def _rebuild_configs(self) -> None:
        """Recompute the configuration history from the snapshot point and the log."""
        self._configs = [(self.log.snapshot_index, self._base_config)]
        for e in self.log.entries:
            if e.type == EntryType.CONFIG_CHANGE:
                self._configs.append((e.index, Configuration.decode(e.data)))

    def _config_at(self, index: int) -> Configuration:
        cfg = self._configs[0][1]
        for i, c in self._configs:
            if i <= index:
                cfg = c
        return cfg

    def _hard_state(self) -> HardState:
        """The hard state to persist now (planted-bug variants override this)."""
        return HardState(self.term, self.voted_for, self.log.commit_index)

    def _voter_quorum_reached(self, ids: Iterable[str]) -> bool:
        voters = self.configuration.voters
        return len(set(ids) & voters) >= self.configuration.quorum()

    # ------------------------------------------------------------------
    # Inputs.
    # ------------------------------------------------------------------

    def tick(self) -> None:
        """One unit of time passed. Drives elections, heartbeats and check-quorum."""
        self._require_no_ready()
        self._ticks += 1
        if self.role == Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        """Follower / candidate: campaign when the randomized election timeout elapses."""
        # BEGIN SOLUTION raft-election
        self.election_elapsed += 1
        if self.is_promotable() and self.election_elapsed >= self._randomized_timeout:
            self._trace("election_timeout", elapsed=self.election_elapsed)
            self.campaign()
        # END SOLUTION

    def _tick_leader(self) -> None:
        """Leader: heartbeat every interval; every election timeout, check that a majority of voters
        was heard from (else step down) and re-probe followers whose match index did not move."""
        # BEGIN SOLUTION raft-election
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_timeout_ticks:
            self.election_elapsed = 0
            if self.cfg.check_quorum and not self._quorum_recently_active():
                self._trace("check_quorum_failed")
                self.become_follower(self.term, None)
                return
            self._recover_stalled_followers()
        if self.heartbeat_elapsed >= self.cfg.heartbeat_interval_ticks:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat()
        # END SOLUTION
        if self.transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.cfg.election_timeout_ticks:
                self._trace("transfer_aborted", to=self.transferee)
                self.transferee = None

    def _quorum_recently_active(self) -> bool:
        """Did a majority of voters (self included) respond since the last check? Resets the flags."""
        active = {self.id}
        for node, pr in self.progress.items():
            if pr.recent_active:
                active.add(node)
            pr.recent_active = False
        return self._voter_quorum_reached(active)

    def _recover_stalled_followers(self) -> None:
        """A follower whose match did not move for a whole election timeout while entries
        were outstanding lost messages: probe it again (also resends a lost snapshot)."""
        for node, pr in self.progress.items():
            if node == self.id:
                continue
            stalled = pr.match_index == pr.match_at_last_check and pr.match_index < self.log.last_index()
            if stalled and pr.state != ProgressState.PROBE:
                self._trace("follower_stalled", peer=node, match=pr.match_index, state=pr.state.value)
                pr.become_probe(pr.match_index + 1)
            pr.match_at_last_check = pr.match_index

    def campaign(self, *, transfer: bool = False) -> None:
        """Start an election now, as if the election timeout had elapsed.

        With pre-vote enabled, this starts a pre-vote round, unless ``transfer``
        (a TimeoutNow from the leader), which skips pre-vote and asks voters to
        ignore their leader lease. No-op for a leader or a non-voter.
        """
        self._require_no_ready()
        if self.role == Role.LEADER or not self.is_promotable():
            return
        if self.cfg.pre_vote and not transfer:
            self.become_pre_candidate()
        else:
            self.become_candidate(transfer=transfer)

    def step(self, msg: Message) -> None:
        """Handle one message from a peer. Messages for another node are ignored."""
        self._require_no_ready()
        if msg.to != self.id:
            return
        if not self._step_term(msg):
            return
        if isinstance(msg, RequestVote):
            self._handle_vote_request(msg)
        elif self.role == Role.LEADER:
            self._step_leader(msg)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(msg)
        else:
            self._step_follower(msg)

    def propose(self, data: bytes) -> int:
        """Append a command to the log (leader only).

        Returns:
            The index the entry will have if it commits.
        Raises:
            NotLeaderError: not the leader (``leader_hint`` names the known leader).
            Unavailable: a leadership transfer is in progress.
            LimitExceeded: ``data`` is over ``limits.MAX_MESSAGE_BYTES``.
        """
        self._require_no_ready()
        self._require_leader()
        if len(data) > limits.MAX_MESSAGE_BYTES:
            raise LimitExceeded("proposal", len(data), limits.MAX_MESSAGE_BYTES)
        return self._append_and_broadcast(EntryType.NORMAL, data)

    def _require_leader(self) -> None:
        if self.role != Role.LEADER:
            raise NotLeaderError(self.leader_id or "")
        if self.transferee is not None:
            raise Unavailable(f"leadership transfer to {self.transferee} in progress")

    def _append_and_broadcast(self, kind: EntryType, data: bytes) -> int:
        """Leader: append one entry of our term and start replicating it."""
        # BEGIN SOLUTION raft-replication
        entry = Entry(self.term, self.log.last_index() + 1, kind, data)
        self.log.append([entry])
        if kind == EntryType.CONFIG_CHANGE:
            self._apply_config(entry.index, Configuration.decode(data))
        self._broadcast_append()  # our own copy counts once persisted (see advance)
        return entry.index
        # END SOLUTION

    # ------------------------------------------------------------------
    # Terms and role transitions (raft-election).
    # ------------------------------------------------------------------

    def _step_term(self, msg: Message) -> bool:
        """Apply the term rules common to all roles. Returns whether to process ``msg`` further.

        * Higher term: become a follower of that term, except (a) a vote request
          reaching a node that heard from a live leader within the election
          timeout is ignored (lease; unless ``transfer``), (b) a pre-vote request
          or a granted pre-vote response never changes anyone's term.
        * Lower term: a stale leader or candidate is told our term (so it steps
          down); everything else is dropped.
        """
        # BEGIN SOLUTION raft-election
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
        # END SOLUTION

    def become_follower(self, term: int, leader_id: str | None) -> None:
        """Become a follower in ``term`` (clearing the vote if the term is new)."""
        was_leader = self.role == Role.LEADER
        # BEGIN SOLUTION raft-election
        invariant(term >= self.term, "a node's term never decreases")
        if term > self.term:
            self.term = term
            self.voted_for = None
        self.role = Role.FOLLOWER
        self.leader_id = leader_id
        self._reset_election_timer()
        self._votes = {}
        # END SOLUTION
        if was_leader:
            self._drop_leader_state()
        self._trace("became_follower", leader=leader_id)

    def _drop_leader_state(self) -> None:
        """Forget progress, transfers and reads: pending reads are refused (we may be deposed)."""
        self.progress = {}
        self.transferee = None
        rejected = list(self._reads_waiting_commit) + list(self._read_queue)
        for _, batch, _ in self._read_rounds.values():
            rejected.extend(batch)
        self._rejected_reads.extend(rejected)
        self._reads_waiting_commit, self._read_queue, self._read_rounds = [], [], {}
        if rejected:
            self._trace("reads_rejected", count=len(rejected))

    def become_pre_candidate(self) -> None:
        """Ask every voter "would you vote for me at term + 1?" without changing term (thesis §9.6)."""
        # BEGIN SOLUTION raft-election
        self.role = Role.PRE_CANDIDATE
        self.leader_id = None
        self._reset_election_timer()
        self._votes = {self.id: True}
        self._trace("became_pre_candidate")
        if self._voter_quorum_reached(v for v, ok in self._votes.items() if ok):
            self.become_candidate()
            return
        for peer in sorted(self.configuration.voters - {self.id}):
            self._send(
                RequestVote(self.term + 1, self.id, peer, self.log.last_index(), self.log.last_term(), pre_vote=True)
            )
        # END SOLUTION

    def become_candidate(self, *, transfer: bool = False) -> None:
        """Increment the term, vote for ourselves and ask every voter for its vote (§5.2)."""
        # BEGIN SOLUTION raft-election
        self.term += 1
        self.voted_for = self.id
        self.role = Role.CANDIDATE
        self.leader_id = None
        self._reset_election_timer()
        self._votes = {self.id: True}
        self._trace("became_candidate", transfer=transfer)
        if self._voter_quorum_reached(v for v, ok in self._votes.items() if ok):
            self.become_leader()
            return
        for peer in sorted(self.configuration.voters - {self.id}):
            self._send(
                RequestVote(self.term, self.id, peer, self.log.last_index(), self.log.last_term(), transfer=transfer)
            )
        # END SOLUTION

    def become_leader(self) -> None:
        """Take over: reset every member's progress and append an empty entry of our term (§5.4.2)."""
        # BEGIN SOLUTION raft-election
        invariant(self.role == Role.CANDIDATE, "only a candidate becomes leader")
        self.role = Role.LEADER
        self.leader_id = self.id
        self._reset_election_timer()
        last = self.log.last_index()
        self.progress = {m: Progress(next_index=last + 1) for m in self.configuration.members() | {self.id}}
        self.progress[self.id].match_index = self.log.stable_index
        self._trace("became_leader", votes=sorted(v for v, ok in self._votes.items() if ok), last_index=last)
        self._append_and_broadcast(EntryType.NOOP, b"")
        # END SOLUTION

    def _handle_vote_request(self, msg: RequestVote) -> None:
        """Grant a vote (or pre-vote) if we can vote for this candidate and its log is up to date.

        We can vote if we already voted for it in this term, or have not voted and
        know no leader, or (pre-vote only) it asks about a term above ours. A real
        vote is recorded in ``voted_for``; the Ready contract persists it before
        the reply leaves.
        """
        # BEGIN SOLUTION raft-election
        can_vote = (
            self.voted_for == msg.candidate_id
            or (self.voted_for is None and self.leader_id is None)
            or (msg.pre_vote and msg.term > self.term)
        )
        grant = can_vote and self.log.is_up_to_date(msg.last_log_index, msg.last_log_term)
        if grant and not msg.pre_vote:
            self.voted_for = msg.candidate_id
            self.election_elapsed = 0
        reply_term = msg.term if (grant and msg.pre_vote) else self.term
        self._send(RequestVoteResponse(reply_term, self.id, msg.candidate_id, grant, msg.pre_vote))
        self._trace("vote_granted" if grant else "vote_refused", candidate=msg.candidate_id, pre_vote=msg.pre_vote)
        # END SOLUTION

    def _step_candidate(self, msg: Message) -> None:
        """Count votes; a leader of our term turns us back into a follower."""
        # BEGIN SOLUTION raft-election
        if isinstance(msg, RequestVoteResponse):
            pre = self.role == Role.PRE_CANDIDATE
            if msg.pre_vote != pre or (pre and msg.granted and msg.term != self.term + 1):
                return  # a reply to an earlier round
            if msg.from_ not in self.configuration.voters:
                return
            self._votes[msg.from_] = msg.granted
            granted = [v for v, ok in self._votes.items() if ok]
            refused = [v for v, ok in self._votes.items() if not ok]
            if self._voter_quorum_reached(granted):
                if pre:
                    self.become_candidate()
                else:
                    self.become_leader()
            elif self._voter_quorum_reached(refused):
                self.become_follower(self.term, None)
        elif isinstance(msg, (AppendEntries, InstallSnapshot)):
            self.become_follower(self.term, msg.leader_id)
            self._step_follower(msg)
        # END SOLUTION

    def _step_follower(self, msg: Message) -> None:
        """Follow the leader of our term: appends, snapshots, TimeoutNow."""
        if isinstance(msg, (AppendEntries, InstallSnapshot)):
            self.election_elapsed = 0
            if self.leader_id != msg.leader_id:
                self.leader_id = msg.leader_id
                self._trace("leader_known", leader=msg.leader_id)
            if isinstance(msg, AppendEntries):
                self._handle_append(msg)
            else:
                self._handle_snapshot(msg)
        elif isinstance(msg, TimeoutNow):
            self._trace("timeout_now", leader=msg.leader_id)
            self.campaign(transfer=True)

    def _step_leader(self, msg: Message) -> None:
        """Leader: account for replies from followers."""
        if isinstance(msg, AppendEntriesResponse):
            self._handle_append_response(msg)
        elif isinstance(msg, InstallSnapshotResponse):
            self._handle_snapshot_response(msg)
        elif isinstance(msg, AppendEntries):
            self._trace("rival_leader_ignored", other=msg.leader_id)

    # ------------------------------------------------------------------
    # Replication (raft-replication).
    # ------------------------------------------------------------------

    def _handle_append(self, msg: AppendEntries) -> None:
        """Follower side of AppendEntries: consistency check, append, advance commit, reply.

        An append whose ``prev_log_index`` is below our commit index is answered
        with ``match_index = commit_index`` (those entries are committed, hence
        identical to the leader's). On a failed check, reply with the fast
        back-off hint from ``RaftLog.find_conflict_hint``.
        """
        # BEGIN SOLUTION raft-replication
        if msg.prev_log_index < self.log.commit_index:
            self._send(AppendEntriesResponse(self.term, self.id, msg.leader_id, True, self.log.commit_index,
                                             read_context=msg.read_context))
            return
        tracked, before = self._configs[-1][0], self.configuration
        last_new = self.log.maybe_append(msg.prev_log_index, msg.prev_log_term, msg.entries)
        if last_new is None:
            conflict_term, conflict_index = self.log.find_conflict_hint(msg.prev_log_index)
            self._trace("append_rejected", prev=msg.prev_log_index, conflict_term=conflict_term,
                        conflict_index=conflict_index)
            self._send(AppendEntriesResponse(self.term, self.id, msg.leader_id, False, 0, conflict_term,
                                             conflict_index, msg.read_context))
            return
        if self.log.truncated_at:
            self._trace("log_truncated", from_index=self.log.truncated_at, leader=msg.leader_id)
            self.log.truncated_at = 0
        if msg.entries and (tracked > msg.prev_log_index or any(e.type == EntryType.CONFIG_CHANGE
                                                                 for e in msg.entries)):
            self._rebuild_configs()
            new = self.configuration
            if new != before:
                self._trace("config_changed", voters=sorted(new.voters), learners=sorted(new.learners))
        if self.log.commit_to(min(msg.leader_commit, last_new)):
            self._trace("commit_advanced", commit=self.log.commit_index)
        self._send(AppendEntriesResponse(self.term, self.id, msg.leader_id, True, last_new,
                                         read_context=msg.read_context))
        # END SOLUTION

    def _broadcast_append(self) -> None:
        for peer in sorted(self.progress):
            if peer != self.id:
                self._send_appends(peer)

    def _send_appends(self, to: str) -> None:
        """Send as many appends to ``to`` as flow control allows."""
        while self._send_append(to, allow_empty=False):
            pr = self.progress[to]
            if pr.state != ProgressState.REPLICATE or pr.next_index > self.log.last_index():
                break

    def _send_append(self, to: str, *, allow_empty: bool) -> bool:
        """Send one AppendEntries to ``to`` if flow control allows; returns whether a message went out.

        PROBE: one message at a time (until a reply or the next heartbeat).
        REPLICATE: advance ``next_index`` optimistically, up to
        ``max_inflight_appends`` unacknowledged messages of at most
        ``max_append_bytes`` each. SNAPSHOT: paused. If the entry before
        ``next_index`` was compacted away, send the snapshot instead.
        """
        # BEGIN SOLUTION raft-replication
        pr = self.progress[to]
        if pr.state == ProgressState.SNAPSHOT:
            return False
        if pr.state == ProgressState.PROBE and pr.probe_sent:
            return False
        if pr.state == ProgressState.REPLICATE and len(pr.inflight) >= self.cfg.max_inflight_appends:
            return False
        prev = pr.next_index - 1
        prev_term = self.log.term(prev)
        if prev_term is None:
            self._send_snapshot(to)
            return True
        entries: list[Entry] = []
        if pr.next_index <= self.log.last_index():
            entries = self.log.slice(pr.next_index, self.log.last_index() + 1, max_bytes=self.cfg.max_append_bytes)
        if not entries and not allow_empty:
            return False
        self._send(AppendEntries(self.term, self.id, to, prev, prev_term, tuple(entries), self.log.commit_index))
        if pr.state == ProgressState.PROBE:
            pr.probe_sent = True
        elif entries:
            pr.next_index = entries[-1].index + 1
            pr.inflight.append(entries[-1].index)
        return True
        # END SOLUTION

    def _handle_append_response(self, msg: AppendEntriesResponse) -> None:
        """Leader: update the follower's progress from its reply and send what it needs next.

        On rejection, jump ``next_index`` using the hint: past our last entry of
        ``conflict_term`` if we have that term, else to ``conflict_index``. On
        success, raise ``match_index``, switch PROBE to REPLICATE, free the
        acknowledged in-flight slots and try to advance the commit index.
        """
        pr = self.progress.get(msg.from_)
        if pr is None:
            return
        pr.recent_active = True
        if msg.read_context:
            self._ack_read(msg.from_, msg.read_context)
        # BEGIN SOLUTION raft-replication
        if not msg.success:
            if pr.state == ProgressState.SNAPSHOT:
                return
            next_index = msg.conflict_index
            if msg.conflict_term:
                ours = self.log.last_index_of_term(msg.conflict_term)
                if ours:
                    next_index = ours + 1
            pr.become_probe(min(next_index, self.log.last_index() + 1))
            self._send_append(msg.from_, allow_empty=True)
            return
        if msg.match_index > pr.match_index:
            pr.match_index = msg.match_index
            pr.next_index = max(pr.next_index, pr.match_index + 1)
            while pr.inflight and pr.inflight[0] <= pr.match_index:
                pr.inflight.popleft()
            if pr.state != ProgressState.REPLICATE:
                pr.become_replicate()
            self.maybe_commit()
        elif pr.state == ProgressState.PROBE:
            pr.probe_sent = False
        # END SOLUTION
        if self.role != Role.LEADER:
            return  # maybe_commit may have committed our own removal
        if self.transferee == msg.from_ and pr.match_index == self.log.last_index():
            self._send_timeout_now(msg.from_)
        self._send_appends(msg.from_)

    def maybe_commit(self) -> bool:
        """Advance ``commit_index`` to the highest index stored on a majority of voters,
        but only if that entry is of the current term (Figure 8, §5.4.2). Returns whether it moved."""
        # BEGIN SOLUTION raft-replication
        matches = sorted((self.progress[v].match_index for v in self.configuration.voters if v in self.progress),
                         reverse=True)
        quorum = self.configuration.quorum()
        if len(matches) < quorum:
            return False
        candidate = matches[quorum - 1]
        if candidate <= self.log.commit_index or self.log.term(candidate) != self.term:
            return False
        self.log.commit_to(candidate)
        # END SOLUTION
        self._after_commit()
        return True

    def _after_commit(self) -> None:
        """Plumbing after the leader's commit index moved: trace, release reads, leave if removed."""
        self._trace("commit_advanced", commit=self.log.commit_index)
        if self._reads_waiting_commit and self.log.term(self.log.commit_index) == self.term:
            waiting, self._reads_waiting_commit = self._reads_waiting_commit, []
            for ctx in waiting:
                self._queue_read(ctx)
        config_index = self._configs[-1][0]
        if self.id not in self.configuration.voters and config_index <= self.log.commit_index:
            self._trace("removed_from_configuration")
            self.become_follower(self.term, None)

    def _broadcast_heartbeat(self) -> None:
        """Send an empty AppendEntries to every member (carrying the newest read round)."""
        ctx = b""
        if self._read_rounds:
            ctx = max(self._read_rounds).to_bytes(8, "big")
        for peer in sorted(self.progress):
            if peer == self.id:
                continue
            pr = self.progress[peer]
            prev = pr.match_index
            prev_term = self.log.term(prev)
            if prev_term is None:
                prev, prev_term = 0, 0
            commit = min(self.log.commit_index, pr.match_index)
            self._send(AppendEntries(self.term, self.id, peer, prev, prev_term, (), commit, ctx))
            if pr.state == ProgressState.PROBE:
                pr.probe_sent = False

    # ------------------------------------------------------------------
    # Snapshots, persistence and reads (raft-persistence).
    # ------------------------------------------------------------------

    def compact(self, *, index: int, data: bytes) -> Snapshot:
        """The application snapshotted its state as of ``index``: drop the log up to it.

        Args:
            index: an applied index (``snapshot_index < index <= applied_index``).
            data: the state machine image.
        Returns:
            The snapshot, for the caller to persist (save it, then drop stored
            entries up to ``index``). The core keeps it to send to lagging followers.
        """
        self._require_no_ready()
        term = self.log.term(index)
        if term is None or not (self.log.snapshot_index < index <= self.log.applied_index):
            raise InvalidArgument(f"cannot snapshot at {index}: not an applied index after the last snapshot")
        snap = Snapshot(SnapshotMeta(index, term, self._config_at(index)), data)
        self.log.compact(index, term)
        self._snapshot = snap
        self._base_config = snap.meta.configuration
        self._rebuild_configs()
        self._trace("log_compacted", index=index)
        return snap

    def _send_snapshot(self, to: str) -> None:
        """Leader: the follower needs compacted entries; send our latest snapshot."""
        # BEGIN SOLUTION raft-persistence
        snap = self._snapshot
        if snap is None:
            invariant_failed("a compacted log has a snapshot")
        pr = self.progress[to]
        pr.state = ProgressState.SNAPSHOT
        pr.pending_snapshot = snap.meta.index
        pr.inflight.clear()
        self._send(InstallSnapshot(self.term, self.id, to, snap))
        self._trace("snapshot_sent", peer=to, index=snap.meta.index)
        # END SOLUTION

    def _handle_snapshot(self, msg: InstallSnapshot) -> None:
        """Follower: install a snapshot unless our log already covers it.

        If the snapshot is at or below our commit index, or our log holds its
        last entry with the same term, just advance the commit index. Otherwise
        discard the whole log, keep the snapshot for the next Ready (the caller
        persists it and restores the state machine), and reply success.
        """
        meta = msg.snapshot.meta
        # BEGIN SOLUTION raft-persistence
        if meta.index > self.log.commit_index:
            if self.log.term(meta.index) == meta.term:
                self.log.commit_to(meta.index)
                self._trace("commit_advanced", commit=self.log.commit_index)
            else:
                self.log.restore(msg.snapshot)
                self._snapshot = msg.snapshot
                self._pending_snapshot = msg.snapshot
                self._base_config = meta.configuration
                self._rebuild_configs()
                self._trace("snapshot_installed", index=meta.index, snapshot_term=meta.term)
        self._send(InstallSnapshotResponse(self.term, self.id, msg.leader_id, success=True))
        # END SOLUTION

    def _handle_snapshot_response(self, msg: InstallSnapshotResponse) -> None:
        """Leader: the follower now matches up to the snapshot; resume appends from there."""
        pr = self.progress.get(msg.from_)
        if pr is None:
            return
        pr.recent_active = True
        if pr.state != ProgressState.SNAPSHOT:
            return
        if msg.success:
            pr.match_index = max(pr.match_index, pr.pending_snapshot)
        pr.become_probe(pr.match_index + 1)
        self._send_appends(msg.from_)

    def read_index(self, context: bytes) -> None:
        """Ask to serve a linearizable read (ReadIndex, thesis §6.4).

        The read comes back in a later ``Ready.read_states`` as
        ``ReadState(context, index)`` once a quorum confirmed this node was still
        leader after the read arrived; serve it when the state machine has
        applied ``index``. If leadership is lost first, the context comes back
        in ``Ready.rejected_reads`` instead. ``context`` must be unique per read.

        Raises:
            NotLeaderError: not the leader.
        """
        self._require_no_ready()
        if self.role != Role.LEADER:
            raise NotLeaderError(self.leader_id or "")
        # BEGIN SOLUTION raft-persistence
        if self.log.term(self.log.commit_index) != self.term:
            self._reads_waiting_commit.append(context)  # commit index not yet known to be current
            return
        self._queue_read(context)
        # END SOLUTION

    def _queue_read(self, context: bytes) -> None:
        """Batch a read behind the next quorum round; start a round if none is in flight."""
        # BEGIN SOLUTION raft-persistence
        if self.configuration.voters == {self.id}:
            self._read_states.append(ReadState(context, self.log.commit_index))
            return
        self._read_queue.append(context)
        if not self._read_rounds:
            self._start_read_round()
        # END SOLUTION

    def _start_read_round(self) -> None:
        """Send one heartbeat round whose acknowledgement by a quorum confirms every queued read."""
        self._read_seq += 1
        self._read_rounds[self._read_seq] = (self.log.commit_index, self._read_queue, {self.id})
        self._read_queue = []
        self._trace("read_round_started", seq=self._read_seq, reads=len(self._read_rounds[self._read_seq][1]))
        self._broadcast_heartbeat()

    def _ack_read(self, peer: str, context: bytes) -> None:
        """A member answered the heartbeat of read round ``seq``: when a quorum has, release
        that round and every earlier one (a later confirmation covers earlier reads)."""
        # BEGIN SOLUTION raft-persistence
        seq = int.from_bytes(context, "big")
        round_ = self._read_rounds.get(seq)
        if round_ is None:
            return
        round_[2].add(peer)
        if not self._voter_quorum_reached(round_[2]):
            return
        for s in sorted(self._read_rounds):
            if s > seq:
                break
            index, batch, _ = self._read_rounds.pop(s)
            self._read_states.extend(ReadState(ctx, index) for ctx in batch)
            self._trace("reads_confirmed", seq=s, index=index, reads=len(batch))
        if self._read_queue and not self._read_rounds:
            self._start_read_round()
        # END SOLUTION

    # ------------------------------------------------------------------
    # Leadership transfer and membership.
    # ------------------------------------------------------------------

    def transfer_leadership(self, to: str) -> None:
        """Hand leadership to voter ``to``: stop taking proposals, bring ``to`` up to date,
        then send it TimeoutNow. Aborted if not done within an election timeout.

        Raises:
            NotLeaderError: not the leader.
            InvalidArgument: ``to`` is this node or not a voter.
        """
        self._require_no_ready()
        if self.role != Role.LEADER:
            raise NotLeaderError(self.leader_id or "")
        if to == self.id or to not in self.configuration.voters:
            raise InvalidArgument(f"cannot transfer leadership to {to!r}: not another voter")
        self.transferee = to
        self._transfer_elapsed = 0
        self._trace("transfer_started", to=to)
        if self.progress[to].match_index == self.log.last_index():
            self._send_timeout_now(to)
        else:
            self._send_appends(to)

    def _send_timeout_now(self, to: str) -> None:
        self._send(TimeoutNow(self.term, self.id, to))
        self._trace("timeout_now_sent", to=to)

    def add_learner(self, node_id: str) -> int:
        """Propose adding ``node_id`` as a learner (receives the log, does not vote).

        Returns: the index of the configuration entry.
        Raises: NotLeaderError, Unavailable (another change is in flight), InvalidArgument.
        """
        cfg = self.configuration
        if node_id in cfg.members():
            raise InvalidArgument(f"{node_id} is already a member")
        return self._propose_config(Configuration(cfg.voters, cfg.learners | {node_id}))

    def promote_learner(self, node_id: str) -> int:
        """Propose making learner ``node_id`` a voter, once its log has caught up with the commit index.

        Raises: NotLeaderError, Unavailable (not caught up, or a change in flight), InvalidArgument.
        """
        cfg = self.configuration
        if node_id not in cfg.learners:
            raise InvalidArgument(f"{node_id} is not a learner")
        self._require_leader()
        if self.progress[node_id].match_index < self.log.commit_index:
            raise Unavailable(f"learner {node_id} has not caught up yet")
        return self._propose_config(Configuration(cfg.voters | {node_id}, cfg.learners - {node_id}))

    def remove_member(self, node_id: str) -> int:
        """Propose removing ``node_id`` (voter or learner). A leader removing itself steps
        down once the change commits.

        Raises: NotLeaderError, Unavailable, InvalidArgument.
        """
        cfg = self.configuration
        if node_id not in cfg.members():
            raise InvalidArgument(f"{node_id} is not a member")
        if cfg.voters == {node_id}:
            raise InvalidArgument("cannot remove the last voter")
        return self._propose_config(Configuration(cfg.voters - {node_id}, cfg.learners - {node_id}))

    def _propose_config(self, new: Configuration) -> int:
        """Leader: append a configuration entry, one change at a time (single-server changes)."""
        self._require_no_ready()
        self._require_leader()
        if self._configs[-1][0] > self.log.commit_index:
            raise Unavailable("a configuration change is still uncommitted")
        if self.log.term(self.log.commit_index) != self.term:
            raise Unavailable("the leader has not committed an entry of its term yet")
        return self._append_and_broadcast(EntryType.CONFIG_CHANGE, new.encode())

    def _apply_config(self, index: int, new: Configuration) -> None:
        """A configuration entry was appended to our log: it is in effect from now on."""
        self._configs.append((index, new))
        self._trace("config_changed", index=index, voters=sorted(new.voters), learners=sorted(new.learners))
        if self.role != Role.LEADER:
            return
        for m in new.members() - set(self.progress):
            self.progress[m] = Progress(next_index=self.log.last_index())
        for m in set(self.progress) - new.members() - {self.id}:
            del self.progress[m]

    # ------------------------------------------------------------------
    # Output.
    # ------------------------------------------------------------------

    def has_ready(self) -> bool:
        """Is there anything for the caller to do?"""
        return (
            self._hard_state() != self._persisted
            or self._pending_snapshot is not None
            or self.log.stable_index < self.log.last_index()
            or bool(self._msgs)
            or min(self.log.commit_index, self.log.stable_index) > self.log.applied_index
            or bool(self._read_states)
            or bool(self._rejected_reads)
        )

    def ready(self) -> Ready:
        """Collect what to persist, send and apply. Call ``advance(ready)`` when done."""
        self._require_no_ready()
        hs = self._hard_state()
        applied, stable = self.log.applied_index, self.log.stable_index
        committed = min(self.log.commit_index, stable)
        if self._pending_snapshot is not None:
            committed = self.log.snapshot_index  # apply nothing before the snapshot is installed
        rd = Ready(
            hard_state=hs if hs != self._persisted else None,
            snapshot=self._pending_snapshot,
            entries=tuple(self.log.entries[stable - self.log.snapshot_index :]),
            messages=tuple(self._msgs),
            committed_entries=tuple(self.log.slice(applied + 1, committed + 1)) if committed > applied else (),
            read_states=tuple(self._read_states),
            rejected_reads=tuple(self._rejected_reads),
        )
        self._msgs, self._read_states, self._rejected_reads = [], [], []
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge that everything in ``rd`` was persisted, sent and applied."""
        invariant(rd is self._outstanding, "advance() takes the Ready returned by the last ready()")
        self._outstanding = None
        if rd.hard_state is not None:
            self._persisted = rd.hard_state
        if rd.snapshot is not None:
            self._pending_snapshot = None
        if rd.entries:
            self.log.stable_index = rd.entries[-1].index
        if rd.committed_entries:
            self.log.applied_index = rd.committed_entries[-1].index
        if self.role == Role.LEADER:
            me = self.progress[self.id]
            me.match_index = max(me.match_index, self.log.stable_index)
            me.next_index = me.match_index + 1
            self.maybe_commit()

    # ------------------------------------------------------------------
    # Invariants.
    # ------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Check every local rule; raises InvariantViolation on the first broken one."""
        self.log.check_invariants()
        invariant(self.term >= self._checked_term, "term never decreases")
        invariant(self.log.commit_index >= self._checked_commit, "commit_index never decreases")
        self._checked_term, self._checked_commit = self.term, self.log.commit_index
        if self.role in (Role.CANDIDATE, Role.LEADER):
            invariant(self.voted_for == self.id, "a candidate or leader voted for itself in its term")
        if self.role == Role.LEADER:
            invariant(self.leader_id == self.id, "a leader knows it leads")
            invariant(self.id in self.progress, "a leader tracks its own progress")
            last, window = self.log.last_index(), self.cfg.max_inflight_appends
            for node, pr in self.progress.items():
                if not (pr.match_index < pr.next_index and pr.match_index <= last and len(pr.inflight) <= window):
                    invariant_failed(f"progress of {node}: match < next, match <= last index, window respected")
        else:
            invariant(not self.progress, "only a leader tracks progress")
        invariant(self.log.last_term() <= self.term, "no entry has a term above the node's term")
        self._check_read_and_transfer_invariants()
        self._check_membership_invariants()
        if self._pending_snapshot is not None:
            invariant(self._pending_snapshot.meta.index == self.log.snapshot_index, "a pending snapshot is the log's")

    def _check_read_and_transfer_invariants(self) -> None:
        """Reads and transfers exist only on a leader; a read's index never exceeds the commit index."""
        if self.role != Role.LEADER:
            invariant(not (self._read_rounds or self._read_queue or self._reads_waiting_commit),
                      "only a leader holds pending reads")
            invariant(self.transferee is None, "only a leader transfers leadership")
            return
        for index, _, acks in self._read_rounds.values():
            invariant(index <= self.log.commit_index and self.id in acks, "a read round is at or below commit")
        if self.transferee is not None:
            invariant(self.transferee in self.configuration.voters, "the transfer target is a voter")

    def _check_membership_invariants(self) -> None:
        """Single-server changes: each configuration differs from the previous by at most one voter;
        voters and learners are disjoint; a leader has at most one uncommitted configuration."""
        prev: Configuration | None = None
        for _, cfg in self._configs:
            invariant(cfg.voters.isdisjoint(cfg.learners), "voters and learners are disjoint")
            if prev is not None and prev.voters:
                invariant(len(prev.voters ^ cfg.voters) <= 1, "a configuration change adds or removes one voter")
            prev = cfg
        if self.role == Role.LEADER:
            uncommitted = sum(1 for i, _ in self._configs if i > self.log.commit_index)
            invariant(uncommitted <= 1, "a leader has at most one uncommitted configuration change")
