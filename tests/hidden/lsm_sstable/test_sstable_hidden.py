"""Hidden tests of the lsm-sstable lab: tables, bloom filters and merging, against models written from the spec.

Mistakes they look for: a bloom filter that says "no" for a key it holds, a tombstone in a table read as
"not here" (so an older table's value shows through), a table index that misses the last key of a block,
scans that include their end key, and sources merged with the wrong one winning (L0 read oldest first).
Randomized tests run over fixed seeds and print them.
"""

from __future__ import annotations

import random

import pytest

from kvstore.fs import SimFileSystem
from kvstore.lsm import Engine
from kvstore.lsm.bloom import build_filter, key_hash, may_contain
from kvstore.lsm.cache import BlockCache
from kvstore.lsm.memtable import MISSING
from kvstore.lsm.sstable import TableBuilder, TableReader
from kvstore.lsm.testing import DB_PATH, TINY_OPTIONS

SEEDS = [5, 19, 31]
Items = list[tuple[bytes, bytes | None]]


def write_table(fs: SimFileSystem, path: str, items: Items, *, block_size: int = 96, chunk: int = 5) -> TableReader:
    """Build a table of sorted ``items`` (added ``chunk`` at a time) and open it."""
    f = fs.open_write(path)
    builder = TableBuilder(f, block_size_bytes=block_size, bloom_bits_per_key=10)
    for i in range(0, len(items), chunk):
        part = items[i : i + chunk]
        builder.add_many([k for k, _ in part], [v for _, v in part])
    builder.finish()
    f.sync()
    f.close()
    return TableReader(fs, path, 1, BlockCache(capacity_bytes=0))


def random_items(rng: random.Random, n: int) -> Items:
    keys = sorted({rng.randbytes(rng.randrange(1, 10)) for _ in range(n)})
    return [(k, None if rng.random() < 0.2 else rng.randbytes(rng.randrange(0, 30))) for k in keys]


@pytest.mark.parametrize("bits_per_key", [1, 4, 10, 20])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_bloom_filter_never_rejects_a_key_it_holds(seed: int, bits_per_key: int) -> None:
    """No false negatives, for every filter size: each inserted key's hash passes may_contain."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    for n in (1, 7, 300):
        keys = [rng.randbytes(rng.randrange(1, 20)) for _ in range(n)]
        filt = build_filter(keys, bits_per_key)
        missed = [k for k in keys if not may_contain(filt, key_hash(k))]
        assert not missed, f"{len(missed)} of {n} inserted keys rejected (bits_per_key={bits_per_key})"


def test_a_tombstone_in_a_newer_table_hides_the_value_in_an_older_one() -> None:
    """A table lookup of a tombstoned key answers None (not MISSING); through the engine the key stays deleted
    while the older value still sits in an older table."""
    fs = SimFileSystem(seed=2)
    fs.make_dirs("/t")
    reader = write_table(fs, "/t/1.sst", [(b"a", b"1"), (b"dead", None), (b"z", b"26")])
    assert reader.lookup(b"dead") is None and reader.get(b"dead", key_hash(b"dead")) is None
    assert reader.lookup(b"absent") is MISSING
    options = {**TINY_OPTIONS, "memtable_bytes": 1 << 20, "l0_compaction_trigger_files": 8, "l0_stall_files": 12}
    with Engine.open(DB_PATH, fs=fs, **options) as db:
        db.put(b"dead", b"old value")
        db.put(b"other", b"x")
        db.flush()
        db.delete(b"dead")
        db.flush()  # the tombstone is now in a newer table than the value
        assert db.stats().levels[0].files == 2
        assert db.get(b"dead") is None and dict(db.scan()) == {b"other": b"x"}


@pytest.mark.parametrize("seed", SEEDS)
def test_every_key_of_a_multi_block_table_is_found_including_block_boundaries(seed: int) -> None:
    """Each key (the first and last of every block included) is found with its value; keys between are MISSING."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    fs = SimFileSystem(seed=seed)
    fs.make_dirs("/t")
    items = random_items(rng, 400)
    reader = write_table(fs, "/t/1.sst", items, block_size=64, chunk=rng.randrange(1, 9))
    assert reader.block_count > 10
    for key, value in items:
        assert reader.get(key, key_hash(key)) == value, key
    present = {k for k, _ in items}
    for key, _ in items[:-1]:
        probe = key + b"\x00"
        if probe not in present:
            assert reader.lookup(probe) is MISSING


@pytest.mark.parametrize("seed", SEEDS)
def test_table_scans_are_half_open_in_both_directions(seed: int) -> None:
    """chunks(start, end) never yields ``end`` itself (nor anything outside [start, end)), both directions."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    fs = SimFileSystem(seed=seed)
    fs.make_dirs("/t")
    items = random_items(rng, 300)
    reader = write_table(fs, "/t/1.sst", items)
    keys = [k for k, _ in items]
    for _ in range(40):
        start, end = sorted(rng.sample(keys, 2))
        expect = [(k, v) for k, v in items if start <= k < end]
        forward = [kv for ks, vs in reader.chunks(start, end) for kv in zip(ks, vs, strict=True)]
        backward = [kv for ks, vs in reversed(list(reader.chunks(start, end, reverse=True)))
                    for kv in zip(ks, vs, strict=True)]
        assert forward == expect and backward == expect, (start, end)


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_reads_agree_with_a_model_across_memtable_and_overlapping_l0_tables(seed: int) -> None:
    """Overwrites and deletes spread over several overlapping L0 tables and the memtable: get and scan (both
    directions) always return the newest version, as a dict model says."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    options = {**TINY_OPTIONS, "memtable_bytes": 1 << 20, "l0_compaction_trigger_files": 50, "l0_stall_files": 60}
    model: dict[bytes, bytes] = {}
    with Engine.open(DB_PATH, fs=SimFileSystem(seed=seed), **options) as db:
        for round_ in range(6):
            for _ in range(60):
                key = b"k%03d" % rng.randrange(80)
                if rng.random() < 0.3:
                    db.delete(key)
                    model.pop(key, None)
                else:
                    model[key] = b"%d-" % round_ + rng.randbytes(4)
                    db.put(key, model[key])
            if round_ < 5:
                db.flush()
        assert db.stats().levels[0].files == 5, "the data is spread over overlapping L0 tables"
        for i in range(80):
            key = b"k%03d" % i
            assert db.get(key) == model.get(key), key
        assert list(db.scan()) == sorted(model.items())
        assert list(db.scan(b"k010", b"k050", reverse=True)) == sorted(
            ((k, v) for k, v in model.items() if b"k010" <= k < b"k050"), reverse=True)
