"""The client library: routing across shards, safe retries, unknown outcomes -- against in-process servers."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from dataclasses import replace

import grpc
import pytest

from kvstore import errors
from kvstore.client.client import AsyncClient, Client, ClientOptions
from kvstore.client.cluster import ClusterMap, ReplicaSpec, ShardSpec
from kvstore.server.service import Context, KVService, StandaloneBackend
from kvstore.types import CasResult
from kvstore.wire import kv_pb2, kv_pb2_grpc


class LossyService(KVService):
    """Applies each write, then loses the reply of the first `lose` of them (a dropped connection)."""

    def __init__(self, backend: StandaloneBackend, *, lose: int) -> None:
        super().__init__(backend, on_shutdown=lambda _g: None)
        self.lose = lose
        self.lost = 0

    async def CompareAndSet(
        self, request: kv_pb2.CompareAndSetRequest, context: Context
    ) -> kv_pb2.CompareAndSetResponse:
        reply = await super().CompareAndSet(request, context)
        if self.lost < self.lose:
            self.lost += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset (injected)")
        return reply

    async def Pipeline(
        self, request_iterator: AsyncIterator[kv_pb2.PipelineRequest], context: Context
    ) -> AsyncIterator[kv_pb2.PipelineResponse]:
        async for response in super().Pipeline(request_iterator, context):
            if self.lost < self.lose and any(r.HasField("compare_and_set") for r in response.replies):
                self.lost += 1
                await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset (injected)")
            yield response


class NotLeaderService(KVService):
    """Refuses every request with a not-leader hint pointing at `leader`."""

    def __init__(self, leader: str) -> None:
        super().__init__(StandaloneBackend(node_id="f", shard="s0"), on_shutdown=lambda _g: None)
        self.leader = leader
        self.refused = 0

    async def serve_put(self, request: kv_pb2.PutRequest) -> kv_pb2.PutResponse:
        self.refused += 1
        return kv_pb2.PutResponse(error=kv_pb2.Error(code=kv_pb2.NOT_LEADER, leader_hint=self.leader, definite=True))


class ServerThread:
    """gRPC aio servers on their own event loop in a thread, on 127.0.0.1 ports chosen by the OS."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[grpc.aio.Server] = []

    def serve(self, service: KVService) -> str:
        async def start() -> int:
            server = grpc.aio.server()
            kv_pb2_grpc.add_KVServicer_to_server(service, server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            self.servers.append(server)
            return port

        fut: Future[int] = asyncio.run_coroutine_threadsafe(start(), self.loop)
        return f"127.0.0.1:{fut.result(10)}"

    def close(self) -> None:
        async def stop() -> None:
            for s in self.servers:
                await s.stop(0)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def servers() -> Iterator[ServerThread]:
    st = ServerThread()
    yield st
    st.close()


def one_shard(*addresses: str) -> ClusterMap:
    return ClusterMap([ShardSpec("s0", [ReplicaSpec(f"n{i}", a) for i, a in enumerate(addresses, 1)])])


FAST = ClientOptions(request_timeout_s=1.0, deadline_s=5.0, backoff_initial_s=0.001, backoff_max_s=0.01)
# Both transports of the client: the pipeline stream (default) and one unary RPC per call.
TRANSPORTS = pytest.mark.parametrize("pipeline", [True, False], ids=["pipeline", "unary"])


@TRANSPORTS
def test_a_write_whose_reply_was_lost_is_retried_and_applied_once(servers: ServerThread, pipeline: bool) -> None:
    """The retry re-sends the same session; the node answers it from the session table (applied once)."""
    backend = StandaloneBackend(node_id="n1", shard="s0")
    lossy = LossyService(backend, lose=2)
    address = servers.serve(lossy)
    with Client(one_shard(address), options=replace(FAST, pipeline=pipeline), rng=random.Random(7)) as c:
        result = c.cas(b"k", None, b"v1")
    assert lossy.lost == 2, "the fault was injected twice"
    assert result == CasResult(True, None), "the retry got the original answer, not a second application's"
    assert backend.store.get(b"k") == b"v1"
    assert len(backend.sessions) == 1


@TRANSPORTS
def test_a_write_that_never_gets_a_reply_raises_outcome_unknown(servers: ServerThread, pipeline: bool) -> None:
    """When every attempt's reply is lost, the client cannot know: it says so with OutcomeUnknown."""
    backend = StandaloneBackend(node_id="n1", shard="s0")
    lossy = LossyService(backend, lose=10**9)
    address = servers.serve(lossy)
    opts = ClientOptions(
        request_timeout_s=0.5, deadline_s=0.5, backoff_initial_s=0.001, backoff_max_s=0.01, pipeline=pipeline
    )
    with Client(one_shard(address), options=opts) as c, pytest.raises(errors.OutcomeUnknown):
        c.cas(b"k", None, b"v1")
    assert lossy.lost >= 1
    assert backend.store.get(b"k") == b"v1", "the write did happen: 'unknown' was the honest answer"


@TRANSPORTS
def test_client_follows_a_not_leader_hint_and_remembers_the_leader(servers: ServerThread, pipeline: bool) -> None:
    """A follower's hint sends the client to the leader; later writes go there first."""
    leader_backend = StandaloneBackend(node_id="n2", shard="s0")
    leader = servers.serve(KVService(leader_backend, on_shutdown=lambda _g: None))
    follower = NotLeaderService(leader)
    follower_address = servers.serve(follower)
    with Client(one_shard(follower_address, leader), options=replace(FAST, pipeline=pipeline)) as c:
        c.put(b"a", b"1")
        c.put(b"b", b"2")
    assert follower.refused == 1, "the second put went straight to the remembered leader"
    assert leader_backend.store.get(b"b") == b"2"


@TRANSPORTS
def test_unreachable_cluster_is_a_definite_unavailable(servers: ServerThread, pipeline: bool) -> None:
    """Nothing listens: the write certainly did not happen, so the error is definite."""
    from kvstore.server.launcher import free_port

    opts = ClientOptions(
        request_timeout_s=0.2, deadline_s=0.5, backoff_initial_s=0.01, backoff_max_s=0.05, pipeline=pipeline
    )
    with Client(one_shard(f"127.0.0.1:{free_port()}"), options=opts) as c, pytest.raises(errors.Unavailable) as info:
        c.put(b"a", b"1")
    assert info.value.definite


def test_keys_are_routed_by_the_ring_and_scans_merge_every_shard_in_order(servers: ServerThread) -> None:
    """Each key lands on the shard the ring names; scan, next and prev see all shards in key order."""
    backends = [StandaloneBackend(node_id=f"n{i}", shard=f"s{i}") for i in range(3)]
    addresses = [servers.serve(KVService(b, on_shutdown=lambda _g: None)) for b in backends]
    cluster = ClusterMap([ShardSpec(f"s{i}", [ReplicaSpec(f"n{i}", a)]) for i, a in enumerate(addresses)])
    keys = [b"key-%03d" % i for i in range(120)]
    with Client(cluster, options=FAST) as c:
        for k in keys:
            c.put(k, k[::-1])
        for k in keys:
            owner = int(c.shard_for(k).name[1:])
            assert backends[owner].store.get(k) == k[::-1]
        assert all(len(b.store) > 10 for b in backends), "keys spread over every shard"
        assert [k for k, _ in c.scan()] == keys
        assert [k for k, _ in c.scan(b"key-010", b"key-015")] == keys[10:15]
        assert [k for k, _ in c.scan(reverse=True, limit=3)] == keys[::-1][:3]
        assert c.next(b"key-041") == (b"key-042", b"240-yek")
        assert c.prev(b"key-041") == (b"key-040", b"040-yek")
        assert c.next(b"key-119") is None and c.prev(b"key-000") is None
        assert c.contains(b"key-007") and not c.contains(b"nope")


def test_async_client_has_the_same_methods_and_results(servers: ServerThread) -> None:
    """AsyncClient is the same API under asyncio."""
    backend = StandaloneBackend(node_id="n1", shard="s0")
    address = servers.serve(KVService(backend, on_shutdown=lambda _g: None))

    async def run() -> None:
        async with AsyncClient(one_shard(address), options=FAST) as c:
            assert await c.put(b"a", b"1") is None
            assert await c.get(b"a") == b"1"
            results = await asyncio.gather(*(c.put(b"k%d" % i, b"v") for i in range(20)))
            assert results == [None] * 20
            assert (await c.cas(b"a", b"1", b"2")).swapped
            assert await c.delete(b"a") is True
            assert len(await c.scan()) == 20

    asyncio.run(run())
    import inspect

    for name in ["put", "get", "delete", "cas", "scan", "next", "prev", "contains", "status", "shutdown_node"]:
        sync_sig = inspect.signature(getattr(Client, name))
        async_sig = inspect.signature(getattr(AsyncClient, name))
        assert list(sync_sig.parameters) == list(async_sig.parameters), name


class StuckService(KVService):
    """Accepts puts and never answers them (a node stuck in a long fsync)."""

    def __init__(self) -> None:
        super().__init__(StandaloneBackend(node_id="n1", shard="s0"), on_shutdown=lambda _g: None)
        self.received = 0

    async def serve_put(self, request: kv_pb2.PutRequest) -> kv_pb2.PutResponse:
        self.received += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_close_fails_calls_in_flight_and_leaves_no_task_or_channel_behind(servers: ServerThread) -> None:
    """close() answers a pending pipelined call with ClosedError and leaves no task, pipeline or channel."""
    stuck = StuckService()
    address = servers.serve(stuck)

    async def run() -> None:
        c = AsyncClient(one_shard(address), options=FAST)
        assert await c.get(b"a") is None, "the pipeline is open"
        pending = asyncio.ensure_future(c.put(b"a", b"1"))
        while stuck.received == 0:
            await asyncio.sleep(0.001)
        own_tasks = list(c._pipelines[address]._tasks)
        assert len(own_tasks) == 2, "a sender and a receiver"
        await c.close()
        with pytest.raises(errors.ClosedError):
            await pending
        assert c._pipelines == {} and c._channels == {}
        assert all(t.done() for t in own_tasks), "the sender and receiver tasks ended"
        # gRPC's own per-call status task may still be waiting for the core; no task of kvstore's is left.
        assert [t for t in asyncio.all_tasks() if "/kvstore/" in _coroutine_file(t)] == []
        with pytest.raises(errors.ClosedError):
            await c.get(b"a")

    asyncio.run(run())


def test_a_timed_out_pipelined_read_is_unavailable_and_the_pipeline_stays_usable(servers: ServerThread) -> None:
    """A call past its timeout fails alone (DEADLINE_EXCEEDED -> Unavailable for a read); later calls still work."""
    stuck = StuckService()
    address = servers.serve(stuck)
    opts = ClientOptions(request_timeout_s=0.2, deadline_s=0.2)

    async def run() -> None:
        async with AsyncClient(one_shard(address), options=opts) as c:
            req = kv_pb2.PutRequest(key=b"k", value=b"v")
            with pytest.raises(errors.DeadlineExceeded):
                await c._attempt(address, lambda stub, t: stub.Put(req, timeout=t), 0.2, write=True)
            with pytest.raises(errors.Unavailable, match="DEADLINE_EXCEEDED"):
                await c._attempt(address, lambda stub, t: stub.Put(req, timeout=t), 0.2, write=False)
            assert await c.get(b"k") is None, "the same pipeline still answers"
            assert not c._pipelines[address].broken

    asyncio.run(run())


def _coroutine_file(task: asyncio.Task[object]) -> str:
    """The source file of a task's coroutine ("" for one written in C/Cython, as gRPC's are)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code.co_filename if code is not None else ""


class LateRefusalService(KVService):
    """Refuses the first put of b"slow" (not leader, definite, no hint), but only once `others` other puts applied."""

    def __init__(self, backend: StandaloneBackend, *, others: int) -> None:
        super().__init__(backend, on_shutdown=lambda _g: None)
        self.others = others
        self.applied = 0
        self.enough = asyncio.Event()
        self.refused_seq = 0

    async def serve_put(self, request: kv_pb2.PutRequest) -> kv_pb2.PutResponse:
        if request.key == b"slow" and not self.refused_seq:
            self.refused_seq = request.session.seq
            await self.enough.wait()
            return kv_pb2.PutResponse(error=kv_pb2.Error(code=kv_pb2.NOT_LEADER, definite=True))
        reply = await super().serve_put(request)
        self.applied += 1
        if self.applied >= self.others:
            self.enough.set()
        return reply


@TRANSPORTS
def test_a_write_refused_definitely_is_retried_with_a_fresh_seq(servers: ServerThread, pipeline: bool) -> None:
    """A write that was only ever refused is retried as a new command, so the session window cannot overtake it."""
    from kvstore import limits

    backend = StandaloneBackend(node_id="n1", shard="s0")
    service = LateRefusalService(backend, others=limits.SESSION_WINDOW_COMMANDS + 10)
    address = servers.serve(service)

    async def run() -> None:
        async with AsyncClient(one_shard(address), options=replace(FAST, pipeline=pipeline)) as c:
            slow = asyncio.ensure_future(c.put(b"slow", b"v"))
            for wave in range(0, service.others, 20):  # in waves: far fewer writes in flight than the window
                await asyncio.gather(*(c.put(b"k%03d" % i, b"v") for i in range(wave, wave + 20)))
            assert await slow is None, "applied once, not reported as unknown"

    asyncio.run(run())
    assert service.refused_seq == 1, "the refused attempt carried the first seq"
    assert backend.store.get(b"slow") == b"v"
    window = backend.sessions._clients[next(iter(backend.sessions._clients))]
    assert 1 not in window and max(window) > service.others, "the retry was a new command with a fresh seq"
