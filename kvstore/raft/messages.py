"""Raft messages and records: plain frozen dataclasses mirroring ``proto/raft.proto``.

The sans-I/O core never sees protobuf objects; ``kvstore/server`` translates
between these classes and the wire messages field by field (same names). Two
differences from the proto, both because the core is not a stream:

* :class:`InstallSnapshot` carries the whole snapshot (``offset = 0``,
  ``done = True``); the gRPC runtime cuts it into ``SNAPSHOT_CHUNK_BYTES``
  chunks and reassembles them before calling ``RaftCore.step``.
* :class:`TimeoutNow` has no reply in the core (the proto's
  ``TimeoutNowResponse`` is an RPC formality).

Every message carries ``term`` and ``to``; replies carry ``from_`` (``from``
is a Python keyword). Index 0 and term 0 mean "none": the log is 1-indexed.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field


class EntryType(enum.IntEnum):
    """Kind of a log entry. Wire and on-disk values: do not renumber."""

    NORMAL = 0
    CONFIG_CHANGE = 1
    NOOP = 2


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of the replicated log.

    Attributes:
        term: term of the leader that created it.
        index: position in the log, from 1.
        type: what it holds.
        data: an encoded command (NORMAL), an encoded :class:`Configuration`
            (CONFIG_CHANGE), or empty (NOOP).
    """

    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def size_bytes(self) -> int:
        """Approximate encoded size, used for the bytes-per-message cap."""
        return len(self.data) + 24


@dataclass(frozen=True, slots=True)
class Configuration:
    """Cluster membership: who votes and who only receives the log.

    Invariants: ``voters`` and ``learners`` are disjoint.
    """

    voters: frozenset[str] = frozenset()
    learners: frozenset[str] = frozenset()

    def encode(self) -> bytes:
        """Canonical bytes (sorted JSON), the payload of a CONFIG_CHANGE entry."""
        return json.dumps({"voters": sorted(self.voters), "learners": sorted(self.learners)}).encode()

    @staticmethod
    def decode(data: bytes) -> Configuration:
        """Inverse of :meth:`encode`; empty bytes decode to the empty configuration."""
        if not data:
            return Configuration()
        obj = json.loads(data)
        return Configuration(voters=frozenset(obj["voters"]), learners=frozenset(obj["learners"]))

    def members(self) -> frozenset[str]:
        """Voters and learners."""
        return self.voters | self.learners

    def quorum(self) -> int:
        """Votes needed for a majority of voters."""
        return len(self.voters) // 2 + 1


@dataclass(frozen=True, slots=True)
class HardState:
    """What a node must persist before it speaks: its term, its vote, its commit index.

    ``term`` and ``voted_for`` must be durable before a vote is granted (else a
    restarted node could vote twice in one term). ``commit_index`` is persisted
    only to save replay work; losing it is safe.
    """

    term: int = 0
    voted_for: str | None = None
    commit_index: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """What a snapshot covers: the log up to ``index`` (whose entry had ``term``)."""

    index: int = 0
    term: int = 0
    configuration: Configuration = field(default_factory=Configuration)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state-machine image plus the metadata Raft needs to continue after it."""

    meta: SnapshotMeta
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class AppendEntries:
    """Leader -> follower: replicate entries, or heartbeat when ``entries`` is empty."""

    term: int
    leader_id: str
    to: str
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...] = ()
    leader_commit: int = 0
    read_context: bytes = b""


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    """Reply to AppendEntries.

    On success ``match_index`` is the last index known to match the leader. On
    failure ``conflict_term``/``conflict_index`` drive fast back-off: the term
    of the follower's entry at ``prev_log_index`` and the first index it holds
    with that term, or ``(0, last_index + 1)`` if its log is too short.
    """

    term: int
    from_: str
    to: str
    success: bool
    match_index: int = 0
    conflict_term: int = 0
    conflict_index: int = 0
    read_context: bytes = b""


@dataclass(frozen=True, slots=True)
class RequestVote:
    """Candidate (or pre-candidate) -> peer: ask for a vote.

    For a pre-vote, ``term`` is the term the sender would campaign in; nobody
    changes term because of it. ``transfer`` marks an election started by
    TimeoutNow: voters must not refuse it for having heard from a leader lately.
    """

    term: int
    candidate_id: str
    to: str
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class RequestVoteResponse:
    """Reply to RequestVote. For a granted pre-vote, ``term`` is the term asked about."""

    term: int
    from_: str
    to: str
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """Leader -> lagging follower: the whole snapshot (the runtime chunks it)."""

    term: int
    leader_id: str
    to: str
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class InstallSnapshotResponse:
    """Reply after installing (or finding the log already covers) a snapshot."""

    term: int
    from_: str
    to: str
    success: bool


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leader -> chosen successor: campaign now, without pre-vote (leadership transfer)."""

    term: int
    leader_id: str
    to: str


Message = (
    AppendEntries
    | AppendEntriesResponse
    | RequestVote
    | RequestVoteResponse
    | InstallSnapshot
    | InstallSnapshotResponse
    | TimeoutNow
)


def sender(msg: Message) -> str:
    """The id of the node that sent ``msg``."""
    if isinstance(msg, (AppendEntries, InstallSnapshot, TimeoutNow)):
        return msg.leader_id
    if isinstance(msg, RequestVote):
        return msg.candidate_id
    return msg.from_


def describe(msg: Message) -> str:
    """A short one-line rendering for traces and pretty-printed timelines."""
    src = sender(msg)
    if isinstance(msg, AppendEntries):
        ents = f" ents={msg.entries[0].index}..{msg.entries[-1].index}" if msg.entries else ""
        ctx = " read" if msg.read_context else ""
        prev = f"prev={msg.prev_log_index}/{msg.prev_log_term}"
        return f"app {src}->{msg.to} t{msg.term} {prev}{ents} c={msg.leader_commit}{ctx}"
    if isinstance(msg, AppendEntriesResponse):
        if msg.success:
            return f"appok {src}->{msg.to} t{msg.term} match={msg.match_index}"
        return f"apprej {src}->{msg.to} t{msg.term} hint={msg.conflict_index}/{msg.conflict_term}"
    if isinstance(msg, RequestVote):
        kind = "prevote" if msg.pre_vote else "vote"
        return f"{kind} {src}->{msg.to} t{msg.term} last={msg.last_log_index}/{msg.last_log_term}"
    if isinstance(msg, RequestVoteResponse):
        kind = "prevote" if msg.pre_vote else "vote"
        verdict = "yes" if msg.granted else "no"
        return f"{kind}-{verdict} {src}->{msg.to} t{msg.term}"
    if isinstance(msg, InstallSnapshot):
        return f"snap {src}->{msg.to} t{msg.term} idx={msg.snapshot.meta.index}"
    if isinstance(msg, InstallSnapshotResponse):
        return f"snapok {src}->{msg.to} t{msg.term} ok={msg.success}"
    return f"timeoutnow {src}->{msg.to} t{msg.term}"
