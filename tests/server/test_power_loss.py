"""The power-loss simulation for real processes drops exactly what a power cut would."""

from __future__ import annotations

from pathlib import Path

from kvstore.fs import OSFileSystem
from kvstore.server.power_loss import JournalingFileSystem, simulate_power_loss


def write(fs: JournalingFileSystem, path: Path, data: bytes, *, sync: bool) -> None:
    f = fs.open_write(str(path))
    f.write(data)
    if sync:
        f.sync()
    f.close()


def test_unsynced_bytes_and_undurable_files_are_dropped(tmp_path: Path) -> None:
    """A file keeps its synced prefix; a file whose directory entry was never synced disappears."""
    fs = JournalingFileSystem(OSFileSystem(), str(tmp_path))
    log = fs.open_write(str(tmp_path / "log"))
    log.write(b"synced")
    log.sync()
    fs.sync_dir(str(tmp_path))
    log.write(b"-lost")
    log.close()
    write(fs, tmp_path / "new", b"never dir-synced", sync=True)
    fs.close()
    report = simulate_power_loss(str(tmp_path))
    assert (tmp_path / "log").read_bytes() == b"synced"
    assert not (tmp_path / "new").exists()
    assert report.bytes_dropped == len(b"-lost") + len(b"never dir-synced")


def test_a_rename_without_a_directory_fsync_is_undone(tmp_path: Path) -> None:
    """CURRENT replaced by rename but the folder not fsynced: the old CURRENT comes back."""
    fs = JournalingFileSystem(OSFileSystem(), str(tmp_path))
    write(fs, tmp_path / "CURRENT", b"MANIFEST-1", sync=True)
    fs.sync_dir(str(tmp_path))
    write(fs, tmp_path / "CURRENT.tmp", b"MANIFEST-2", sync=True)
    fs.rename(str(tmp_path / "CURRENT.tmp"), str(tmp_path / "CURRENT"))
    fs.close()
    simulate_power_loss(str(tmp_path))
    assert (tmp_path / "CURRENT").read_bytes() == b"MANIFEST-1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT"]


def test_a_rename_followed_by_a_directory_fsync_is_kept(tmp_path: Path) -> None:
    """Once the folder is fsynced the new CURRENT is durable, and the hidden backup is gone."""
    fs = JournalingFileSystem(OSFileSystem(), str(tmp_path))
    write(fs, tmp_path / "CURRENT", b"MANIFEST-1", sync=True)
    fs.sync_dir(str(tmp_path))
    write(fs, tmp_path / "CURRENT.tmp", b"MANIFEST-2", sync=True)
    fs.rename(str(tmp_path / "CURRENT.tmp"), str(tmp_path / "CURRENT"))
    fs.sync_dir(str(tmp_path))
    fs.close()
    simulate_power_loss(str(tmp_path))
    assert (tmp_path / "CURRENT").read_bytes() == b"MANIFEST-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT"]
