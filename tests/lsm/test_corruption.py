"""Corruption: a flipped bit anywhere is reported as CorruptionError naming the file — never a wrong value."""

from __future__ import annotations

import random
import struct

import pytest

from kvstore.errors import CorruptionError
from kvstore.fs import SimFileSystem
from kvstore.lsm import Engine
from kvstore.lsm.sstable import FOOTER, FOOTER_BYTES, HANDLE, decode_block

OPTS = {"block_size_bytes": 256, "background": False}
ITEMS = {b"key%04d" % i: b"value-%d" % i * 3 for i in range(300)}


def _db_with_one_table(fs: SimFileSystem) -> str:
    with Engine.open("/db", fs=fs, **OPTS) as db:
        for k, v in ITEMS.items():
            db.put(k, v)
        db.flush()
    tables = [n for n in fs.list_dir("/db") if n.endswith(".sst")]
    assert len(tables) == 1
    return f"/db/{tables[0]}"


def _layout(fs: SimFileSystem, path: str) -> dict[str, int]:
    """Offsets of the parts of a table: first data block, filter, index, footer."""
    data = fs.read_file(path)
    index_off, index_size, filter_off, _, *_ = FOOTER.unpack(data[-FOOTER_BYTES:])
    index = decode_block(data[index_off : index_off + index_size], path, index_off)
    first_off, first_size = HANDLE.unpack(index.value_at(0) or b"")
    return {
        "data": first_off + first_size // 2,
        "filter": filter_off + 3,
        "index": index_off + 5,
        "footer_handles": len(data) - FOOTER_BYTES + 2,
        "footer_crc": len(data) - 12,
        "footer_magic": len(data) - 3,
    }


def _read_everything(fs: SimFileSystem) -> dict[bytes, bytes | None]:
    with Engine.open("/db", fs=fs, **OPTS) as db:
        return {k: db.get(k) for k in ITEMS}


def test_bit_flip_in_wal_record_is_corruption_naming_the_wal(sim_fs: SimFileSystem) -> None:
    """Damage to an early WAL record is found on reopen and names the log file and record offset."""
    with Engine.open("/db", fs=sim_fs, **OPTS) as db:
        for i in range(20):
            db.put(b"k%d" % i, b"v%d" % i)
    (log,) = [n for n in sim_fs.list_dir("/db") if n.endswith(".log") and sim_fs.file_size(f"/db/{n}") > 0]
    sim_fs.flip_bit(f"/db/{log}", 8 * 20)
    with pytest.raises(CorruptionError) as e:
        Engine.open("/db", fs=sim_fs, **OPTS)
    assert e.value.path == f"/db/{log}" and e.value.offset == 0


def test_bit_flip_in_data_block_fails_reads_of_that_block_only(sim_fs: SimFileSystem) -> None:
    """A damaged data block raises CorruptionError on the reads that need it; every other read is exact."""
    path = _db_with_one_table(sim_fs)
    sim_fs.flip_bit(path, 8 * _layout(sim_fs, path)["data"] + 1)
    failed = 0
    with Engine.open("/db", fs=sim_fs, **OPTS) as db:
        for k, v in ITEMS.items():
            try:
                assert db.get(k) == v
            except CorruptionError as e:
                assert e.path == path
                failed += 1
        with pytest.raises(CorruptionError):
            list(db.scan())
    assert 0 < failed < len(ITEMS)


@pytest.mark.parametrize("part", ["filter", "index", "footer_handles", "footer_crc", "footer_magic"])
def test_bit_flip_in_table_metadata_is_corruption_on_open(sim_fs: SimFileSystem, part: str) -> None:
    """Damage to the filter, index or footer is found when the table is opened, naming the table."""
    path = _db_with_one_table(sim_fs)
    sim_fs.flip_bit(path, 8 * _layout(sim_fs, path)[part] + 4)
    with pytest.raises(CorruptionError) as e:
        Engine.open("/db", fs=sim_fs, **OPTS)
    assert e.value.path == path


def test_bit_flip_in_manifest_is_corruption_naming_the_manifest(sim_fs: SimFileSystem) -> None:
    """Damage to the manifest (the version edit log) is refused on open, naming the manifest."""
    _db_with_one_table(sim_fs)
    (manifest,) = [n for n in sim_fs.list_dir("/db") if n.startswith("MANIFEST-")]
    sim_fs.flip_bit(f"/db/{manifest}", 8 * 14 + 2)
    with pytest.raises(CorruptionError) as e:
        Engine.open("/db", fs=sim_fs, **OPTS)
    assert e.value.path == f"/db/{manifest}"


def test_damaged_current_pointer_is_corruption(sim_fs: SimFileSystem) -> None:
    """A CURRENT file that does not name a manifest is refused, naming CURRENT."""
    _db_with_one_table(sim_fs)
    sim_fs.flip_bit("/db/CURRENT", 8 * 2)
    with pytest.raises(CorruptionError) as e:
        Engine.open("/db", fs=sim_fs, **OPTS)
    assert e.value.path == "/db/CURRENT"


def test_missing_table_is_corruption(sim_fs: SimFileSystem) -> None:
    """A table named by the manifest but absent on disk is reported, not silently skipped."""
    path = _db_with_one_table(sim_fs)
    sim_fs.remove(path)
    with pytest.raises(CorruptionError) as e:
        Engine.open("/db", fs=sim_fs, **OPTS)
    assert e.value.path == path


def test_no_bit_flip_anywhere_in_a_table_yields_a_wrong_value(seed: int) -> None:
    """Sweep: each of 150 random bit flips in a table is reported as CorruptionError naming the table.

    Every byte of a table is under a checksum (blocks, filter, index) or checked (footer, magic),
    so reading all keys after any single flip must raise rather than return a value.
    """
    rng = random.Random(seed)
    base = SimFileSystem(seed=0)
    path = _db_with_one_table(base)
    size = base.file_size(path)
    detected = 0
    for bit in rng.sample(range(size * 8), 150):
        fs = SimFileSystem(seed=0)
        _db_with_one_table(fs)
        fs.flip_bit(path, bit)
        try:
            got = _read_everything(fs)
        except CorruptionError as e:
            assert e.path == path, f"bit {bit}: error names {e.path}"
            detected += 1
            continue
        pytest.fail(f"bit {bit} of {path} flipped and every read succeeded: {sum(got[k] == ITEMS[k] for k in got)}")
    assert detected == 150


def test_struct_formats_state_endianness() -> None:
    """Every on-disk struct format of the engine starts with '<' (little-endian, no padding)."""
    import kvstore.lsm.manifest as manifest
    import kvstore.lsm.sstable as sstable
    import kvstore.lsm.wal as wal

    formats = [v.format for m in (wal, sstable, manifest) for v in vars(m).values() if isinstance(v, struct.Struct)]
    assert formats and all(f.startswith("<") for f in formats)
