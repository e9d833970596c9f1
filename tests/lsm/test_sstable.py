"""SSTables, bloom filters, the block cache and merging iterators."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.fs import SimFileSystem
from kvstore.lsm import sstable
from kvstore.lsm.bloom import build_filter, key_hash, may_contain, prepare_probe, probe_prepared
from kvstore.lsm.cache import BlockCache
from kvstore.lsm.iterators import Run, coalesce_runs, merge_runs
from kvstore.lsm.memtable import MISSING
from kvstore.lsm.sstable import TableBuilder, TableReader, decode_block, encode_block, seal_block


def _write_table(fs: SimFileSystem, path: str, items: list[tuple[bytes, bytes | None]], block_size: int = 128) -> None:
    f = fs.open_write(path)
    b = TableBuilder(f, block_size_bytes=block_size, bloom_bits_per_key=10)
    for i in range(0, len(items), 7):
        chunk = items[i : i + 7]
        b.add_many([k for k, _ in chunk], [v for _, v in chunk])
    b.finish()
    f.sync()
    f.close()


def _items(rng: random.Random, n: int) -> list[tuple[bytes, bytes | None]]:
    keys = sorted({rng.randbytes(rng.randrange(1, 12)) for _ in range(n)})
    return [(k, None if rng.random() < 0.2 else rng.randbytes(rng.randrange(0, 40))) for k in keys]


def test_block_round_trip_with_tombstones() -> None:
    """A block decodes to the same keys, values and tombstones it was built from."""
    keys = [b"a", b"bb", b"c"]
    values: list[bytes | None] = [b"1", None, b""]
    blk = decode_block(seal_block(encode_block(keys, values)), "t", 0)
    blk.check_invariants()
    assert blk.keys == keys and blk.values(0, 3) == values and blk.value_at(1) is None


ab_keys = st.text(alphabet="ab", min_size=1, max_size=4).map(str.encode)  # keys that overlap a lot


@settings(max_examples=200, deadline=None)
@given(st.sets(ab_keys, min_size=1, max_size=30), st.lists(ab_keys, max_size=10))
def test_block_find_in_raw_bytes_ignores_matches_that_straddle_keys(keys: set[bytes], probes: list[bytes]) -> None:
    """Searching an undecoded block finds each key at its index and nothing else, even when keys of
    a two-letter alphabet make a probe occur across key boundaries (and force the binary-search fallback)."""
    ordered = sorted(keys)
    raw_blk = decode_block(seal_block(encode_block(ordered, [b"v" + k for k in ordered])), "t", 0)
    for i, k in enumerate(ordered):
        fresh = decode_block(seal_block(encode_block(ordered, [b"v" + k for k in ordered])), "t", 0)
        assert fresh.find(k) == i and fresh.value_at(i) == b"v" + k
    for p in probes:
        expect = ordered.index(p) if p in keys else -1
        assert raw_blk.find(p) == expect
    assert raw_blk.find(b"") == -1  # no empty key was stored
    assert raw_blk.keys == ordered and [raw_blk.find(k) for k in ordered] == list(range(len(ordered)))


def test_table_point_lookups_and_misses(sim_fs: SimFileSystem, seed: int) -> None:
    """Every key is found with its value or tombstone; absent keys are MISSING."""
    rng = random.Random(seed)
    items = _items(rng, 600)
    sim_fs.make_dirs("/t")
    _write_table(sim_fs, "/t/1.sst", items)
    r = TableReader(sim_fs, "/t/1.sst", 1, BlockCache(capacity_bytes=4096))
    assert r.block_count > 10
    for k, v in items:
        assert r.get(k, key_hash(k)) == v
    present = {k for k, _ in items}
    for _ in range(300):
        k = rng.randbytes(13)
        if k not in present:
            assert r.get(k, key_hash(k)) is MISSING


def test_table_chunks_respect_bounds_both_directions(sim_fs: SimFileSystem, seed: int) -> None:
    """chunks(start, end) yields exactly the keys in [start, end), ascending or block-reversed."""
    rng = random.Random(seed)
    items = _items(rng, 400)
    sim_fs.make_dirs("/t")
    _write_table(sim_fs, "/t/1.sst", items)
    r = TableReader(sim_fs, "/t/1.sst", 1, BlockCache(capacity_bytes=0))
    keys = [k for k, _ in items]
    for _ in range(30):
        a, b = sorted(rng.sample(keys, 2))
        expect = [(k, v) for k, v in items if a <= k < b]
        fwd = [kv for ks, vs in r.chunks(a, b) for kv in zip(ks, vs, strict=True)]
        rev_runs = list(r.chunks(a, b, reverse=True))
        rev = [kv for ks, vs in reversed(rev_runs) for kv in zip(ks, vs, strict=True)]
        assert fwd == expect and rev == expect


def test_bloom_false_positive_rate_is_near_theory(seed: int) -> None:
    """With 10 bits per key the measured false-positive rate is about 1 % (theory 0.82 %), and no false negatives."""
    rng = random.Random(seed)
    keys = [rng.randbytes(16) for _ in range(5000)]
    f = build_filter(keys, 10)
    assert all(may_contain(f, key_hash(k)) for k in keys)
    probes = [rng.randbytes(16) for _ in range(20000)]
    rate = sum(may_contain(f, key_hash(k)) for k in probes) / len(probes)
    print(f"measured bloom false-positive rate at 10 bits/key: {rate:.4f}")
    assert 0.002 < rate < 0.02


def test_block_cache_stays_within_capacity() -> None:
    """The cache evicts least recently used entries to stay within its byte budget."""
    cache: BlockCache[int] = BlockCache(capacity_bytes=100)
    for i in range(10):
        cache.put((1, i), i, 30)
        cache.check_invariants()
    assert len(cache) == 3 and cache.get((1, 9)) == 9 and cache.get((1, 0)) is None
    cache.get((1, 7))
    cache.put((2, 0), 0, 30)
    assert cache.get((1, 7)) == 7 and cache.get((1, 8)) is None
    cache.evict_file(1)
    assert len(cache) == 1
    cache.check_invariants()


def _runs_of(entries: dict[bytes, bytes | None], size: int, reverse: bool) -> list[Run]:
    keys = sorted(entries)
    runs = [(keys[i : i + size], [entries[k] for k in keys[i : i + size]]) for i in range(0, len(keys), size)]
    return runs[::-1] if reverse else runs


entries_st = st.dictionaries(
    st.binary(min_size=1, max_size=3), st.one_of(st.none(), st.binary(max_size=3)), max_size=40
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(entries_st, st.integers(1, 6)), min_size=1, max_size=5), st.booleans())
def test_merge_runs_matches_newest_wins_model(
    sources: list[tuple[dict[bytes, bytes | None], int]], reverse: bool
) -> None:
    """The windowed merge equals a dumb model: newest source wins per key, tombstones hide, order kept."""
    model: dict[bytes, bytes | None] = {}
    for entries, _ in reversed(sources):  # oldest first
        model.update(entries)
    expect = sorted(((k, v) for k, v in model.items() if v is not None), reverse=reverse)
    streams = [iter(_runs_of(entries, size, reverse)) for entries, size in sources]
    assert list(merge_runs(streams, reverse=reverse)) == expect


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 9), max_size=12), st.integers(1, 20), st.booleans())
def test_coalesce_runs_keeps_every_entry_in_order_in_fewer_runs(sizes: list[int], cap: int, reverse: bool) -> None:
    """Joining consecutive runs keeps the entries and their order, in both directions, and never splits a run."""
    keys = [i.to_bytes(2, "big") for i in range(sum(sizes))]
    runs: list[Run] = []
    at = 0
    for n in sizes:
        runs.append((keys[at : at + n], [b"v" + k for k in keys[at : at + n]]))
        at += n
    out = list(coalesce_runs(iter(runs[::-1] if reverse else runs), reverse=reverse, max_entries=cap))
    flat = [k for ks, _ in (out[::-1] if reverse else out) for k in ks]
    assert flat == keys and all(vs == [b"v" + k for k in ks] for ks, vs in out)
    assert len(out) <= len(runs) and all(ks == sorted(ks) for ks, _ in out)
    one_each: list[Run] = [([bytes([i])], [b""]) for i in range(10)]
    assert [len(ks) for ks, _ in coalesce_runs(iter(one_each), max_entries=4)] == [1, 2, 4, 3]


def test_block_cache_admits_a_key_only_on_its_second_miss_within_a_bounded_window() -> None:
    """The doorkeeper refuses a key's first miss, admits its second, and forgets old keys when its window fills."""
    cache: BlockCache[int] = BlockCache(capacity_bytes=64 * 4096)  # a window of 64 keys
    assert not cache.admit((1, 0)) and cache.admit((1, 0))
    assert not cache.admit((1, 0))  # admitted keys leave the window
    for i in range(1, 65):  # (1, 0) and 63 of these fill the window; the 64th starts a new one
        assert not cache.admit((2, i))
    assert not cache.admit((2, 1))  # forgotten with the old window
    assert cache.admit((2, 64)) and len(cache._seen) == 1


def test_prepared_bloom_probe_agrees_with_may_contain(seed: int) -> None:
    """The probe Engine.get inlines (bloom.probe_prepared) answers exactly as may_contain, for every k."""
    rng = random.Random(seed)
    for bits_per_key in (1, 3, 10, 20, 44):
        keys = [rng.randbytes(rng.randrange(1, 24)) for _ in range(rng.randrange(1, 700))]
        f = build_filter(keys, bits_per_key)
        probe = prepare_probe(f)
        hashes = [key_hash(k) for k in keys] + [rng.getrandbits(32) for _ in range(3000)] + [0, 2**32 - 1]
        answers = [may_contain(f, h) for h in hashes]
        assert [probe_prepared(probe, h) for h in hashes] == answers
        assert all(answers[: len(keys)]) and not all(answers), "both answers occur"


def _lookup_read_once(fs: SimFileSystem, path: str, key: bytes) -> tuple[bytes | object | None, int]:
    """A lookup on a fresh reader with no cache (the block is read once); also how many Blocks it decoded."""
    reader = TableReader(fs, path, 1, BlockCache(capacity_bytes=0))
    before = _DECODED[0]
    try:
        return reader.lookup(key), _DECODED[0] - before
    finally:
        reader.close()


_DECODED = [0]


def test_lookup_in_a_block_read_once_agrees_with_the_decoded_block(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Searching a block's sealed bytes in place finds every key, tombstones and absent keys like Block.find.

    Fixed-length keys take the in-place path (no Block decoded: counted); keys of mixed lengths and
    matches that straddle two keys fall back to decode_block + Block.find; all answers must equal
    those of a reader whose blocks come decoded from the cache.
    """
    real_decode = sstable.decode_block

    def counting_decode(raw: bytes, path: str, offset: int) -> sstable.Block:
        _DECODED[0] += 1
        return real_decode(raw, path, offset)

    monkeypatch.setattr(sstable, "decode_block", counting_decode)
    rng = random.Random(seed)
    fs = SimFileSystem(seed=seed)
    fixed = sorted({rng.randbytes(8) for _ in range(150)})
    mixed = [b"ab", b"abab", b"b", b"bab", b"cd", b"cdcd", b"d"]
    for name, keys in (("fixed.sst", fixed), ("mixed.sst", mixed)):
        items = {k: None if i % 5 == 0 else b"v" + k for i, k in enumerate(keys)}
        _write_table(fs, name, list(items.items()), block_size=200)
        cached = TableReader(fs, name, 2, BlockCache(capacity_bytes=1 << 20))
        in_place = 0
        for key in keys + [b"ba", b"bc", b"abc", b"\x00" * 8] + [k[1:] + k[:1] for k in keys[:20]]:
            expect = items.get(key, MISSING)
            for _ in range(3):  # the second read of a block is admitted to the cache, the third a cache hit
                assert cached.lookup(key) == expect, (name, key)
            got, decoded = _lookup_read_once(fs, name, key)
            assert got == expect, (name, key)
            in_place += key in items and not decoded
        cached.close()
        if name == "fixed.sst":
            assert in_place == len(keys), "every key of one length is found without decoding its block"
        else:
            assert 0 < in_place < len(keys), "mixed lengths: some keys need the general search"
