"""The client library: ``kvstore.AsyncClient(cluster=PATH)`` and ``kvstore.Client(cluster=PATH)``.

Theory of operation. A client reads the cluster file, routes each key to its
shard with a hash ring (:mod:`kvstore.client.ring`), and sends the request to
the replica it believes leads that shard. It keeps one gRPC channel per
address and remembers each shard's leader.

**Classifying failures.** Whether a write may have taken effect depends on
*when* a failure happens:

* the connection could not be established (gRPC says "failed to connect" /
  "connection refused"): nothing was sent, so the failure is definite
  (:class:`~kvstore.errors.Unavailable`) and the client may try another replica;
* the node answered with an error: the error's own ``definite`` flag decides
  (``NOT_LEADER`` is definite and carries a hint that the client follows);
* the request was sent and no answer came (deadline, connection lost): for a
  read this is harmless, for a write the outcome is unknown.

**Retrying safely.** Every write carries ``(client_id, seq)``; every retry of
that write after an attempt with an unknown outcome re-sends the *same* pair,
and the node answers a duplicate from its session table instead of applying it
again. (While every attempt so far was definitely refused, nothing happened,
and a retry takes a fresh ``seq``: see :class:`_WriteSender`.) So the client keeps retrying,
with exponential backoff and full jitter, until a definite answer arrives or
the deadline passes. If the deadline passes after any attempt whose outcome
was unknown, the client raises :class:`~kvstore.errors.OutcomeUnknown`: it
cannot tell whether the write happened, and says so.

**Two APIs, one logic.** :class:`AsyncClient` holds all the logic on
``grpc.aio``. :class:`Client` is the same API for synchronous code: it runs
an :class:`AsyncClient` on a private event loop in a background thread, so
there is exactly one implementation of routing and retries to read and test.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from kvstore import errors, limits
from kvstore.client._pipeline import NOT_SENT, Pipeline, PipelineStub
from kvstore.client.cluster import ClusterMap, ShardSpec, find_cluster_file, load_cluster
from kvstore.client.ring import RingKind, make_ring
from kvstore.types import CasResult, NodeStatus
from kvstore.wire import GRPC_MESSAGE_OPTIONS, kv_pb2, kv_pb2_grpc
from kvstore.wire.convert import error_from_proto

T = TypeVar("T")

GRPC_OPTIONS = GRPC_MESSAGE_OPTIONS


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Timeouts and retry policy, in seconds, and the transport.

    ``deadline_s`` bounds one whole operation including every retry;
    ``request_timeout_s`` bounds one attempt.

    ``pipeline`` (default True) sends data calls (put, get, delete, cas, scan)
    over one ``Pipeline`` stream per node, batched (:mod:`kvstore.client._pipeline`):
    several times less CPU per call on both ends than one unary gRPC call each.
    ``pipeline=False`` sends each call as its own unary RPC (for comparison,
    and as a fallback). Failures are classified the same way on both paths.
    """

    request_timeout_s: float = 2.0
    deadline_s: float = 10.0
    backoff_initial_s: float = 0.02
    backoff_max_s: float = 0.5
    pipeline: bool = True


# gRPC reports a failure to *establish* a connection with these phrases; the
# request was then never sent, so the failure is definite even for a write.
# Any other UNAVAILABLE (a connection lost mid-call) leaves a write's outcome unknown.
# A pipelined call that was never written to its stream was not sent either (NOT_SENT).
_CONNECT_FAILURE_PHRASES = (
    "failed to connect",
    "connection refused",
    "connections to all backends failing",
    NOT_SENT,
)


class AsyncClient:
    """Routes operations to shards and their leaders (asyncio). See the module docstring.

    Args:
        cluster: path to a cluster file, or a loaded :class:`ClusterMap`; None
            means ``$KV_CLUSTER`` or the cluster last started by ``kv cluster up``.
        options: timeouts and retry policy.
        client_id: the session id (random, non-zero, 63-bit by default).
        rng: randomness for the client id and backoff jitter (seed it in tests).
        ring: ``"consistent"`` (default) or ``"rendezvous"``.
    """

    def __init__(
        self,
        cluster: str | ClusterMap | None = None,
        *,
        options: ClientOptions | None = None,
        client_id: int | None = None,
        rng: random.Random | None = None,
        ring: RingKind = "consistent",
    ) -> None:
        if not isinstance(cluster, ClusterMap):
            cluster = load_cluster(find_cluster_file(cluster))
        self.cluster = cluster
        self.options = options or ClientOptions()
        self._rng = rng or random.Random()
        self.client_id = client_id if client_id is not None else self._rng.getrandbits(63) | 1
        self._seq = itertools.count(1)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._pipelines: dict[str, Pipeline] = {}
        self._leaders: dict[str, str] = {}  # shard name -> address believed to lead
        self._closed = False
        self.ring = make_ring(cluster.names(), kind=ring)
        self.attempts = 0  # requests sent, for tests and curiosity

    # ------------------------------------------------------------------ data API

    async def put(self, key: bytes, value: bytes) -> bytes | None:
        """Store ``value`` under ``key``; return the previous value or None.

        Raises:
            KeyTooLargeError / ValueTooLargeError / InvalidArgument: bad input (nothing sent).
            Unavailable: no replica accepted the write before the deadline (it did not happen).
            OutcomeUnknown: it may or may not have happened.
        """
        limits.check_key(key)
        limits.check_value(value)
        req = kv_pb2.PutRequest(key=key, value=value, session=self._next_session())
        resp = await self._call(self.shard_for(key), _WriteSender(self, req, "Put"), write=True)
        return resp.previous if resp.had_previous else None

    async def get(self, key: bytes, *, stale: bool = False) -> bytes | None:
        """The value under ``key``, or None. Linearizable unless ``stale``."""
        limits.check_key(key)
        req = kv_pb2.GetRequest(key=key, stale=stale)
        resp = await self._call(self.shard_for(key), lambda stub, t: stub.Get(req, timeout=t), write=False)
        return resp.value if resp.found else None

    async def contains(self, key: bytes) -> bool:
        """Whether ``key`` exists (a linearizable read)."""
        return await self.get(key) is not None

    async def delete(self, key: bytes) -> bool:
        """Remove ``key``; return whether it existed."""
        limits.check_key(key)
        req = kv_pb2.DeleteRequest(key=key, session=self._next_session())
        resp = await self._call(self.shard_for(key), _WriteSender(self, req, "Delete"), write=True)
        return bool(resp.existed)

    async def cas(self, key: bytes, expected: bytes | None, new: bytes) -> CasResult:
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
        resp = await self._call(self.shard_for(key), _WriteSender(self, req, "CompareAndSet"), write=True)
        return CasResult(resp.swapped, resp.current if resp.had_current else None)

    async def scan(
        self,
        start: bytes | None = None,
        end: bytes | None = None,
        *,
        limit: int | None = None,
        reverse: bool = False,
        stale: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with ``start <= key < end`` in key order (descending if ``reverse``), at most ``limit``.

        Keys are spread over shards by hash, so every shard is asked for (at
        most) ``limit`` pairs of the range and the answers are merged in key
        order. Each shard's reply is paged (MAX_SCAN_LIMIT pairs per request).
        """
        for bound in (start, end):
            if bound is not None:
                limits.check_key(bound)
        if limit is not None and limit <= 0:
            return []
        per_shard = await asyncio.gather(
            *(self._scan_shard(s, start, end, limit=limit, reverse=reverse, stale=stale) for s in self.cluster.shards)
        )
        merged = heapq.merge(*per_shard, key=lambda kv: kv[0], reverse=reverse)
        return list(itertools.islice(merged, limit))

    async def next(self, key: bytes) -> tuple[bytes, bytes] | None:
        """The first pair whose key is strictly greater than ``key``, or None."""
        found = await self.scan(key + b"\x00", None, limit=1)
        return found[0] if found else None

    async def prev(self, key: bytes) -> tuple[bytes, bytes] | None:
        """The last pair whose key is strictly less than ``key``, or None."""
        found = await self.scan(None, key, limit=1, reverse=True)
        return found[0] if found else None

    # ------------------------------------------------------------ admin API

    async def status(self, address: str) -> NodeStatus:
        """Ask the node at ``address`` about itself (one attempt, no retries).

        Raises:
            Unavailable: the node did not answer.
        """
        try:
            r = await self._unary_stub(address).Status(kv_pb2.StatusRequest(), timeout=self.options.request_timeout_s)
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

    async def shutdown_node(self, address: str, *, grace_seconds: float = 5.0) -> None:
        """Ask the node at ``address`` to shut down gracefully."""
        req = kv_pb2.ShutdownRequest(grace_seconds=grace_seconds)
        try:
            r = await self._unary_stub(address).Shutdown(req, timeout=self.options.request_timeout_s)
        except grpc.RpcError as exc:
            raise errors.Unavailable(f"node at {address} did not answer: {_rpc_detail(exc)}") from None
        if r.HasField("error"):
            raise error_from_proto(r.error)

    async def close(self) -> None:
        """Close every pipeline and channel; the client cannot be used afterwards.

        Calls still waiting for a reply fail with :class:`~kvstore.errors.ClosedError`.
        """
        self._closed = True
        pipelines, self._pipelines = list(self._pipelines.values()), {}
        for p in pipelines:
            await p.close()
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ internals

    def shard_for(self, key: bytes) -> ShardSpec:
        """The shard that owns ``key``."""
        return self.cluster.shard_named(self.ring.shard_for(key))

    def _next_session(self) -> kv_pb2.Session:
        return kv_pb2.Session(client_id=self.client_id, seq=next(self._seq))

    def _stub(self, address: str) -> kv_pb2_grpc.KVAsyncStub | PipelineStub:
        """What a ``send`` function calls: the node's pipeline (opened or reopened lazily) or its unary stub."""
        if not self.options.pipeline:
            return self._unary_stub(address)
        pipeline = self._pipelines.get(address)
        if pipeline is None or pipeline.broken:
            pipeline = Pipeline(self._channel(address), address)
            self._pipelines[address] = pipeline
        return PipelineStub(pipeline, default_timeout_s=self.options.request_timeout_s)

    def _unary_stub(self, address: str) -> kv_pb2_grpc.KVAsyncStub:
        return kv_pb2_grpc.KVStub(self._channel(address))

    def _channel(self, address: str) -> grpc.aio.Channel:
        if self._closed:
            raise errors.ClosedError("client is closed")
        ch = self._channels.get(address)
        if ch is None:
            ch = grpc.aio.insecure_channel(address, options=GRPC_OPTIONS)
            self._channels[address] = ch
        return ch

    def _candidates(self, shard: ShardSpec) -> list[str]:
        """Replica addresses to try, the believed leader first."""
        addresses = [r.address for r in shard.replicas]
        leader = self._leaders.get(shard.name)
        if leader in addresses:
            addresses.remove(leader)
            addresses.insert(0, leader)
        return addresses

    async def _scan_shard(
        self, shard: ShardSpec, start: bytes | None, end: bytes | None, *, limit: int | None, reverse: bool, stale: bool
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs of the range from one shard, paging through replies."""
        out: list[tuple[bytes, bytes]] = []
        lo, hi = start or b"", end or b""
        while limit is None or len(out) < limit:
            want = limits.MAX_SCAN_LIMIT if limit is None else min(limits.MAX_SCAN_LIMIT, limit - len(out))
            req = kv_pb2.ScanRequest(start=lo, end=hi, limit=want, reverse=reverse, stale=stale)
            resp = await self._call(shard, _scan_sender(req), write=False)
            out.extend((p.key, p.value) for p in resp.pairs)
            if not resp.more or not resp.pairs:
                break
            if reverse:
                hi = resp.pairs[-1].key  # end is exclusive: continue strictly below the last key
            else:
                lo = resp.pairs[-1].key + b"\x00"  # the smallest key after the last one
        return out

    async def _call(self, shard: ShardSpec, send: Callable[[Any, float], Awaitable[T]], *, write: bool) -> T:
        """Send to the shard's leader; follow hints; retry until a definite answer or the deadline.

        Raises:
            OutcomeUnknown: the deadline passed and some attempt of this write may have applied.
            The last definite error otherwise.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.deadline_s
        backoff = self.options.backoff_initial_s
        last: errors.KVError = errors.Unavailable(f"no replica of shard {shard.name} answered")
        uncertain: errors.KVError | None = None
        queue = self._candidates(shard)
        while loop.time() < deadline:
            if not queue:
                await asyncio.sleep(min(self._rng.uniform(0, backoff), max(0.0, deadline - loop.time())))
                backoff = min(backoff * 2, self.options.backoff_max_s)
                queue = self._candidates(shard)
                continue
            address = queue.pop(0)
            timeout = max(0.05, min(self.options.request_timeout_s, deadline - loop.time()))
            try:
                return await self._attempt(address, send, timeout, write=write)
            except errors.NotLeaderError as exc:
                last = exc
                if exc.leader_hint and exc.leader_hint != address:
                    self._leaders[shard.name] = exc.leader_hint
                    queue.insert(0, exc.leader_hint)
            except (errors.Unavailable, errors.OutcomeUnknown) as exc:
                if exc.definite:
                    last = exc
                else:
                    uncertain = exc
        if uncertain is not None:
            raise errors.OutcomeUnknown(f"{uncertain}; gave up after {self.options.deadline_s:g}s")
        raise last

    async def _attempt(
        self, address: str, send: Callable[[Any, float], Awaitable[T]], timeout: float, *, write: bool
    ) -> T:
        """One request to one node, with its failure classified (module docstring)."""
        stub = self._stub(address)
        self.attempts += 1
        try:
            resp = await send(stub, timeout)
        except grpc.RpcError as exc:
            raise _classify_rpc_error(exc, address, write=write) from None
        if resp.HasField("error"):  # type: ignore[attr-defined]
            raise error_from_proto(resp.error)  # type: ignore[attr-defined]
        return resp


class _WriteSender:
    """The ``send`` function of one write: re-sends its session, renewed only while nothing can have happened.

    Every attempt whose outcome is unknown (sent, no definite answer) must be
    retried with the same ``(client_id, seq)``, so that the node answers the
    retry from its session table. But while every attempt so far was
    definitely refused (not leader, cannot connect, shutting down), the write
    has not happened anywhere, and the next attempt takes a fresh ``seq``: the
    node keeps only a client's SESSION_WINDOW_COMMANDS most recent results and
    answers a seq older than that as OutcomeUnknown, so a write that waited
    out an election while the same client's other writes went ahead would
    otherwise come back "unknown" although it never happened.
    """

    def __init__(self, client: AsyncClient, request: Any, method: str) -> None:
        self.client = client
        self.request = request
        self.method = method
        self.attempts = 0
        self.maybe_applied = False

    async def __call__(self, stub: Any, timeout: float) -> Any:
        if self.attempts and not self.maybe_applied:
            self.request.session.seq = next(self.client._seq)
        self.attempts += 1
        try:
            resp = await getattr(stub, self.method)(self.request, timeout=timeout)
        except grpc.RpcError as exc:
            self.maybe_applied |= not _classify_rpc_error(exc, "", write=True).definite
            raise
        except BaseException:
            self.maybe_applied = True  # cancelled or worse mid-call: assume it may have been sent
            raise
        self.maybe_applied |= resp.HasField("error") and not resp.error.definite
        return resp


def _scan_sender(req: kv_pb2.ScanRequest) -> Callable[[Any, float], Awaitable[kv_pb2.ScanResponse]]:
    def send(stub: Any, timeout: float) -> Awaitable[kv_pb2.ScanResponse]:
        return stub.Scan(req, timeout=timeout)  # type: ignore[no-any-return]

    return send


def _rpc_detail(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else ""
    return f"{code.name if code else 'error'}: {details}"


def _classify_rpc_error(exc: grpc.RpcError, address: str, *, write: bool) -> errors.KVError:
    """Map a gRPC failure to a KVError (see the module docstring)."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    detail = _rpc_detail(exc)
    if code == grpc.StatusCode.UNAVAILABLE and any(p in detail.lower() for p in _CONNECT_FAILURE_PHRASES):
        return errors.Unavailable(f"cannot reach node at {address} (is it running?)")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.InvalidArgument(f"request refused by {address}: {detail}")
    if not write:
        return errors.Unavailable(f"read from {address} failed: {detail}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.DeadlineExceeded(f"no reply from {address} in time; the write may or may not have happened")
    return errors.OutcomeUnknown(f"lost contact with {address} ({detail}); the write may or may not have happened")


class Client:
    """The synchronous face of :class:`AsyncClient`: same arguments, same methods.

    Runs the async client on a private event loop in a daemon thread; every
    method blocks until the operation finishes. Safe to share between threads.
    Close it (or use ``with``) to stop the thread.
    """

    def __init__(self, cluster: str | ClusterMap | None = None, **kwargs: Any) -> None:
        if not isinstance(cluster, ClusterMap):
            cluster = load_cluster(find_cluster_file(cluster))  # fail here, in the caller's thread
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kvstore-client", daemon=True)
        self._thread.start()
        self._async = self._run(_construct(cluster, kwargs))

    @property
    def cluster(self) -> ClusterMap:
        """The cluster map in use."""
        return self._async.cluster

    @property
    def client_id(self) -> int:
        """This client's session id."""
        return self._async.client_id

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coro.close()
            raise errors.ClosedError("client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def put(self, key: bytes, value: bytes) -> bytes | None:
        """See :meth:`AsyncClient.put`."""
        return self._run(self._async.put(key, value))

    def get(self, key: bytes, *, stale: bool = False) -> bytes | None:
        """See :meth:`AsyncClient.get`."""
        return self._run(self._async.get(key, stale=stale))

    def contains(self, key: bytes) -> bool:
        """See :meth:`AsyncClient.contains`."""
        return self._run(self._async.contains(key))

    def delete(self, key: bytes) -> bool:
        """See :meth:`AsyncClient.delete`."""
        return self._run(self._async.delete(key))

    def cas(self, key: bytes, expected: bytes | None, new: bytes) -> CasResult:
        """See :meth:`AsyncClient.cas`."""
        return self._run(self._async.cas(key, expected, new))

    def scan(
        self,
        start: bytes | None = None,
        end: bytes | None = None,
        *,
        limit: int | None = None,
        reverse: bool = False,
        stale: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        """See :meth:`AsyncClient.scan`."""
        return self._run(self._async.scan(start, end, limit=limit, reverse=reverse, stale=stale))

    def next(self, key: bytes) -> tuple[bytes, bytes] | None:
        """See :meth:`AsyncClient.next`."""
        return self._run(self._async.next(key))

    def prev(self, key: bytes) -> tuple[bytes, bytes] | None:
        """See :meth:`AsyncClient.prev`."""
        return self._run(self._async.prev(key))

    def shard_for(self, key: bytes) -> ShardSpec:
        """See :meth:`AsyncClient.shard_for`."""
        return self._async.shard_for(key)

    def status(self, address: str) -> NodeStatus:
        """See :meth:`AsyncClient.status`."""
        return self._run(self._async.status(address))

    def shutdown_node(self, address: str, *, grace_seconds: float = 5.0) -> None:
        """See :meth:`AsyncClient.shutdown_node`."""
        self._run(self._async.shutdown_node(address, grace_seconds=grace_seconds))

    def close(self) -> None:
        """Close the channels and stop the background loop (idempotent)."""
        if self._loop.is_closed():
            return
        self._run(self._async.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _construct(cluster: ClusterMap, kwargs: dict[str, Any]) -> AsyncClient:
    return AsyncClient(cluster, **kwargs)
