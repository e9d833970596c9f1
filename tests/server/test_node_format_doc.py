"""The worked examples in kvstore/server/NODE_FORMAT.md are the bytes the code produces."""

from __future__ import annotations

import re
from pathlib import Path

from kvstore.server.state_machine import Command, decode_command, encode_command
from kvstore.server.transport import archive_chunks, unpack_archive

DOC = Path(__file__).resolve().parents[2] / "kvstore" / "server" / "NODE_FORMAT.md"


def hex_blocks() -> list[bytes]:
    return [bytes.fromhex(b) for b in re.findall(r"```hex\n(.*?)\n```", DOC.read_text(), re.S)]


def test_command_examples_match_the_encoder() -> None:
    """put, cas and del examples decode and re-encode to exactly the documented bytes."""
    put, cas, delete, _archive = hex_blocks()
    assert encode_command(Command("put", b"k", b"v1", None, 7, 1)) == put
    assert encode_command(Command("cas", b"k", b"v2", b"v1", 7, 2)) == cas
    assert encode_command(Command("del", b"k", None, None, 0, 0)) == delete
    assert decode_command(put) == Command("put", b"k", b"v1", None, 7, 1)


def test_archive_example_matches_the_packer_and_unpacks(tmp_path: Path) -> None:
    """A folder with one file 'ab' = 'xyz' packs to the documented bytes and unpacks back."""
    archive = hex_blocks()[3]
    src = tmp_path / "src"
    src.mkdir()
    (src / "ab").write_bytes(b"xyz")
    assert b"".join(archive_chunks(str(src))) == archive
    assert unpack_archive(archive, str(tmp_path / "dst")) == ["ab"]
    assert (tmp_path / "dst" / "ab").read_bytes() == b"xyz"


def test_archive_chunks_cut_large_files_and_truncation_is_refused(tmp_path: Path) -> None:
    """Chunking is invisible to the receiver; a truncated archive is an error, not a short file."""
    import pytest

    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(bytes(range(256)) * 40)
    (src / "small").write_bytes(b"s")
    chunks = list(archive_chunks(str(src), chunk_bytes=1000))
    assert len(chunks) > 10 and all(len(c) <= 1000 for c in chunks)
    whole = b"".join(chunks)
    unpack_archive(whole, str(tmp_path / "ok"))
    assert (tmp_path / "ok" / "big").read_bytes() == (src / "big").read_bytes()
    with pytest.raises(ValueError, match="ends inside"):
        unpack_archive(whole[:-5], str(tmp_path / "bad"))
