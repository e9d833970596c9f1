"""The node: one replica of one shard, and the tools to run several on this machine.

Start reading at :mod:`kvstore.server.runtime` (the node loop and the Ready
cycle), then :mod:`kvstore.server.state_machine` (commands applied to the
engine, exactly once), :mod:`kvstore.server.transport` (Raft over gRPC),
:mod:`kvstore.server.raft_log` (the durable log) and
:mod:`kvstore.server.service` (the client-facing gRPC service). Formats:
``RAFT_LOG_FORMAT.md`` and ``NODE_FORMAT.md`` next to this file.
"""

from kvstore.server.local_cluster import LocalCluster, create_cluster
from kvstore.server.raft_log import DurableRaftLog
from kvstore.server.runtime import RaftNode, ReplicatedBackend
from kvstore.server.service import KVBackend, KVService
from kvstore.server.state_machine import KVStateMachine

__all__ = [
    "DurableRaftLog",
    "KVBackend",
    "KVService",
    "KVStateMachine",
    "LocalCluster",
    "RaftNode",
    "ReplicatedBackend",
    "create_cluster",
]
