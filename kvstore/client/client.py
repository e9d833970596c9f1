"""The synchronous client: ``kvstore.Client(cluster=PATH)``.

Theory of operation. A :class:`Client` reads the cluster file, routes each key
to its shard, and sends the request to the replica it believes leads that
shard. It keeps one gRPC channel per address.

Errors are classified by *when* they happen, because that decides whether a
write may have taken effect:

* the connection to the node could not be established (gRPC says "failed to
  connect" / "connection refused"): nothing was sent, so the failure is
  definite (:class:`~kvstore.errors.Unavailable`) and the client may try
  another replica;
* the node answered with an error: the error's own ``definite`` flag decides
  (``NOT_LEADER`` is definite and carries a hint the client follows);
* the request was sent and no answer came (deadline, connection lost): for a
  read this is harmless (``Unavailable``), for a write the outcome is unknown
  (:class:`~kvstore.errors.OutcomeUnknown`).

Every write carries ``(client_id, seq)``. Retries of definite failures re-send
the same pair. Retrying after an *unknown* outcome is only safe once the node
de-duplicates sessions (the replicated node does); until then the client
reports OutcomeUnknown instead of guessing.

Routing: with one shard every key goes to it; with several, a consistent-hash
ring decides (see :mod:`kvstore.client.ring`).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from kvstore import errors, limits
from kvstore.client.cluster import ClusterMap, ShardSpec, find_cluster_file, load_cluster
from kvstore.server.memory_store import CasResult
from kvstore.server.service import NodeStatus
from kvstore.wire import kv_pb2, kv_pb2_grpc
from kvstore.wire.convert import error_from_proto

T = TypeVar("T")

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Timeouts and retry policy (seconds)."""

    request_timeout_s: float = 5.0
    deadline_s: float = 10.0
    backoff_initial_s: float = 0.02
    backoff_max_s: float = 0.5


class Client:
    """Routes operations to shards and their leaders; see the module docstring.

    Args:
        cluster: path to a cluster file, or an already loaded :class:`ClusterMap`;
            None means ``$KV_CLUSTER``.
        options: timeouts and retry policy.
        client_id: the session id (random 63-bit by default).
    """

    def __init__(
        self,
        cluster: str | ClusterMap | None = None,
        *,
        options: ClientOptions | None = None,
        client_id: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(cluster, ClusterMap):
            cluster = load_cluster(find_cluster_file(cluster))
        self.cluster = cluster
        self.options = options or ClientOptions()
        self._rng = rng or random.Random()
        self.client_id = client_id if client_id is not None else self._rng.getrandbits(63) | 1
        self._seq = 0
        self._channels: dict[str, grpc.Channel] = {}
        self._leaders: dict[str, str] = {}  # shard name -> address believed to lead
        self._closed = False
        self._ring = _make_ring(cluster)

    # ---------------------------------------------------------------- public API

    def put(self, key: bytes, value: bytes) -> bytes | None:
        """Store ``value`` under ``key``; return the previous value or None."""
        limits.check_key(key)
        limits.check_value(value)
        req = kv_pb2.PutRequest(key=key, value=value, session=self._next_session())
        resp = self._call(key, lambda stub, t: stub.Put(req, timeout=t), write=True)
        return resp.previous if resp.had_previous else None

    def get(self, key: bytes, *, stale: bool = False) -> bytes | None:
        """The value under ``key`` or None. Linearizable unless ``stale``."""
        limits.check_key(key)
        req = kv_pb2.GetRequest(key=key, stale=stale)
        resp = self._call(key, lambda stub, t: stub.Get(req, timeout=t), write=False)
        return resp.value if resp.found else None

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; return whether it existed."""
        limits.check_key(key)
        req = kv_pb2.DeleteRequest(key=key, session=self._next_session())
        return self._call(key, lambda stub, t: stub.Delete(req, timeout=t), write=True).existed

    def cas(self, key: bytes, expected: bytes | None, new: bytes) -> CasResult:
        """Set ``key`` to ``new`` if it holds ``expected`` (None: if absent), atomically."""
        limits.check_key(key)
        limits.check_value(new)
        if expected is not None:
            limits.check_value(expected)
        req = kv_pb2.CompareAndSetRequest(
            key=key,
            expect_absent=expected is None,
            expected=expected or b"",
            value=new,
            session=self._next_session(),
        )
        resp = self._call(key, lambda stub, t: stub.CompareAndSet(req, timeout=t), write=True)
        return CasResult(resp.swapped, resp.current if resp.had_current else None)

    def scan(
        self,
        start: bytes | None = None,
        end: bytes | None = None,
        *,
        limit: int | None = None,
        reverse: bool = False,
        stale: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with ``start <= key < end`` in key order (descending if ``reverse``), at most ``limit``.

        Pages through the node's replies (each at most MAX_SCAN_LIMIT pairs).
        """
        for bound in (start, end):
            if bound is not None:
                limits.check_key(bound)
        if len(self.cluster.shards) > 1:
            raise errors.InvalidArgument("scans across several shards arrive with the hash ring")
        out: list[tuple[bytes, bytes]] = []
        lo, hi = start or b"", end or b""
        while limit is None or len(out) < limit:
            want = min(limits.MAX_SCAN_LIMIT, limit - len(out)) if limit is not None else limits.MAX_SCAN_LIMIT
            req = kv_pb2.ScanRequest(start=lo, end=hi, limit=want, reverse=reverse, stale=stale)
            resp = self._call(lo or hi, functools.partial(_send_scan, req), write=False, any_key=True)
            out.extend((p.key, p.value) for p in resp.pairs)
            if not resp.more or not resp.pairs:
                break
            last = resp.pairs[-1].key
            if reverse:
                hi = last  # end is exclusive: continue strictly below the last key
            else:
                lo = last + b"\x00"  # the smallest key greater than `last`
        return out

    def status(self, address: str) -> NodeStatus:
        """Ask the node at ``address`` about itself (one attempt, no retries)."""
        stub = self._stub(address)
        try:
            r = stub.Status(kv_pb2.StatusRequest(), timeout=self.options.request_timeout_s)
        except grpc.RpcError as exc:
            raise errors.Unavailable(f"node at {address} did not answer: {_rpc_detail(exc)}") from None
        return NodeStatus(
            node_id=r.node_id,
            shard=r.shard,
            role=r.role,
            term=r.term,
            leader_id=r.leader_id,
            commit_index=r.commit_index,
            applied_index=r.applied_index,
            log_bytes=r.log_bytes,
            keys=r.keys,
            disk_bytes=r.disk_bytes,
            level_files=list(r.level_files),
            engine=r.engine,
        )

    def shutdown_node(self, address: str, *, grace_seconds: float = 5.0) -> None:
        """Ask the node at ``address`` to shut down gracefully."""
        stub = self._stub(address)
        try:
            req = kv_pb2.ShutdownRequest(grace_seconds=grace_seconds)
            r = stub.Shutdown(req, timeout=self.options.request_timeout_s)
        except grpc.RpcError as exc:
            raise errors.Unavailable(f"node at {address} did not answer: {_rpc_detail(exc)}") from None
        if r.HasField("error"):
            raise error_from_proto(r.error)

    def close(self) -> None:
        """Close every channel. The client cannot be used afterwards."""
        self._closed = True
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    def shard_for(self, key: bytes) -> ShardSpec:
        """The shard that owns ``key``."""
        return self.cluster.shard_named(self._ring(key))

    def _next_session(self) -> kv_pb2.Session:
        self._seq += 1
        return kv_pb2.Session(client_id=self.client_id, seq=self._seq)

    def _stub(self, address: str) -> kv_pb2_grpc.KVStub:
        if self._closed:
            raise errors.ClosedError("client is closed")
        ch = self._channels.get(address)
        if ch is None:
            ch = grpc.insecure_channel(address, options=GRPC_OPTIONS)
            self._channels[address] = ch
        return kv_pb2_grpc.KVStub(ch)

    def _candidates(self, shard: ShardSpec) -> list[str]:
        """Replica addresses to try, the believed leader first."""
        addresses = [r.address for r in shard.replicas]
        leader = self._leaders.get(shard.name)
        if leader in addresses:
            addresses.remove(leader)
            addresses.insert(0, leader)
        return addresses

    def _call(
        self, key: bytes, send: Callable[[kv_pb2_grpc.KVStub, float], T], *, write: bool, any_key: bool = False
    ) -> T:
        """Send to the shard's leader, following hints and retrying definite failures.

        ``any_key``: the request is not about one key (a scan on a one-shard cluster).
        """
        shard = self.cluster.shards[0] if any_key else self.shard_for(key)
        deadline = time.monotonic() + self.options.deadline_s
        backoff = self.options.backoff_initial_s
        last: errors.KVError = errors.Unavailable(f"no replica of shard {shard.name} answered")
        queue = self._candidates(shard)
        while time.monotonic() < deadline:
            if not queue:
                time.sleep(self._rng.uniform(0, backoff))  # full jitter
                backoff = min(backoff * 2, self.options.backoff_max_s)
                queue = self._candidates(shard)
            address = queue.pop(0)
            try:
                return self._attempt(address, send, write=write)
            except errors.NotLeaderError as exc:
                last = exc
                if exc.leader_hint and exc.leader_hint != address:
                    self._leaders[shard.name] = exc.leader_hint
                    queue.insert(0, exc.leader_hint)
            except errors.KVError as exc:
                if not exc.definite or not isinstance(exc, errors.Unavailable):
                    raise
                last = exc
        raise last

    def _attempt(self, address: str, send: Callable[[kv_pb2_grpc.KVStub, float], T], *, write: bool) -> T:
        """One request to one node, with its failure classified (module docstring)."""
        stub = self._stub(address)
        try:
            resp = send(stub, self.options.request_timeout_s)
        except grpc.RpcError as exc:
            raise _classify_rpc_error(exc, address, write=write) from None
        if resp.HasField("error"):  # type: ignore[attr-defined]
            raise error_from_proto(resp.error)  # type: ignore[attr-defined]
        return resp


def _send_scan(req: kv_pb2.ScanRequest, stub: kv_pb2_grpc.KVStub, timeout: float) -> kv_pb2.ScanResponse:
    return stub.Scan(req, timeout=timeout)


def _rpc_detail(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else ""
    return f"{code.name if code else 'error'}: {details}"


def _classify_rpc_error(exc: grpc.RpcError, address: str, *, write: bool) -> errors.KVError:
    """Map a gRPC failure after sending to a KVError (see module docstring)."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    detail = _rpc_detail(exc)
    if code == grpc.StatusCode.UNAVAILABLE and _never_connected(detail):
        return errors.Unavailable(f"cannot reach node at {address} (is it running?)")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.InvalidArgument(f"request refused by {address}: {detail}")
    if write:
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return errors.DeadlineExceeded(f"no reply from {address} in time; the write may or may not have happened")
        return errors.OutcomeUnknown(f"lost contact with {address} ({detail}); the write may or may not have happened")
    return errors.Unavailable(f"read from {address} failed: {detail}")


# gRPC reports a failure to *establish* a connection with these phrases; the
# request was then never sent, so the failure is definite even for a write.
# Any other UNAVAILABLE (a connection lost mid-call) leaves a write's outcome unknown.
_CONNECT_FAILURE_PHRASES = ("failed to connect", "connection refused", "connections to all backends failing")


def _never_connected(detail: str) -> bool:
    low = detail.lower()
    return any(p in low for p in _CONNECT_FAILURE_PHRASES)


def _make_ring(cluster: ClusterMap) -> Callable[[bytes], str]:
    """A function from key to shard name."""
    names = cluster.names()
    if len(names) == 1:
        only = names[0]
        return lambda key: only
    raise errors.ConfigError("this client routes to one shard only for now; the hash ring is not wired in yet")
