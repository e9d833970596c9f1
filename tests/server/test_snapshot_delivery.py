"""A snapshot delivered twice: the second delivery never replaces the folder the first one put in place."""

from __future__ import annotations

import os
from pathlib import Path

from kvstore.server.transport import _unpack_into, archive_chunks


def _archive(folder: Path, files: dict[str, bytes]) -> bytes:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return b"".join(archive_chunks(str(folder)))


def test_a_second_delivery_of_a_snapshot_keeps_the_folder_an_install_may_be_reading(tmp_path: Path) -> None:
    """A leader's retried snapshot must not pull files from under an install of the first delivery.

    Replacing the folder once made a jepsen-lite run (pause + power loss) fail: the install
    found an empty engine ("snapshot says index 2001 but its data is at 0").
    """
    first = _archive(tmp_path / "a", {"000001.sst": b"first delivery"})
    second = _archive(tmp_path / "b", {"000001.sst": b"second delivery"})
    target = tmp_path / "snapshots" / "snap-00000000000000002001-2"
    target.parent.mkdir()
    _unpack_into(first, str(target))
    inode = os.stat(target / "000001.sst").st_ino
    _unpack_into(second, str(target))
    assert (target / "000001.sst").read_bytes() == b"first delivery"
    assert os.stat(target / "000001.sst").st_ino == inode
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name], "a partial folder was left behind"
