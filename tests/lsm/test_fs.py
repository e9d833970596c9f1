"""The file-system seam: the simulated disk loses exactly what was not fsynced."""

from __future__ import annotations

import pytest

from kvstore.errors import StorageError
from kvstore.fs import OSFileSystem, SimFileSystem, SimulatedCrash, write_file_durably


def test_sim_unsynced_bytes_are_lost_at_reboot(sim_fs: SimFileSystem) -> None:
    """Bytes written after the last fsync vanish on power loss; synced bytes stay."""
    sim_fs.make_dirs("/d")
    f = sim_fs.open_write("/d/a")
    sim_fs.sync_dir("/d")
    f.write(b"hello")
    f.sync()
    f.write(b" world")
    report = sim_fs.reboot()
    assert report.lost_bytes == 6
    assert sim_fs.read_file("/d/a") == b"hello"


def test_sim_unsynced_directory_entry_is_lost(sim_fs: SimFileSystem) -> None:
    """A file fsynced but whose directory was not fsynced disappears on power loss."""
    sim_fs.make_dirs("/d")
    f = sim_fs.open_write("/d/a")
    f.write(b"x")
    f.sync()
    report = sim_fs.reboot()
    assert report.lost_entries == 1
    assert not sim_fs.exists("/d/a")


def test_sim_rename_without_dir_sync_is_undone(sim_fs: SimFileSystem) -> None:
    """A rename is durable only after fsync of the directory; before, the old name returns."""
    sim_fs.make_dirs("/d")
    write_file_durably(sim_fs, "/d/a", b"1")
    sim_fs.rename("/d/a", "/d/b")
    assert sim_fs.exists("/d/b")
    sim_fs.reboot()
    assert sim_fs.exists("/d/a") and not sim_fs.exists("/d/b")


def test_sim_remove_without_dir_sync_is_undone(sim_fs: SimFileSystem) -> None:
    """An unlink not yet made durable comes back after power loss (with its synced bytes)."""
    sim_fs.make_dirs("/d")
    write_file_durably(sim_fs, "/d/a", b"data")
    sim_fs.remove("/d/a")
    sim_fs.reboot()
    assert sim_fs.read_file("/d/a") == b"data"


def test_sim_torn_write_keeps_a_prefix(sim_fs: SimFileSystem) -> None:
    """With tear=True, a prefix of the last unsynced write survives, never other bytes."""
    sim_fs.make_dirs("/d")
    f = sim_fs.open_write("/d/a")
    sim_fs.sync_dir("/d")
    f.write(b"base")
    f.sync()
    payload = bytes(range(200))
    f.write(payload)
    report = sim_fs.reboot(tear=True)
    data = sim_fs.read_file("/d/a")
    assert data == b"base" + payload[: report.torn_bytes]
    assert report.lost_bytes == 200


def test_sim_scheduled_crash_stops_every_later_operation(sim_fs: SimFileSystem) -> None:
    """At the crash point the operation fails and so does everything after, until reboot."""
    sim_fs.make_dirs("/d")
    f = sim_fs.open_write("/d/a")
    sim_fs.schedule_crash(1)
    f.write(b"one")
    with pytest.raises(SimulatedCrash):
        f.sync()
    assert sim_fs.crashed
    with pytest.raises(SimulatedCrash):
        sim_fs.read_file("/d/a")
    sim_fs.reboot()
    assert not sim_fs.exists("/d/a")


def test_sim_flip_bit_changes_one_bit(sim_fs: SimFileSystem) -> None:
    """flip_bit damages exactly one bit of the stored file, durably."""
    sim_fs.make_dirs("/d")
    write_file_durably(sim_fs, "/d/a", b"\x00\x00")
    sim_fs.flip_bit("/d/a", 9)
    sim_fs.reboot()
    assert sim_fs.read_file("/d/a") == b"\x00\x02"


def test_sim_open_reader_survives_remove(sim_fs: SimFileSystem) -> None:
    """A handle opened before a remove keeps reading the file (POSIX open-inode semantics)."""
    sim_fs.make_dirs("/d")
    write_file_durably(sim_fs, "/d/a", b"abc")
    r = sim_fs.open_read("/d/a")
    sim_fs.remove("/d/a")
    assert r.read_at(1, 5) == b"bc"
    sim_fs.check_invariants()


def test_os_filesystem_round_trip_and_errors(tmp_path: object) -> None:
    """The real file system writes, links, renames, lists, and maps OSError to StorageError."""
    fs = OSFileSystem()
    d = str(tmp_path)
    write_file_durably(fs, f"{d}/a", b"hello")
    fs.link(f"{d}/a", f"{d}/b")
    r = fs.open_read(f"{d}/b")
    assert r.read_at(1, 3) == b"ell" and r.size() == 5
    r.close()
    f = fs.open_write(f"{d}/a", append=True)
    f.write(b"!")
    f.sync()
    f.close()
    assert fs.read_file(f"{d}/a") == b"hello!"
    fs.truncate(f"{d}/a", 2)
    assert fs.file_size(f"{d}/a") == 2
    assert fs.list_dir(d) == ["a", "b"]
    with pytest.raises(StorageError, match="missing"):
        fs.open_read(f"{d}/missing")


def test_os_filesystem_mmap_reads_match_pread(tmp_path: object) -> None:
    """With mmap_reads the same bytes come back, including short reads at the end of the file."""
    d = str(tmp_path)
    write_file_durably(OSFileSystem(), f"{d}/t", bytes(range(256)) * 10)
    for fs in (OSFileSystem(), OSFileSystem(mmap_reads=True)):
        r = fs.open_read(f"{d}/t")
        assert r.read_at(250, 10) == bytes(range(250, 256)) + bytes(range(4))
        assert r.read_at(2555, 10) == bytes(range(251, 256))
        r.close()
