"""The client pipeline against real `kv node` processes: same answers as unary, failover, faults, cleanup.

A single node checks that pipelined calls of every kind answer exactly as unary calls
do; a 3-node cluster checks that a not-leader hint is followed over the pipeline, that
killing the leader with calls in flight makes writes indeterminate and reads definite
failures, and that the client recovers on the next leader.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from kvstore import errors, limits
from kvstore.client.client import AsyncClient, ClientOptions
from kvstore.client.cluster import ClusterMap, ShardSpec, load_cluster
from kvstore.server.local_cluster import LocalCluster, running_cluster
from kvstore.wire import kv_pb2, kv_pb2_grpc

pytestmark = pytest.mark.process

T = TypeVar("T")

FAST_RAFT = """
[raft]
tick_ms = 20
election_timeout_ticks = 10
heartbeat_ticks = 2

[testing]
allow_fault_injection = true
"""

PIPE = ClientOptions(request_timeout_s=2.0, deadline_s=20.0, backoff_initial_s=0.01, backoff_max_s=0.1)
UNARY = ClientOptions(request_timeout_s=2.0, deadline_s=20.0, pipeline=False)


class RecordingClient(AsyncClient):
    """An AsyncClient that records every failed attempt: (address, write, error)."""

    failures: list[tuple[str, bool, errors.KVError]]

    async def _attempt(
        self, address: str, send: Callable[[Any, float], Awaitable[T]], timeout: float, *, write: bool
    ) -> T:
        if not hasattr(self, "failures"):
            self.failures = []
        try:
            return await super()._attempt(address, send, timeout, write=write)
        except errors.KVError as exc:
            self.failures.append((address, write, exc))
            raise


async def every_kind(c: AsyncClient, prefix: bytes) -> list[object]:
    """One key's history through every operation; the answers, in order."""
    k = prefix + b"-key"
    out: list[object] = [
        await c.put(k, b"1"),
        await c.put(k, b"2"),
        await c.get(k),
        await c.cas(k, b"wrong", b"3"),
        await c.cas(k, b"2", b"3"),
        await c.cas(prefix + b"-new", None, b"x"),
        await c.get(k),
        await c.delete(k),
        await c.delete(k),
        await c.get(k),
        await c.put(prefix + b"-other", b"o"),
    ]
    out.append(await c.scan(prefix, prefix + b"\xff"))
    out.append(await c.scan(prefix, prefix + b"\xff", reverse=True, limit=1))
    out.append(await c.next(prefix))
    return out


# Concurrent histories per client. Each writes 11 times: 11 x 11 + 1 stays below the node's
# per-client session window (SESSION_WINDOW_COMMANDS = 128), so a history that has to retry
# while the others run ahead can never fall out of the window (see the client pipeline report).
HISTORIES = 11


def test_pipelined_calls_of_every_kind_answer_exactly_as_unary_calls(running_node: Any) -> None:
    """Many concurrent histories over the pipeline give the same answers as over unary RPCs, in few messages."""
    cluster = load_cluster(running_node.cluster)

    async def run() -> None:
        async with AsyncClient(cluster, options=PIPE) as piped, AsyncClient(cluster, options=UNARY) as unary:
            await piped.put(b"warm-up", b"")  # waits out the node's first election
            via_pipe = await asyncio.gather(*(every_kind(piped, b"p%02d" % i) for i in range(HISTORIES)))
            via_unary = await asyncio.gather(*(every_kind(unary, b"u%02d" % i) for i in range(HISTORIES)))
            strip = [[_unprefix(x) for x in history] for history in via_pipe]
            assert strip == [[_unprefix(x) for x in history] for history in via_unary]
            assert strip[0][:3] == [None, b"1", b"2"], "the histories did real work"
            pipeline = piped._pipelines[running_node.address]
            calls = HISTORIES * 14
            assert pipeline.messages_sent < calls / 2, f"calls were batched: {pipeline.messages_sent} messages"
            pipeline.check_invariants()

    asyncio.run(run())


def _unprefix(x: object) -> object:
    """Replace a p/u key prefix by a neutral one so the two clients' answers compare."""
    if isinstance(x, bytes):
        return x
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], bytes):
        return (x[0][3:], x[1])
    if isinstance(x, list):
        return [_unprefix(y) for y in x]
    return x


def test_a_retried_put_over_the_pipeline_is_applied_once(running_node: Any) -> None:
    """Re-sending a put with its original session over the pipeline returns the original answer, applied once."""
    cluster = load_cluster(running_node.cluster)

    async def run() -> None:
        async with AsyncClient(cluster, options=PIPE) as c:
            shard = c.shard_for(b"k")
            first = kv_pb2.PutRequest(key=b"k", value=b"v1", session=kv_pb2.Session(client_id=77, seq=1))
            second = kv_pb2.PutRequest(key=b"k", value=b"v2", session=kv_pb2.Session(client_id=77, seq=2))
            r1: Any = await c._call(shard, lambda stub, t: stub.Put(first, timeout=t), write=True)
            r2: Any = await c._call(shard, lambda stub, t: stub.Put(second, timeout=t), write=True)
            retry: Any = await c._call(shard, lambda stub, t: stub.Put(first, timeout=t), write=True)
            assert not r1.had_previous and r2.previous == b"v1"
            assert not retry.had_previous, "the retry got the first answer"
            assert await c.get(b"k") == b"v2", "the retry was not applied again"

    asyncio.run(run())


def test_batches_larger_than_one_message_are_split_both_ways(running_node: Any) -> None:
    """24 concurrent 1 MiB puts (more than MAX_MESSAGE_BYTES together) and their gets all succeed."""
    cluster = load_cluster(running_node.cluster)
    big = b"x" * limits.MAX_VALUE_BYTES
    count = 24
    assert count * len(big) > limits.MAX_MESSAGE_BYTES, "one message could not hold them all"

    async def run() -> None:
        opts = ClientOptions(request_timeout_s=20.0, deadline_s=30.0)
        async with AsyncClient(cluster, options=opts) as c:
            await c.put(b"warm-up", b"")
            pipeline = c._pipelines[running_node.address]
            before = pipeline.messages_sent
            assert await asyncio.gather(*(c.put(b"big%02d" % i, big) for i in range(count))) == [None] * count
            assert pipeline.messages_sent - before >= 3, "the puts were cut into several messages"
            got = await asyncio.gather(*(c.get(b"big%02d" % i) for i in range(count)))
            assert all(g == big for g in got), "every reply arrived whole"

    asyncio.run(run())


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path / "kv", extra_config=FAST_RAFT) as local:
        yield local


def isolate(address: str, others: list[str]) -> None:
    with grpc.insecure_channel(address) as ch:
        r = kv_pb2_grpc.KVStub(ch).InjectFaults(kv_pb2.InjectFaultsRequest(isolate_from=others), timeout=5)
    assert not r.HasField("error"), r.error.message


def test_failover_and_a_leader_killed_with_calls_in_flight(cluster: LocalCluster) -> None:
    """NotLeader hints are followed over the pipeline; killing the leader mid-call makes writes
    OutcomeUnknown and reads Unavailable; the client then finishes every call on the new leader,
    and the dead node's address fails as a definite "cannot reach"."""
    leaders = cluster.wait_for_leaders(timeout_s=30)
    shard = cluster.map.shards[0]
    by_id = {r.id: r.address for r in shard.replicas}
    lead_id = leaders[shard.name]
    followers = [r for r in shard.replicas if r.id != lead_id]
    lead_replica = next(r for r in shard.replicas if r.id == lead_id)
    follower_first = ClusterMap([ShardSpec(shard.name, [*followers, lead_replica])])

    async def run() -> None:
        async with RecordingClient(follower_first, options=PIPE, rng=random.Random(5)) as c:
            assert await c.put(b"before", b"1") is None
            assert [type(e) for _, _, e in c.failures] == [errors.NotLeaderError], "the follower sent a hint"
            assert set(c._pipelines) == {followers[0].address, by_id[lead_id]}, "both calls went by pipeline"
            c.failures.clear()
            # Cut the leader off so its calls cannot finish, send them, then kill it.
            isolate(by_id[lead_id], [r.id for r in followers])
            writes = [asyncio.ensure_future(c.put(b"w%02d" % i, b"v")) for i in range(10)]
            reads = [asyncio.ensure_future(c.get(b"before")) for _ in range(10)]
            pipe = c._pipelines[by_id[lead_id]]
            while pipe._queue or pipe.messages_sent < 2:  # wait until the calls are written
                await asyncio.sleep(0.005)
            assert not any(t.done() for t in writes + reads), "the calls were in flight"
            pid = cluster.node(lead_id).running_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert await asyncio.gather(*writes) == [None] * 10, "every write finished on the new leader"
            assert await asyncio.gather(*reads) == [b"1"] * 10
            on_dead = [(w, e) for a, w, e in c.failures if a == by_id[lead_id]]
            lost_writes = [e for w, e in on_dead if w and "cannot reach" not in str(e)]
            lost_reads = [e for w, e in on_dead if not w and "cannot reach" not in str(e)]
            assert len(lost_writes) == 10 and all(type(e) is errors.OutcomeUnknown for e in lost_writes), on_dead
            assert len(lost_reads) == 10 and all(type(e) is errors.Unavailable for e in lost_reads), on_dead
            refused = [e for _, e in on_dead if "cannot reach" in str(e)]
            assert all(type(e) is errors.Unavailable and e.definite for e in refused), "later tries: refused"
            # The dead node's address now refuses connections: definite, even for a write.
            req = kv_pb2.PutRequest(key=b"x", value=b"y")
            with pytest.raises(errors.Unavailable, match="cannot reach") as info:
                await c._attempt(by_id[lead_id], lambda stub, t: stub.Put(req, timeout=t), 2.0, write=True)
            assert info.value.definite

    asyncio.run(run())
