"""Hidden tests of the lsm-memtable-wal lab: the memtable and the WAL seen through the engine and the format spec.

Each test checks a contract from the handout or ``kvstore/lsm/FORMAT.md`` that a plausible student mistake
breaks: a tombstone read as "absent", an overwrite lost, a torn tail taken for damage, checksums not
checked, a snapshot of ``sorted_keys`` that changes under a reader, a record layout that is merely
self-consistent. Randomized tests run over fixed seeds and print them.
"""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from kvstore.errors import CorruptionError
from kvstore.fs import SimFileSystem
from kvstore.lsm import Engine
from kvstore.lsm.memtable import MISSING, Memtable
from kvstore.lsm.testing import DB_PATH, TINY_OPTIONS, acceptable_states, count_mutating_ops, run_crash_point
from kvstore.lsm.wal import encode_record, read_records

SEEDS = [3, 17, 29]
# A memtable big enough that nothing is flushed unless a test asks (so the memtable alone answers).
BIG_MEMTABLE = {**TINY_OPTIONS, "memtable_bytes": 1 << 20}


def test_a_delete_in_the_memtable_hides_an_older_value_in_a_table() -> None:
    """A key written, flushed to an SSTable, then deleted reads as absent: the memtable's tombstone is an answer."""
    fs = SimFileSystem(seed=1)
    with Engine.open(DB_PATH, fs=fs, **BIG_MEMTABLE) as db:
        db.put(b"gone", b"old")
        db.put(b"kept", b"v")
        db.flush()
        assert db.stats().levels[0].files >= 1, "the old value is in a table"
        db.delete(b"gone")
        assert db.get(b"gone") is None
        assert dict(db.scan()) == {b"kept": b"v"}
    with Engine.open(DB_PATH, fs=fs, **BIG_MEMTABLE) as db:  # the tombstone comes back from the WAL
        assert db.get(b"gone") is None and dict(db.scan()) == {b"kept": b"v"}


@pytest.mark.parametrize("seed", SEEDS)
def test_overwrites_and_deletes_before_a_flush_keep_the_newest_version(seed: int) -> None:
    """Many writes to few keys, all in the memtable: reads, a WAL replay and a flush all give the newest version."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    fs = SimFileSystem(seed=seed)
    model: dict[bytes, bytes] = {}
    with Engine.open(DB_PATH, fs=fs, **BIG_MEMTABLE) as db:
        for _ in range(300):
            key = b"k%02d" % rng.randrange(12)
            if rng.random() < 0.25:
                db.delete(key)
                model.pop(key, None)
            else:
                value = rng.randbytes(rng.randrange(1, 12))
                db.put(key, value)
                model[key] = value
        assert {k: db.get(k) for k in model} == model and dict(db.scan()) == model
    with Engine.open(DB_PATH, fs=fs, **BIG_MEMTABLE) as db:
        assert dict(db.scan()) == model, "replaying the WAL gives the newest versions"
        db.flush()
        assert dict(db.scan()) == model and all(db.get(k) == v for k, v in model.items())


def test_wal_records_follow_the_documented_layout_byte_for_byte() -> None:
    """encode_record writes FORMAT.md's little-endian layout, and read_records reads records built from the spec."""
    for payload in (b"", b"x", bytes(range(200))):
        head = struct.pack("<II", zlib.crc32(payload), len(payload))
        expected = head + struct.pack("<I", zlib.crc32(head)) + payload
        assert encode_record(payload) == expected
    heads = [(p, struct.pack("<II", zlib.crc32(p), len(p))) for p in (b"one", b"two!")]
    spec_built = b"".join(head + struct.pack("<I", zlib.crc32(head)) + p for p, head in heads)
    assert read_records(spec_built, "w") == ([b"one", b"two!"], len(spec_built))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_crash_that_tears_the_last_wal_write_recovers_every_acknowledged_write(seed: int) -> None:
    """Power loss in the middle of WAL appends (a prefix of the last write survives): the engine reopens with
    exactly the acknowledged writes, or those plus the one in flight."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    ops: list[tuple[object, ...]] = []
    for i in range(40):
        key = b"key%02d" % rng.randrange(15)
        ops.append(("delete", key) if rng.random() < 0.2 else ("put", key, rng.randbytes(rng.randrange(5, 60))))
        if i % 13 == 12:
            ops.append(("batch", [(b"b%d" % i, b"x" * 30), (key, None)]))
    total = count_mutating_ops(ops, seed=seed, options=BIG_MEMTABLE)
    torn = 0
    for point in range(3, total, max(1, total // 25)):
        outcome = run_crash_point(ops, point, seed=seed + point, tear=True, options=BIG_MEMTABLE)
        assert outcome.recovered in list(acceptable_states(outcome)), f"crash point {point}"
        torn += bool(outcome.report and outcome.report.torn_bytes)
    assert torn >= 3, "several crashes left a torn WAL tail"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_flipped_bit_in_any_complete_record_is_reported_as_corruption(seed: int) -> None:
    """Damage inside a complete record's payload (not a torn tail) raises CorruptionError naming that record."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    payloads = [rng.randbytes(rng.randrange(1, 80)) for _ in range(12)]
    records = [encode_record(p) for p in payloads]
    data = b"".join(records)
    for _ in range(20):
        victim = rng.randrange(len(records))
        start = sum(map(len, records[:victim]))
        header = len(records[victim]) - len(payloads[victim])
        pos = start + header + rng.randrange(len(payloads[victim]))
        damaged = bytearray(data)
        damaged[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(CorruptionError) as exc:
            read_records(bytes(damaged), "wal")
        assert exc.value.offset == start


@pytest.mark.parametrize("seed", SEEDS)
def test_a_sorted_keys_snapshot_never_changes_while_writers_add_keys(seed: int) -> None:
    """Every list sorted_keys returned stays exactly as it was returned, while later calls see the new keys."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    mem = Memtable(capacity_bytes=1 << 20)
    snapshots: list[tuple[list[bytes], list[bytes]]] = []
    for _ in range(30):
        for _ in range(rng.randrange(1, 8)):
            mem.put(rng.randbytes(3), None if rng.random() < 0.2 else b"v")
        keys = mem.sorted_keys()
        snapshots.append((keys, list(keys)))
        assert keys == sorted(set(keys)) and len(keys) == len(mem)
    for returned, copy in snapshots:
        assert returned == copy, "a snapshot handed out earlier changed"
    assert mem.get(b"\xff\xff\xff\xff") is MISSING
