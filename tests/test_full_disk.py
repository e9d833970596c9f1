"""A full disk: every store refuses writes with a typed error, and loses nothing it acknowledged.

Three levels. The LSM engine and the Raft log run on :class:`~kvstore.fs.FullDiskFileSystem`
over the simulated disk, which makes the write that does not fit leave a *partial* record
behind, as a real short write followed by ENOSPC does. The last test is a real 3-node cluster
whose node processes run under a small file-size limit (RLIMIT_FSIZE: a write past it fails
with EFBIG, an OSError like ENOSPC): the cluster stops taking writes with a clear error and,
restarted without the limit, still holds every acknowledged write.

Randomized tests print their seed; ``KVSTORE_SEED`` replays one.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import time
from pathlib import Path

import pytest

from kvstore import errors
from kvstore.client.client import Client, ClientOptions
from kvstore.fs import FullDiskFileSystem, SimFileSystem
from kvstore.lsm import Engine
from kvstore.raft.messages import Entry, HardState
from kvstore.server.local_cluster import LocalCluster, create_cluster
from kvstore.server.raft_log import DurableRaftLog

SEEDS = [int(os.environ["KVSTORE_SEED"])] if "KVSTORE_SEED" in os.environ else list(range(1, 9))


def _rng(seed: int) -> random.Random:
    print(f"seed {seed} (replay with KVSTORE_SEED={seed})")
    return random.Random(seed)


def _fill_until_full(engine: Engine, rng: random.Random, acked: dict[bytes, bytes], *, puts: int) -> int:
    """Put random keys; keep the acknowledged ones in ``acked``; return how many puts were refused."""
    refused = 0
    for _ in range(puts):
        key, value = rng.randbytes(8), rng.randbytes(rng.randrange(1, 300))
        try:
            engine.put(key, value)
        except errors.StorageError:
            refused += 1
            continue
        acked[key] = value
    return refused


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_on_a_full_disk_refuses_writes_and_keeps_every_acknowledged_one(seed: int) -> None:
    """Writes past the free space raise StorageError; reopened, and after a power cut, every acked write is there."""
    rng = _rng(seed)
    sim = SimFileSystem(seed=seed)
    fs = FullDiskFileSystem(sim, free_bytes=None)
    engine = Engine.open("/db", fs=fs, sync="always", memtable_bytes=64 * 1024)
    fs.set_free_bytes(rng.randrange(20_000, 1_000_000))
    acked: dict[bytes, bytes] = {}
    refused = _fill_until_full(engine, rng, acked, puts=6_000)
    assert fs.refusals >= 1 and refused >= 1, "the disk never filled up: the test proved nothing"
    assert acked, "nothing was written before the disk filled up"
    with pytest.raises(errors.StorageError):
        engine.put(b"after-full", b"x")
    with contextlib.suppress(errors.StorageError):  # the final WAL sync may find the disk still full
        engine.close()
    fs.set_free_bytes(None)
    with Engine.open("/db", fs=fs, sync="always", memtable_bytes=64 * 1024) as reopened:
        assert {k: reopened.get(k) for k in acked} == acked
    sim.reboot(tear=True)
    with Engine.open("/db", fs=fs, sync="always", memtable_bytes=64 * 1024) as rebooted:
        assert {k: rebooted.get(k) for k in acked} == acked


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_that_hit_a_full_disk_does_not_write_after_a_partial_record(seed: int) -> None:
    """Space freed while the engine is open: the engine must not append after the torn WAL record it left.

    A short write leaves part of a record in the WAL. An engine that kept appending after it
    would turn that torn tail into damage in the middle of the log, and reopening would then
    refuse the whole log (or lose the writes after it). Either the engine refuses writes
    until it is reopened, or it repairs the log; both are fine, losing acked writes is not.
    """
    rng = _rng(seed)
    sim = SimFileSystem(seed=seed)
    fs = FullDiskFileSystem(sim, free_bytes=None)
    engine = Engine.open("/db", fs=fs, sync="always", memtable_bytes=1024 * 1024)
    fs.set_free_bytes(rng.randrange(2_000, 100_000))
    acked: dict[bytes, bytes] = {}
    refused = _fill_until_full(engine, rng, acked, puts=2_000)
    assert fs.refusals >= 1 and refused >= 1, "the disk never filled up: the test proved nothing"
    fs.set_free_bytes(None)  # the operator frees space; the engine is still open
    refused_after = _fill_until_full(engine, rng, acked, puts=300)
    engine.close()
    with Engine.open("/db", fs=fs, sync="always", memtable_bytes=1024 * 1024) as reopened:
        assert {k: reopened.get(k) for k in acked} == acked
        reopened.put(b"after-repair", b"ok")
        assert reopened.get(b"after-repair") == b"ok"
    print(f"writes refused after space came back, before reopening: {refused_after} of 300")


def _entries(first: int, count: int, term: int, size: int) -> tuple[Entry, ...]:
    return tuple(Entry(term=term, index=i, data=b"x" * size) for i in range(first, first + count))


@pytest.mark.parametrize("seed", SEEDS)
def test_raft_log_on_a_full_disk_fails_stop_and_recovers_every_synced_entry(seed: int) -> None:
    """A Raft log that cannot write refuses later writes (the node must stop) and reopens with every synced entry."""
    rng = _rng(seed)
    sim = SimFileSystem(seed=seed)
    fs = FullDiskFileSystem(sim, free_bytes=None)
    log = DurableRaftLog.open("/raft", fs=fs, segment_bytes=rng.choice([4096, 64 * 1024]))
    log.set_hard_state(HardState(term=1, voted_for="n1", commit_index=0))
    log.sync()
    fs.set_free_bytes(rng.randrange(1_000, 200_000))
    synced = 0
    with pytest.raises(errors.StorageError):
        for _ in range(10_000):
            batch = _entries(synced + 1, rng.randrange(1, 20), 1, rng.randrange(1, 400))
            log.append(batch)
            log.sync()
            synced = batch[-1].index
    assert fs.refusals >= 1, "the disk never filled up"
    fs.set_free_bytes(None)
    with pytest.raises(errors.KVError):  # failed: it refuses to write again until reopened
        log.append(_entries(synced + 1, 1, 1, 10))
    log.close()
    reopened = DurableRaftLog.open("/raft", fs=fs)
    state = reopened.load()
    assert state.hard_state == HardState(term=1, voted_for="n1", commit_index=0)
    assert reopened.last_index() >= synced
    assert [e.index for e in state.entries[:synced]] == list(range(1, synced + 1))
    reopened.append(_entries(reopened.last_index() + 1, 1, 1, 10))
    reopened.sync()
    reopened.close()


# ---------------------------------------------------------------------------
# A real cluster whose disks fill up.
# ---------------------------------------------------------------------------

FILE_LIMIT_BYTES = 192 * 1024  # a Raft log segment or engine WAL reaches this after ~1,000 puts


def _start_with_file_limit(cluster: LocalCluster, limit_bytes: int) -> None:
    """Start every node with RLIMIT_FSIZE lowered to ``limit_bytes`` (the children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, hard))
    try:
        for node_id in cluster.nodes:
            cluster.start(node_id)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.process
@pytest.mark.slow
def test_cluster_whose_disks_fill_up_stops_cleanly_and_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    """Nodes whose files cannot grow stop with a one-line error; restarted, the cluster has every acked write."""
    cluster_file = create_cluster(
        tmp_path / "c", shards=1, replicas=3, extra_config="[raft]\ntick_ms = 20\n\n[trace]\nenabled = false\n"
    )
    cluster = LocalCluster(cluster_file)
    acked: dict[bytes, bytes] = {}
    failures: list[str] = []
    try:
        _start_with_file_limit(cluster, FILE_LIMIT_BYTES)
        cluster.wait_for_leaders(timeout_s=30)
        options = ClientOptions(request_timeout_s=1.0, deadline_s=3.0)
        stop_at = time.monotonic() + 60
        with Client(str(cluster_file), options=options) as client:
            for i in range(20_000):
                if time.monotonic() > stop_at or len(failures) >= 3:
                    break
                key, value = b"key-%06d" % i, b"v" * 100
                try:
                    client.put(key, value)
                except errors.KVError as e:
                    failures.append(f"{type(e).__name__}: {e}")
                    continue
                acked[key] = value
        assert failures, f"the disks never filled up ({len(acked)} puts acknowledged)"
        stopped = [n for n in cluster.nodes if cluster.wait_exit(n, timeout_s=10) is not None]
        assert stopped, "no node stopped although writes failed"
        for node_id in stopped:
            log = cluster.node(node_id).folder / "node.log"
            text = log.read_text(errors="replace")
            assert "failed" in text and "File too large" in text, text[-2000:]
            assert "Traceback" not in text, text[-2000:]
    finally:
        cluster.down()
    cluster = LocalCluster(cluster_file)
    try:
        cluster.up(timeout_s=60)
        with Client(str(cluster_file)) as client:
            missing = [k for k, v in acked.items() if client.get(k) != v]
            assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost, e.g. {missing[:3]}"
            client.put(b"after-restart", b"ok")
            assert client.get(b"after-restart") == b"ok"
    finally:
        cluster.down()
    print(f"acknowledged {len(acked)} puts before the disks filled; client errors: {failures}")


def test_the_full_disk_file_system_writes_the_prefix_that_fits_then_refuses() -> None:
    """The fault itself: a short write keeps the bytes that fit, raises StorageError, and counts the refusal."""
    sim = SimFileSystem()
    fs = FullDiskFileSystem(sim, free_bytes=10)
    fs.make_dirs("/d")
    f = fs.open_write("/d/f")
    f.write(b"12345")
    with pytest.raises(errors.StorageError, match="No space left on device"):
        f.write(b"6789abcdef")
    assert sim.read_file("/d/f") == b"123456789a"
    assert fs.refusals == 1
    fs.set_free_bytes(None)
    f.write(b"more")
    assert sim.read_file("/d/f") == b"123456789amore"
