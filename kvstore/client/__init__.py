"""The client side of kvstore: cluster files, hash rings, and the client library.

``Client`` (synchronous) and ``AsyncClient`` (asyncio) route each key to its
shard and its shard's leader, retry safely and report unknown outcomes; see
:mod:`kvstore.client.client`.
"""

from kvstore.client.client import AsyncClient, Client, ClientOptions
from kvstore.client.cluster import ClusterMap, ReplicaSpec, ShardSpec, dump_cluster, find_cluster_file, load_cluster
from kvstore.client.ring import (
    DEFAULT_VNODES_PER_SHARD,
    RING_KINDS,
    ConsistentHashRing,
    RendezvousRing,
    Ring,
    RingKind,
    make_ring,
)

__all__ = [
    "DEFAULT_VNODES_PER_SHARD",
    "RING_KINDS",
    "AsyncClient",
    "Client",
    "ClientOptions",
    "ClusterMap",
    "ConsistentHashRing",
    "RendezvousRing",
    "ReplicaSpec",
    "Ring",
    "RingKind",
    "ShardSpec",
    "dump_cluster",
    "find_cluster_file",
    "load_cluster",
    "make_ring",
]
