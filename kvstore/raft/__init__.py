"""Raft consensus, sans-I/O: the core (``RaftCore``), its messages, log and storage interfaces.

Start with :mod:`kvstore.raft.core` (theory of operation and the Ready
contract). The simulator in :mod:`kvstore.sim` drives many cores on a virtual
network; the node runtime in :mod:`kvstore.server` drives one over gRPC.
"""

from kvstore.raft.core import (
    Progress,
    ProgressState,
    RaftConfig,
    RaftCore,
    ReadState,
    Ready,
    RestoreState,
    Role,
)
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
    describe,
    sender,
)
from kvstore.raft.storage import LogStorage, StateMachine, persist_ready

__all__ = [
    "AppendEntries",
    "AppendEntriesResponse",
    "Configuration",
    "Entry",
    "EntryType",
    "HardState",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "LogStorage",
    "Message",
    "Progress",
    "ProgressState",
    "RaftConfig",
    "RaftCore",
    "RaftLog",
    "ReadState",
    "Ready",
    "RequestVote",
    "RequestVoteResponse",
    "RestoreState",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "StateMachine",
    "TimeoutNow",
    "describe",
    "persist_ready",
    "sender",
]
