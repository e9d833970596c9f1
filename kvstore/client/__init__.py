"""The client side of kvstore: cluster files, hash rings, and the client library.

``Client`` (synchronous) and ``AsyncClient`` (asyncio) route each key to its
shard and its shard's leader, retry safely and report unknown outcomes; see
:mod:`kvstore.client.client`.
"""

from kvstore.client.client import AsyncClient, Client, ClientOptions, make_ring
from kvstore.client.cluster import ClusterMap, ReplicaSpec, ShardSpec, dump_cluster, find_cluster_file, load_cluster
from kvstore.client.ring import ConsistentHashRing, RendezvousRing, Ring

__all__ = [
    "AsyncClient",
    "Client",
    "ClientOptions",
    "ClusterMap",
    "ConsistentHashRing",
    "RendezvousRing",
    "ReplicaSpec",
    "Ring",
    "ShardSpec",
    "dump_cluster",
    "find_cluster_file",
    "load_cluster",
    "make_ring",
]
