"""A real 3-node Raft cluster of `kv node` processes on loopback.

Few tests, each bounded in time, and the cluster is always brought down (escalating to
SIGKILL). Faults are real: SIGKILL of a process, and partitions through the node's
transport fault seam (the InjectFaults admin RPC, enabled in these configs only).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kvstore import errors
from kvstore.client.client import Client, ClientOptions
from kvstore.server.local_cluster import LocalCluster, create_cluster, running_cluster
from kvstore.types import NodeStatus
from kvstore.wire import kv_pb2, kv_pb2_grpc

pytestmark = pytest.mark.process

FAST_RAFT = """
[raft]
tick_ms = 20
election_timeout_ticks = 10
heartbeat_ticks = 2
snapshot_threshold_entries = 200

[testing]
allow_fault_injection = true
"""

OPTS = ClientOptions(request_timeout_s=2.0, deadline_s=20.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path / "kv", extra_config=FAST_RAFT) as local:
        yield local


def leader(cluster: LocalCluster, *, timeout_s: float = 20.0, exclude: str | None = None) -> NodeStatus:
    """The node that leads in the highest term (polling, bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = [r for r in cluster.status() if r.role == "leader" and r.node_id != exclude]
        if rows:
            return max(rows, key=lambda r: r.term)
        time.sleep(0.05)
    raise AssertionError(f"no leader within {timeout_s}s: {cluster.status()}")


def address(cluster: LocalCluster, node_id: str) -> str:
    return cluster.node(node_id).spec.address


def inject(cluster: LocalCluster, node_id: str, isolate_from: list[str]) -> int:
    with grpc.insecure_channel(address(cluster, node_id)) as ch:
        r = kv_pb2_grpc.KVStub(ch).InjectFaults(kv_pb2.InjectFaultsRequest(isolate_from=isolate_from), timeout=5)
    assert not r.HasField("error"), r.error.message
    return r.dropped_messages


def wait_applied(cluster: LocalCluster, node_id: str, index: int, timeout_s: float = 30.0) -> NodeStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = next(r for r in cluster.status() if r.node_id == node_id)
        if row.applied_index >= index:
            return row
        time.sleep(0.05)
    raise AssertionError(f"{node_id} did not reach applied index {index}")


def test_a_three_node_cluster_elects_one_leader_and_serves_reads_and_writes(cluster: LocalCluster) -> None:
    """One leader per term; writes are acknowledged and replicated to every node."""
    lead = leader(cluster)
    with Client(cluster.map, options=OPTS) as c:
        for i in range(20):
            assert c.put(b"k%02d" % i, b"v%d" % i) is None
        assert c.get(b"k07") == b"v7"
        assert c.delete(b"k00") is True
        assert c.cas(b"k01", b"v1", b"one").swapped
        assert [k for k, _ in c.scan(limit=3)] == [b"k01", b"k02", b"k03"]
    rows = cluster.status()
    assert sum(r.role == "leader" for r in rows) == 1 and lead.node_id in {r.node_id for r in rows}
    target = max(r.applied_index for r in rows)
    for r in rows:
        assert wait_applied(cluster, r.node_id, target).keys == 19


def test_killing_the_leader_elects_a_new_one_and_loses_no_acknowledged_write(cluster: LocalCluster) -> None:
    """SIGKILL the leader: the others elect a leader that serves writes, and every acked write is there."""
    old = leader(cluster)
    acked: dict[bytes, bytes] = {}
    with Client(cluster.map, options=OPTS) as c:
        for i in range(30):
            c.put(b"before%02d" % i, b"%d" % i)
            acked[b"before%02d" % i] = b"%d" % i
        killed_pid = cluster.kill(old.node_id)
        assert cluster.node(old.node_id).running_pid() is None, f"pid {killed_pid} is gone"
        started = time.monotonic()
        c.put(b"after", b"x")  # retried by the client until the new leader accepts it
        failover_s = time.monotonic() - started
        acked[b"after"] = b"x"
        new = leader(cluster, exclude=old.node_id)
        assert new.node_id != old.node_id and new.term > old.term
        assert failover_s < 15, f"failover took {failover_s:.1f}s"
        for key, value in acked.items():
            assert c.get(key) == value


def test_a_restarted_old_leader_catches_up_by_log_and_then_by_snapshot(cluster: LocalCluster) -> None:
    """A killed leader that missed a few writes replays the log; one that missed many gets a snapshot."""
    with Client(cluster.map, options=OPTS) as c:
        first = leader(cluster).node_id
        cluster.kill(first)
        for i in range(20):
            c.put(b"a%02d" % i, b"x")
        cluster.restart(first)
        new = leader(cluster, exclude=first)
        target = next(r for r in cluster.status() if r.node_id == new.node_id).applied_index
        assert wait_applied(cluster, first, target).keys == 20
        second = leader(cluster).node_id
        cluster.kill(second)
        for i in range(450):  # past snapshot_threshold_entries twice: the new leader compacts its log
            c.put(b"b%03d" % i, b"y")
        lead_row = leader(cluster, exclude=second)
        cluster.restart(second)
        row = wait_applied(cluster, second, lead_row.applied_index)
        assert row.keys == 470
    trace = (cluster.node(second).folder / "data" / "trace.jsonl").read_text()
    assert "snapshot_installed" in trace, "the second catch-up really used a snapshot"


def test_a_partitioned_leader_cannot_commit_while_the_majority_can(cluster: LocalCluster) -> None:
    """Cut the leader off (both directions): its writes stall; the other two elect a leader and commit."""
    old = leader(cluster)
    others = [n for n in cluster.nodes if n != old.node_id]
    for n in others:
        inject(cluster, n, [old.node_id])
    inject(cluster, old.node_id, others)
    one_shot = ClientOptions(request_timeout_s=1.0, deadline_s=1.0)
    old_only = cluster.map.__class__([cluster.map.shards[0].__class__("s0", [cluster.node(old.node_id).spec])])
    with Client(old_only, options=one_shot) as c, pytest.raises((errors.OutcomeUnknown, errors.NotLeaderError)):
        c.put(b"minority", b"lost?")
    new = leader(cluster, exclude=old.node_id)
    with Client(cluster.map, options=OPTS) as c:
        c.put(b"majority", b"ok")
        assert c.get(b"majority") == b"ok"
    assert inject(cluster, old.node_id, []) > 0, "messages really were dropped"
    for n in others:
        inject(cluster, n, [])
    with Client(cluster.map, options=OPTS) as c:
        assert c.get(b"majority") == b"ok"
        assert c.get(b"minority") is None, "the minority leader's write never committed"
    assert new.term > old.term


def test_a_retried_write_with_the_same_session_is_applied_once(cluster: LocalCluster) -> None:
    """Re-sending a put with its original (client_id, seq) returns the original answer and changes nothing."""
    lead = leader(cluster)
    with grpc.insecure_channel(address(cluster, lead.node_id)) as ch:
        stub = kv_pb2_grpc.KVStub(ch)
        first = kv_pb2.PutRequest(key=b"k", value=b"v1", session=kv_pb2.Session(client_id=42, seq=1))
        assert not stub.Put(first, timeout=10).had_previous
        second = kv_pb2.PutRequest(key=b"k", value=b"v2", session=kv_pb2.Session(client_id=42, seq=2))
        assert stub.Put(second, timeout=10).previous == b"v1"
        retry = stub.Put(first, timeout=10)
        assert not retry.HasField("error") and not retry.had_previous, "answered with the first reply"
        assert stub.Get(kv_pb2.GetRequest(key=b"k"), timeout=10).value == b"v2", "not applied a second time"


def test_graceful_shutdown_finishes_accepted_writes_and_refuses_new_ones(cluster: LocalCluster) -> None:
    """SIGTERM to a follower: it exits 0; the cluster keeps serving with the other two."""
    lead = leader(cluster)
    follower = next(n for n in cluster.nodes if n != lead.node_id)
    cluster.stop(follower)
    assert "stopped" in cluster.node(follower).process().log_tail()
    with Client(cluster.map, options=OPTS) as c:
        c.put(b"still", b"serving")
        assert c.get(b"still") == b"serving"


def test_garbage_and_stale_peer_messages_cannot_crash_a_node(cluster: LocalCluster) -> None:
    """Malformed Raft requests are refused per call; a stale-term append is answered; the node keeps serving."""
    from kvstore.wire import raft_pb2, raft_pb2_grpc

    lead = leader(cluster)
    victim = next(n for n in cluster.nodes if n != lead.node_id)
    with grpc.insecure_channel(address(cluster, victim)) as ch:
        stub = raft_pb2_grpc.RaftStub(ch)
        bad_entry = raft_pb2.AppendEntriesRequest(
            term=lead.term, leader_id=lead.node_id, to=victim, entries=[raft_pb2.Entry(term=1, index=1, type=99)]
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.AppendEntries(bad_entry, timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        stale = raft_pb2.AppendEntriesRequest(term=0, leader_id=lead.node_id, to=victim, prev_log_index=10**9)
        reply = stub.AppendEntries(stale, timeout=5)
        assert (reply.success, reply.term) == (False, lead.term), "a stale leader is told the current term"
        junk_chunk = raft_pb2.InstallSnapshotChunk(
            term=lead.term, leader_id=lead.node_id, to=victim, data=b"x", checksum=1, done=False
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.InstallSnapshot(iter([junk_chunk]), timeout=5)
        assert info.value.code() == grpc.StatusCode.DATA_LOSS
        import zlib

        cut_short = raft_pb2.InstallSnapshotChunk(term=lead.term, leader_id=lead.node_id, to=victim, data=b"\x00\x01",
                                                  checksum=zlib.crc32(b"\x00\x01"), done=False)
        with pytest.raises(grpc.RpcError) as info:
            stub.InstallSnapshot(iter([cut_short]), timeout=5)  # the stream ends without its last chunk
        assert info.value.code() == grpc.StatusCode.DATA_LOSS and "incomplete" in (info.value.details() or "")
    assert cluster.is_running(victim)
    with Client(cluster.map, options=OPTS) as c:
        c.put(b"after-garbage", b"fine")
    row = wait_applied(cluster, victim, next(r for r in cluster.status() if r.node_id == lead.node_id).applied_index)
    assert row.role == "follower" and row.term == lead.term, "the stale message changed nothing"


def test_shutting_down_the_leader_answers_every_accepted_write(cluster: LocalCluster) -> None:
    """SIGTERM the leader amid concurrent writes: each write gets an answer, and every acked write survives."""
    import asyncio
    import os
    import signal

    from kvstore.client.client import AsyncClient

    lead = leader(cluster)
    outcomes: dict[bytes, str] = {}

    async def run() -> None:
        async with AsyncClient(cluster.map, options=OPTS) as c:

            async def one(i: int) -> None:
                key = b"w%03d" % i
                try:
                    await c.put(key, b"v")
                    outcomes[key] = "ok"
                except errors.KVError as exc:
                    outcomes[key] = type(exc).__name__

            tasks = [asyncio.ensure_future(one(i)) for i in range(60)]
            await asyncio.sleep(0.05)
            pid = cluster.node(lead.node_id).running_pid()
            assert pid is not None
            os.kill(pid, signal.SIGTERM)
            await asyncio.gather(*tasks)

    asyncio.run(run())
    assert len(outcomes) == 60, "every write got an answer"
    acked = [k for k, v in outcomes.items() if v == "ok"]
    assert acked, f"some writes succeeded: {outcomes}"
    assert cluster.wait_exit(lead.node_id, timeout_s=15) == 0, "the leader shut down cleanly"
    assert "stopped" in cluster.node(lead.node_id).process().log_tail(3)
    with Client(cluster.map, options=OPTS) as c:
        for key in acked:
            assert c.get(key) == b"v"


def test_power_loss_of_every_node_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """Cut the power to all three nodes at once: unsynced bytes vanish, yet every acked write is there after."""
    extra = FAST_RAFT.replace("[testing]", "[testing]\npower_loss_journal = true")
    local = LocalCluster(create_cluster(tmp_path / "kv", shards=1, replicas=3, extra_config=extra))
    try:
        local.up(timeout_s=60)
        with Client(local.map, options=OPTS) as c:
            acked = {}
            for i in range(120):
                c.put(b"p%03d" % i, b"%d" % i)
                acked[b"p%03d" % i] = b"%d" % i
        reports = [local.power_loss(n) for n in list(local.nodes)]
        assert sum(r.bytes_dropped for r in reports) > 0, f"unsynced bytes really were lost: {reports}"
        for n in local.nodes:
            local.restart(n)
        local.wait_for_leaders(timeout_s=30)
        with Client(local.map, options=OPTS) as c:
            missing = [k for k, v in acked.items() if c.get(k) != v]
        assert not missing, f"acknowledged writes lost: {missing[:5]}"
    finally:
        local.down()


def test_a_request_abandoned_while_queued_does_not_break_the_node(tmp_path: Path) -> None:
    """A client that gives up before the node loop reaches its request must not crash the loop.

    The node has a peer that never answers, so it cannot lead: the loop refuses each
    proposal with NotLeaderError, and must not try to do so on an abandoned request.
    """
    import asyncio

    from kvstore.config import NodeConfig, NodeSection, PeerConfig, RaftConfig
    from kvstore.server.launcher import free_port
    from kvstore.server.runtime import RaftNode
    from kvstore.server.state_machine import Command

    async def run() -> None:
        cfg = NodeConfig(
            NodeSection("n1", "127.0.0.1:1", str(tmp_path / "n1")),
            peers=[PeerConfig("n2", f"127.0.0.1:{free_port()}")],
            raft=RaftConfig(tick_ms=10),
        )
        node = RaftNode(cfg)
        await node.start()
        try:
            doomed = asyncio.ensure_future(node.propose(Command("put", b"k", b"v")))
            await asyncio.sleep(0)  # queued in the inbox...
            doomed.cancel()  # ...and abandoned before the loop takes it
            with pytest.raises(errors.NotLeaderError):
                await asyncio.wait_for(node.propose(Command("put", b"k", b"w")), 5)
            await asyncio.sleep(0.05)
            assert node.failure is None, f"the node loop failed: {node.failure!r}"
        finally:
            await node.stop(1.0)

    asyncio.run(run())


def test_a_leader_whose_clock_is_slowed_loses_leadership(cluster: LocalCluster) -> None:
    """Clock skew through the fault seam: a leader ticking 10x slower misses heartbeats and is replaced."""
    old = leader(cluster)
    with grpc.insecure_channel(address(cluster, old.node_id)) as ch:
        stub = kv_pb2_grpc.KVStub(ch)
        refused = stub.InjectFaults(kv_pb2.InjectFaultsRequest(tick_scale=50.0), timeout=5)
        assert refused.HasField("error") and "tick_scale" in refused.error.message
        stub.InjectFaults(kv_pb2.InjectFaultsRequest(tick_scale=10.0), timeout=5)
    new = leader(cluster, exclude=old.node_id, timeout_s=30)
    assert new.term > old.term, "the skew took effect: the others elected a new leader"
    with Client(cluster.map, options=OPTS) as c:
        c.put(b"skewed", b"ok")
        assert c.get(b"skewed") == b"ok"
