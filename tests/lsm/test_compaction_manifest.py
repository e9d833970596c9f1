"""Version edits, the manifest, compaction picking and tombstone dropping."""

from __future__ import annotations

import pytest

from kvstore.fs import SimFileSystem
from kvstore.invariants import InvariantViolation
from kvstore.lsm import Engine
from kvstore.lsm.compaction import Compaction, CompactionPolicy, pick_compaction, tombstone_dropper
from kvstore.lsm.manifest import FileMeta, ManifestWriter, Version, VersionEdit, decode_edit, encode_edit, recover
from kvstore.lsm.testing import TINY_OPTIONS


def _f(number: int, lo: bytes, hi: bytes, size: int = 100) -> FileMeta:
    return FileMeta(number, size, 10, 0, lo, hi)


def test_version_edit_round_trip() -> None:
    """An edit with every field decodes to itself."""
    edit = VersionEdit(7, 42, ((1, 3), (0, 4)), ((2, _f(9, b"a", b"\xff" * 3)), (0, _f(10, b"", b"z"))))
    assert decode_edit(encode_edit(edit), "m", 0) == edit


def test_version_apply_refuses_overlap_and_unknown_deletes() -> None:
    """Applying an edit that overlaps tables in L1 or deletes an absent file breaks an invariant."""
    v = Version().apply(VersionEdit(added=((1, _f(1, b"a", b"m")),)))
    with pytest.raises(InvariantViolation):
        v.apply(VersionEdit(added=((1, _f(2, b"k", b"z")),)))
    with pytest.raises(InvariantViolation):
        v.apply(VersionEdit(deleted=((1, 99),)))
    v.apply(VersionEdit(added=((1, _f(2, b"n", b"z")),))).check_invariants()


def test_manifest_recovery_drops_a_torn_last_edit(sim_fs: SimFileSystem) -> None:
    """An edit whose write was cut short is ignored; the edits before it are recovered."""
    sim_fs.make_dirs("/m")
    w = ManifestWriter.create(sim_fs, "/m", 5, VersionEdit(1, 6))
    w.append(VersionEdit(added=((0, _f(6, b"a", b"b")),), next_file_number=7))
    w.append(VersionEdit(added=((0, _f(7, b"c", b"d")),), next_file_number=8))
    sim_fs.truncate("/m/MANIFEST-000005", sim_fs.file_size("/m/MANIFEST-000005") - 3)
    rs = recover(sim_fs, "/m")
    assert [f.number for f in rs.version.levels[0]] == [6] and rs.next_file_number == 7 and rs.manifest_number == 5


def test_pick_compaction_takes_all_of_l0_first() -> None:
    """When L0 reaches its trigger, all L0 tables and the overlapping L1 tables are picked."""
    policy = CompactionPolicy(l0_compaction_trigger_files=2, level1_target_bytes=1000)
    added = ((0, _f(5, b"c", b"f")), (0, _f(6, b"a", b"d")), (1, _f(2, b"a", b"b")), (1, _f(3, b"x", b"z")))
    v = Version().apply(VersionEdit(added=added))
    c = pick_compaction(v, policy, {})
    assert c is not None and c.level == 0
    assert {f.number for f in c.inputs} == {5, 6} and [f.number for f in c.next_inputs] == [2]


def test_pick_compaction_rotates_through_a_level() -> None:
    """An over-full level >= 1 is compacted one table at a time, round-robin past the cursor."""
    policy = CompactionPolicy(level1_target_bytes=150)
    v = Version().apply(VersionEdit(added=((1, _f(1, b"a", b"c")), (1, _f(2, b"d", b"f")), (2, _f(3, b"e", b"g")))))
    first = pick_compaction(v, policy, {})
    assert first is not None and [f.number for f in first.inputs] == [1] and first.next_inputs == ()
    second = pick_compaction(v, policy, {1: b"c"})
    assert second is not None and [f.number for f in second.inputs] == [2]
    assert [f.number for f in second.next_inputs] == [3]
    assert pick_compaction(Version(), policy, {}) is None


def test_tombstone_is_kept_while_a_deeper_level_may_hold_the_key() -> None:
    """A tombstone survives a compaction if a deeper table covers its key, and is dropped otherwise."""
    v = Version().apply(VersionEdit(added=((1, _f(1, b"a", b"m")), (3, _f(2, b"k", b"l")))))
    drop = tombstone_dropper(v, Compaction(1, (v.levels[1][0],), ()))
    assert not drop(b"k5") and drop(b"b")


def test_deleted_key_never_reappears_through_compactions(sim_fs: SimFileSystem) -> None:
    """A key pushed deep, then deleted, stays deleted through every compaction; the tombstone goes at the end."""
    with Engine.open("/db", fs=sim_fs, **TINY_OPTIONS) as db:
        db.put(b"victim", b"old")
        for i in range(200):
            db.put(b"fill%04d" % i, b"x" * 20)
        db.compact()
        db.delete(b"victim")
        for i in range(200):
            db.put(b"more%04d" % i, b"y" * 20)
            assert db.get(b"victim") is None
        db.compact()
        assert db.get(b"victim") is None
        assert all(f.tombstones == 0 for _, f in db._version.files())
