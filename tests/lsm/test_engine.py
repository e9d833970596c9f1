"""The engine's public API: reads, writes, scans, limits, lifecycle, checkpoint, stats, threads."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kvstore.errors import (
    BatchTooLargeError,
    ClosedError,
    InvalidArgument,
    KeyTooLargeError,
    KVError,
    ValueTooLargeError,
)
from kvstore.fs import SimFileSystem, SimulatedCrash
from kvstore.limits import MAX_BATCH_OPS, MAX_ENGINE_KEY_BYTES, MAX_VALUE_BYTES
from kvstore.lsm import Engine, WriteBatch
from kvstore.lsm.testing import TINY_OPTIONS


def _fill(db: Engine, rng: random.Random, n: int, model: dict[bytes, bytes]) -> None:
    for _ in range(n):
        k = b"k%05d" % rng.randrange(n)
        if rng.random() < 0.2:
            db.delete(k)
            model.pop(k, None)
        else:
            v = rng.randbytes(rng.randrange(1, 30))
            db.put(k, v)
            model[k] = v


def test_put_get_delete_round_trip(tmp_path: Path) -> None:
    """A put is readable, a delete hides it, an absent key reads as None."""
    with Engine.open(str(tmp_path / "db")) as db:
        db.put(b"a", b"1")
        assert db.get(b"a") == b"1"
        db.put(b"a", b"")
        assert db.get(b"a") == b""
        db.delete(b"a")
        assert db.get(b"a") is None
        assert db.get(b"never") is None


def test_write_batch_applies_all_operations(sim_fs: SimFileSystem) -> None:
    """A batch's puts and deletes all take effect; the last operation on a key wins."""
    with Engine.open("/db", fs=sim_fs) as db:
        db.put(b"gone", b"x")
        batch = WriteBatch().put(b"a", b"1").put(b"b", b"2").delete(b"gone").put(b"a", b"3")
        assert len(batch) == 3
        db.write(batch, sync=True)
        assert dict(db.scan()) == {b"a": b"3", b"b": b"2"}


def test_scan_bounds_reverse_and_limit_across_levels(sim_fs: SimFileSystem, seed: int) -> None:
    """Scans over memtable and several table levels honour [start, end), reverse and limit."""
    rng = random.Random(seed)
    model: dict[bytes, bytes] = {}
    with Engine.open("/db", fs=sim_fs, **TINY_OPTIONS) as db:
        _fill(db, rng, 400, model)
        assert sum(lv.files for lv in db.stats().levels[1:]) > 0
        items = sorted(model.items())
        for _ in range(40):
            a, b = sorted([b"k%05d" % rng.randrange(400), b"k%05d" % rng.randrange(400)])
            limit = rng.choice([None, 0, 1, 5, 1000])
            want = [kv for kv in items if a <= kv[0] < b]
            assert list(db.scan(a, b, limit=limit)) == want[:limit]
            assert list(db.scan(a, b, reverse=True, limit=limit)) == want[::-1][:limit]
        assert list(db.scan(b"k00100", b"k00100")) == []
        assert list(db.scan(end=b"k00010")) == [kv for kv in items if kv[0] < b"k00010"]
        assert list(db.scan(start=b"k00390", reverse=True)) == [kv for kv in items if kv[0] >= b"k00390"][::-1]


def test_limits_are_enforced_with_typed_errors(sim_fs: SimFileSystem) -> None:
    """Oversized keys, values and batches and wrong types are refused with typed KVErrors."""
    with Engine.open("/db", fs=sim_fs) as db:
        with pytest.raises(KeyTooLargeError):
            db.put(b"k" * (MAX_ENGINE_KEY_BYTES + 1), b"v")
        with pytest.raises(ValueTooLargeError):
            db.put(b"k", b"v" * (MAX_VALUE_BYTES + 1))
        with pytest.raises(InvalidArgument):
            db.put(b"", b"v")
        with pytest.raises(InvalidArgument):
            db.get("text")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            db.scan(limit=-1)
        batch = WriteBatch()
        for i in range(MAX_BATCH_OPS + 1):
            batch.put(b"%d" % i, b"")
        with pytest.raises(BatchTooLargeError):
            db.write(batch)
        assert db.get(b"0") is None


def test_unknown_option_is_invalid_argument(tmp_path: Path) -> None:
    """Engine.open refuses option names it does not know and values that cannot work."""
    with pytest.raises(InvalidArgument, match="bogus"):
        Engine.open(str(tmp_path), bogus=1)
    with pytest.raises(InvalidArgument):
        Engine.open(str(tmp_path), sync="sometimes")


def test_operations_after_close_raise_closed_error(sim_fs: SimFileSystem) -> None:
    """After close every operation raises ClosedError; close is idempotent."""
    db = Engine.open("/db", fs=sim_fs)
    db.close()
    db.close()
    for call in (lambda: db.get(b"a"), lambda: db.put(b"a", b"b"), lambda: db.scan(), db.flush, db.stats):
        with pytest.raises(ClosedError):
            call()


def test_reopen_recovers_from_wal_and_tables(tmp_path: Path, seed: int) -> None:
    """Data written in one session (some flushed, some only in the WAL) is all there after reopening."""
    rng = random.Random(seed)
    model: dict[bytes, bytes] = {}
    path = str(tmp_path / "db")
    opts = {**TINY_OPTIONS, "background": True, "sync": "never"}
    with Engine.open(path, **opts) as db:
        _fill(db, rng, 300, model)
    with Engine.open(path, **opts) as db:
        assert dict(db.scan()) == model
        db.check_invariants()


def test_compact_moves_everything_to_one_level_and_drops_tombstones(sim_fs: SimFileSystem, seed: int) -> None:
    """A full compaction leaves one level, no tombstones, and the same contents."""
    rng = random.Random(seed)
    model: dict[bytes, bytes] = {}
    with Engine.open("/db", fs=sim_fs, **TINY_OPTIONS) as db:
        _fill(db, rng, 400, model)
        db.compact()
        stats = db.stats()
        assert [lv.level for lv in stats.levels if lv.files] == [max(lv.level for lv in stats.levels if lv.files)]
        assert all(f.tombstones == 0 for _, f in db._version.files())
        assert dict(db.scan()) == model
        assert stats.compactions > 0 and stats.write_amplification > 1


def test_checkpoint_is_a_consistent_openable_copy(tmp_path: Path, seed: int) -> None:
    """A checkpoint holds every write made before it and none after, and opens on its own."""
    rng = random.Random(seed)
    model: dict[bytes, bytes] = {}
    with Engine.open(str(tmp_path / "db"), **{**TINY_OPTIONS, "sync": "never"}) as db:
        _fill(db, rng, 200, model)
        db.checkpoint(str(tmp_path / "snap"))
        db.put(b"after", b"checkpoint")
        with pytest.raises(InvalidArgument):
            db.checkpoint(str(tmp_path / "snap"))
    with Engine.open(str(tmp_path / "snap")) as snap:
        assert dict(snap.scan()) == model


def test_stats_report_levels_and_amplification(sim_fs: SimFileSystem, seed: int) -> None:
    """stats() counts user bytes, flushes and reads, and derives amplification figures from them."""
    rng = random.Random(seed)
    with Engine.open("/db", fs=sim_fs, **TINY_OPTIONS) as db:
        _fill(db, rng, 300, {})
        for i in range(300):
            db.get(b"k%05d" % i)
        s = db.stats()
        assert s.user_bytes_written > 0 and s.flushes > 0 and s.gets > 0
        assert s.write_amplification >= (s.wal_bytes_written + s.flush_bytes_written) / s.user_bytes_written - 1e-9
        assert s.read_amplification == s.tables_searched / s.gets
        assert s.table_bytes == sum(lv.bytes for lv in s.levels)


def test_sync_modes_control_wal_fsyncs(sim_fs: SimFileSystem) -> None:
    """'always' fsyncs each write, 'never' none unless asked, and write(sync=True) forces one."""
    with Engine.open("/a", fs=sim_fs, sync="always") as db:
        before = sim_fs.sync_count
        for i in range(10):
            db.put(b"%d" % i, b"v")
        assert sim_fs.sync_count - before == 10
    with Engine.open("/n", fs=sim_fs, sync="never") as db:
        before = sim_fs.sync_count
        for i in range(10):
            db.put(b"%d" % i, b"v")
        assert sim_fs.sync_count == before
        db.write(WriteBatch().put(b"x", b"y"), sync=True)
        assert sim_fs.sync_count == before + 1


def test_wal_disabled_keeps_data_only_through_flush_and_close(sim_fs: SimFileSystem) -> None:
    """Without a WAL a clean close flushes; after a crash only flushed data remains."""
    with Engine.open("/db", fs=sim_fs, wal_enabled=False) as db:
        db.put(b"a", b"1")
    db = Engine.open("/db", fs=sim_fs, wal_enabled=False)
    assert db.get(b"a") == b"1"
    db.put(b"b", b"2")
    db.flush()
    db.put(b"c", b"3")
    sim_fs.crash_now()
    with pytest.raises(SimulatedCrash):
        db.close()
    sim_fs.reboot()
    with Engine.open("/db", fs=sim_fs, wal_enabled=False) as db:
        assert dict(db.scan()) == {b"a": b"1", b"b": b"2"}


def test_readers_run_safely_during_background_compaction(tmp_path: Path, seed: int) -> None:
    """Concurrent scans and gets see correct data while a writer drives background flushes and compactions."""
    opts = {**TINY_OPTIONS, "background": True, "memtable_bytes": 16384, "sync": "never"}
    stable = {b"s%03d" % i: b"v%d" % i for i in range(100)}
    errors: list[BaseException] = []
    with Engine.open(str(tmp_path / "db"), **opts) as db:
        db.write(_batch(stable))
        done = threading.Event()

        def reader() -> None:
            try:
                while not done.is_set():
                    assert dict(db.scan(b"s", b"t")) == stable
                    assert db.get(b"s050") == b"v50"
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        rng = random.Random(seed)
        for i in range(1500):
            db.put(b"w%05d" % rng.randrange(1000), rng.randbytes(20))
            if i % 500 == 499:
                db.flush()
        done.set()
        for t in threads:
            t.join()
        stats = db.stats()
        db.check_invariants()
    assert not errors, errors
    assert stats.flushes > 3 and stats.compactions > 0


def test_l0_stall_blocks_writers_until_compaction_catches_up(sim_fs: SimFileSystem) -> None:
    """With compaction unable to run, a writer stalls at the L0 threshold instead of growing L0 without bound."""
    opts = {**TINY_OPTIONS, "background": True, "l0_compaction_trigger_files": 2, "l0_stall_files": 3}
    db = Engine.open("/db", fs=sim_fs, **opts)
    db._compact_lock.acquire()  # hold compaction off, as a slow compaction would
    writer_done = threading.Event()

    def writer() -> None:
        for i in range(400):
            db.put(b"k%04d" % i, b"x" * 40)
        writer_done.set()

    t = threading.Thread(target=writer)
    t.start()
    with db._cond:
        db._cond.wait_for(lambda: db._counters["stalls"] > 0 and len(db._version.levels[0]) >= 3)
    assert len(db._version.levels[0]) >= 3 and not writer_done.is_set()
    db._compact_lock.release()
    t.join()
    assert writer_done.is_set() and db.get(b"k0399") == b"x" * 40
    assert max(3, len(db._version.levels[0])) <= opts["l0_stall_files"] + 1
    db.close()


def _batch(items: dict[bytes, bytes]) -> WriteBatch:
    b = WriteBatch()
    for k, v in items.items():
        b.put(k, v)
    return b


def test_every_error_escaping_the_api_is_a_kverror(sim_fs: SimFileSystem) -> None:
    """Bad inputs of every public method raise KVError subclasses, never other exceptions."""
    with Engine.open("/db", fs=sim_fs) as db:
        bad_calls: list[Callable[[], object]] = [
            lambda: db.put(b"k", "v"),  # type: ignore[arg-type]
            lambda: db.delete(None),  # type: ignore[arg-type]
            lambda: db.write([("k", "v")]),  # type: ignore[arg-type]
            lambda: db.scan(start="a"),  # type: ignore[arg-type]
            lambda: db.scan(limit=1.5),  # type: ignore[arg-type]
        ]
        for call in bad_calls:
            with pytest.raises(KVError):
                call()


def test_engine_hashes_keys_as_the_bloom_filters_do(seed: int) -> None:
    """Engine.get's inlined hash is bloom.key_hash, so its probes test the bits the filters set."""
    from kvstore.lsm import engine
    from kvstore.lsm.bloom import key_hash

    rng = random.Random(seed)
    keys = [rng.randbytes(rng.randrange(1, 40)) for _ in range(200)]
    assert [engine._key_hash(k) for k in keys] == [key_hash(k) for k in keys]


def test_reads_skip_tables_whose_key_range_misses_the_key(sim_fs: SimFileSystem) -> None:
    """A key outside a table's [smallest, largest] is answered without probing that table's filter."""
    with Engine.open("db", fs=sim_fs, **TINY_OPTIONS) as db:
        for i in range(40):
            db.put(b"m%03d" % i, b"v")
        db.flush()
        before = db.stats()
        assert before.table_bytes > 0
        assert [db.get(k) for k in (b"a", b"z", b"m", b"m039\x00")] == [None] * 4
        after = db.stats()
        assert after.bloom_negatives == before.bloom_negatives and after.tables_searched == before.tables_searched
        assert db.get(b"m007") == b"v" and db.get(b"m0071") is None
        assert db.stats().gets == after.gets + 2
