"""Named limits: every size, count and queue cap in kvstore lives here.

"Put a limit on everything": an unbounded buffer is a crash waiting for a large
enough input. Each constant says *why* it has the value it has, so a reader who
wants to change one knows what else moves with it. Code elsewhere imports these
names and never repeats the numbers.

The ``check_*`` helpers raise the typed errors of :mod:`kvstore.errors`, so a
request over a limit is refused with a clear message at the first boundary it
crosses (CLI, client, server, engine), never truncated.
"""

from __future__ import annotations

from kvstore.errors import (
    BatchTooLargeError,
    InvalidArgument,
    KeyTooLargeError,
    ValueTooLargeError,
)

KiB = 1024
MiB = 1024 * KiB

# Keys are indexes, not payloads: 4 KiB is far above any sane key (LevelDB's
# and etcd's practical keys are tens of bytes) and keeps index blocks, Raft
# entries and per-key metadata small. Also keeps one SSTable index entry well
# under a block.
MAX_KEY_BYTES = 4 * KiB

# 1 MiB values: large enough for documents, small enough that one value fits in
# one gRPC message with room to spare and a single Raft entry never stalls a
# heartbeat for long. etcd's default request limit is 1.5 MiB for the same reason.
MAX_VALUE_BYTES = 1 * MiB

# A write batch is applied atomically, so it must fit in one Raft entry and in
# one WAL record: 1,000 operations and 4 MiB of payload.
MAX_BATCH_OPS = 1_000
MAX_BATCH_BYTES = 4 * MiB

# gRPC messages: one value plus key plus framing must fit, and a batch of Raft
# entries (MAX_APPEND_BYTES) must fit. 16 MiB leaves headroom over both and
# stays far below grpc's 2 GiB hard ceiling; the default 4 MiB would be too
# tight for a full batch.
MAX_MESSAGE_BYTES = 16 * MiB

# Raft: one AppendEntries carries at most this many bytes of entries (flow
# control, so a lagging follower is fed in pieces and heartbeats stay timely)
# and the leader keeps at most MAX_INFLIGHT_APPENDS unacknowledged appends per
# follower (a window, as in etcd's Progress.Inflights).
MAX_APPEND_BYTES = 1 * MiB
MAX_INFLIGHT_APPENDS = 64

# Snapshots stream in chunks of this size: big enough to keep the stream
# efficient, small enough to stay far under MAX_MESSAGE_BYTES.
SNAPSHOT_CHUNK_BYTES = 1 * MiB

# A scan returns at most this many pairs per request; longer scans page. Keeps
# one reply under MAX_MESSAGE_BYTES even with large values (256 * ~64 KiB).
MAX_SCAN_LIMIT = 10_000
MAX_SCAN_REPLY_BYTES = 8 * MiB

# Client sessions (exactly-once retries): each live client costs one table
# entry, so the table is bounded; the least recently used session is evicted.
MAX_CLIENT_SESSIONS = 10_000

# Bounded queues in the node runtime: proposals waiting for the Raft loop and
# outbound messages per peer. Past these the node refuses with Unavailable
# (definite) instead of growing without bound.
MAX_PENDING_PROPOSALS = 4_096
MAX_PEER_QUEUE_MESSAGES = 1_024

# Config and cluster files are small hand-written TOML; anything larger is a
# mistake (a wrong path pointing at a data file).
MAX_CONFIG_FILE_BYTES = 1 * MiB


def check_key(key: bytes, *, limit: int = MAX_KEY_BYTES) -> None:
    """Refuse a key that is not bytes, empty, or longer than ``limit`` (default MAX_KEY_BYTES).

    Raises:
        InvalidArgument: not bytes, or empty.
        KeyTooLargeError: over the limit.
    """
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"key must be bytes, not {type(key).__name__}")
    if len(key) == 0:
        raise InvalidArgument("key must not be empty")
    if len(key) > limit:
        raise KeyTooLargeError(len(key), limit)


def check_value(value: bytes) -> None:
    """Refuse a value that is not bytes or longer than MAX_VALUE_BYTES.

    Raises:
        InvalidArgument: not bytes.
        ValueTooLargeError: over the limit.
    """
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"value must be bytes, not {type(value).__name__}")
    if len(value) > MAX_VALUE_BYTES:
        raise ValueTooLargeError(len(value), MAX_VALUE_BYTES)


def check_batch(op_count: int, payload_bytes: int) -> None:
    """Refuse a batch with too many operations or too many bytes.

    Raises:
        BatchTooLargeError: over MAX_BATCH_OPS or MAX_BATCH_BYTES.
    """
    if op_count > MAX_BATCH_OPS:
        raise BatchTooLargeError("batch", op_count, MAX_BATCH_OPS, "operations")
    if payload_bytes > MAX_BATCH_BYTES:
        raise BatchTooLargeError("batch size", payload_bytes, MAX_BATCH_BYTES)


# Hash ring (kvstore/client/ring.py). Every with_shard/without_shard rebuilds a
# consistent ring at one hash per virtual node, so shards x virtual nodes bounds
# both build time and memory: 256 shards (each a Raft group of 3+ processes, far
# past any cluster this store runs) x 1,024 virtual nodes (twice the measured
# default of 512, see docs/ring.md) is 262,144 points: about 1 s to build and
# 14 MiB to hold (30 MiB at the peak of a build).
# Shard names appear in status tables and are hashed on every rendezvous lookup:
# 128 bytes of UTF-8 is ample for a name and keeps both cheap.
MAX_RING_SHARDS = 256
MAX_VNODES_PER_SHARD = 1_024
MAX_SHARD_NAME_BYTES = 128

# Per client session, the results of this many most recent commands are kept
# so a retry of any of them is answered, not re-applied. A client with more
# than this many writes in flight at once would see a retry of its oldest
# answered as OutcomeUnknown; 128 is well above the concurrency of our clients.
SESSION_WINDOW_COMMANDS = 128

# Durable Raft log (kvstore/server/raft_log.py). A node id is stored in every
# hard-state record (voted_for); ids are short names such as "n1", so 255 bytes
# of UTF-8 is ample and keeps a hard-state record under 300 bytes. A snapshot's
# data is held in memory whole (Snapshot.data is bytes) and read back whole at
# restart; the node stores a reference to an engine checkpoint there (tens of
# bytes), an in-memory state machine its whole image: 256 MiB bounds the memory
# a restart needs for it.
MAX_NODE_ID_BYTES = 255
MAX_SNAPSHOT_DATA_BYTES = 256 * MiB

# The storage engine accepts keys a little longer than users may send: the
# node's state machine puts a one-byte namespace in front of every user key
# (kvstore/server/NODE_FORMAT.md), and session records use 17-byte keys. 64
# bytes of headroom keeps every such layer within the engine's limit.
MAX_ENGINE_KEY_BYTES = MAX_KEY_BYTES + 64

# Client pipeline (the KV service's Pipeline stream, kvstore/server/service.py).
# Unanswered calls per stream: a node refuses calls beyond this (UNAVAILABLE,
# definite) and the client never sends more. 256 is four times the 64
# concurrent clients of the benchmark, and twice SESSION_WINDOW_COMMANDS (one
# client cannot usefully have more writes in flight); it bounds what one stream
# can make a node hold to 256 requests (at most ~2 MiB each).
MAX_PIPELINE_CALLS_IN_FLIGHT = 256
