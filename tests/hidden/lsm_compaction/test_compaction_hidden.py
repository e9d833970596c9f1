"""Hidden tests of the lsm-compaction lab: compaction, tombstones and the manifest, against a dict model.

Mistakes they look for: a tombstone dropped while a deeper level still holds an older value (the key comes
back), an L0 compaction that moves a newer table below older overlapping ones, L0 ordered by key instead of
age, a manifest edit that loses its deleted files, a last output table never finished, and any loss of
acknowledged data when the machine stops in the middle of a compaction. Randomized tests run over fixed
seeds and print them.
"""

from __future__ import annotations

import random

import pytest

from kvstore.fs import SimFileSystem
from kvstore.lsm import Engine
from kvstore.lsm.compaction import Compaction, tombstone_dropper
from kvstore.lsm.manifest import NUM_LEVELS, FileMeta, Version, VersionEdit, decode_edit, encode_edit
from kvstore.lsm.testing import (
    DB_PATH,
    TINY_OPTIONS,
    acceptable_states,
    apply_to_engine,
    apply_to_model,
    count_mutating_ops,
    make_workload,
    run_crash_point,
)

SEEDS = [7, 13, 41]


def meta(number: int, smallest: bytes, largest: bytes) -> FileMeta:
    return FileMeta(number, 1000, 10, 0, smallest, largest)


def version_of(*files: tuple[int, FileMeta]) -> Version:
    return Version().apply(VersionEdit(added=tuple(files)))


def test_a_tombstone_is_kept_while_a_deeper_level_may_hold_the_key() -> None:
    """Compacting L0 into L1 must keep a tombstone for a key that an L2 table's range covers."""
    version = version_of((0, meta(10, b"c", b"p")), (1, meta(5, b"a", b"f")), (2, meta(2, b"k", b"z")))
    c = Compaction(0, version.levels[0], tuple(version.levels[1]))
    may_drop = tombstone_dropper(version, c)
    for key in (b"k", b"m", b"p"):
        assert not may_drop(key), f"{key!r} may still have an older value at L2"
    bottom = version_of((1, meta(3, b"a", b"z")), (2, meta(4, b"a", b"z")))
    into_bottom = Compaction(1, bottom.levels[1], bottom.levels[2])
    assert tombstone_dropper(bottom, into_bottom)(b"m"), "nothing lies below the output level"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_deleted_key_stays_deleted_through_partial_compactions(seed: int) -> None:
    """Keys written, pushed to the deepest level, then deleted and churned through L0 -> L1 compactions never
    come back, and the tables reach at least L2 (so the partial compactions did happen)."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    fs = SimFileSystem(seed=seed)
    model: dict[bytes, bytes] = {}
    with Engine.open(DB_PATH, fs=fs, **TINY_OPTIONS) as db:
        for i in range(120):
            key, value = b"key%03d" % i, rng.randbytes(20)
            db.put(key, value)
            model[key] = value
        db.compact()
        for key in rng.sample(sorted(model), 40):
            db.delete(key)
            del model[key]
        for i in range(300):  # churn other keys so L0 -> L1 compactions carry the tombstones
            key, value = b"other%02d" % rng.randrange(40), rng.randbytes(30)
            db.put(key, value)
            model[key] = value
            if i % 50 == 49:
                assert dict(db.scan()) == model, f"after {i + 1} churn writes"
        assert sum(1 for s in db.stats().levels[1:] if s.files) >= 2, "data sits on two levels below L0"
        assert dict(db.scan()) == model and all(db.get(k) == v for k, v in model.items())
    with Engine.open(DB_PATH, fs=fs, **TINY_OPTIONS) as db:
        assert dict(db.scan()) == model


def test_the_newest_l0_table_wins_whatever_the_key_ranges() -> None:
    """An older L0 table whose range starts later than a newer one's must still be read after it."""
    options = {**TINY_OPTIONS, "memtable_bytes": 1 << 20, "l0_compaction_trigger_files": 8, "l0_stall_files": 12}
    fs = SimFileSystem(seed=3)
    with Engine.open(DB_PATH, fs=fs, **options) as db:
        db.put(b"m", b"old")
        db.put(b"n", b"old")
        db.flush()
        db.put(b"a", b"new")
        db.put(b"m", b"new")
        db.flush()
        assert db.stats().levels[0].files == 2
        assert db.get(b"m") == b"new" and dict(db.scan()) == {b"a": b"new", b"m": b"new", b"n": b"old"}
    with Engine.open(DB_PATH, fs=fs, **options) as db:
        assert db.get(b"m") == b"new", "after a restart too"


@pytest.mark.parametrize("seed", SEEDS)
def test_version_edits_round_trip_through_the_manifest_encoding(seed: int) -> None:
    """decode_edit(encode_edit(e)) == e for random edits with added and deleted files and optional numbers."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    for _ in range(50):
        added = tuple(
            (rng.randrange(NUM_LEVELS), FileMeta(rng.randrange(1, 1 << 40), rng.randrange(1 << 30), rng.randrange(1000),
                                                rng.randrange(100), rng.randbytes(rng.randrange(0, 9)),
                                                rng.randbytes(rng.randrange(1, 9))))
            for _ in range(rng.randrange(0, 4))
        )
        deleted = tuple((rng.randrange(NUM_LEVELS), rng.randrange(1, 1 << 40)) for _ in range(rng.randrange(0, 4)))
        edit = VersionEdit(
            rng.choice([None, rng.randrange(1 << 40)]), rng.choice([None, rng.randrange(1 << 40)]), deleted, added
        )
        assert decode_edit(encode_edit(edit), "MANIFEST", 0) == edit


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_matches_a_model_through_flushes_compactions_and_reopens(seed: int) -> None:
    """A seeded mix of puts, deletes, batches, flushes and compactions on a tiny engine: after every op the
    reads match the model, and so they do after each reopen (which replays the manifest)."""
    print(f"seed {seed}")
    fs = SimFileSystem(seed=seed)
    model: dict[bytes, bytes] = {}
    ops = make_workload(seed, 400, key_space=80)
    levels = 0
    for part in range(0, len(ops), 100):
        with Engine.open(DB_PATH, fs=fs, **TINY_OPTIONS) as db:
            assert dict(db.scan()) == model, f"after reopening at op {part}"
            for n, op in enumerate(ops[part : part + 100], start=part):
                apply_to_engine(db, op)
                apply_to_model(model, op)
                if n % 10 == 0 or op[0] in ("flush", "compact"):
                    assert dict(db.scan()) == model, f"op {n}: {op[0]}"
                    levels = max(levels, sum(1 for s in db.stats().levels if s.files))
            db.check_invariants()
    assert levels >= 2, "the workload spread tables over several levels"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_crash_at_any_point_of_flushes_and_compactions_loses_no_acknowledged_write(seed: int) -> None:
    """Power loss at sampled points of a workload with compactions: the reopened store holds exactly the
    acknowledged writes (plus, perhaps, the one in flight), and some crashes hit a compaction or the manifest."""
    print(f"seed {seed}")
    ops = make_workload(seed, 120, key_space=40)
    total = count_mutating_ops(ops, seed=seed)
    activities = set()
    for point in range(1, total, max(1, total // 40)):
        outcome = run_crash_point(ops, point, seed=seed, tear=bool(point % 2))
        assert outcome.recovered in list(acceptable_states(outcome)), f"crash point {point} ({outcome.activity})"
        activities.add(outcome.activity)
    assert activities & {"compaction", "manifest"}, activities
