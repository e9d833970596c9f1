"""FORMAT.md's worked examples are the bytes the codecs really produce."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import kvstore.lsm
from kvstore.fs import SimFileSystem
from kvstore.lsm.manifest import FileMeta, VersionEdit, encode_edit
from kvstore.lsm.sstable import FOOTER_BYTES, TableBuilder, encode_block, seal_block
from kvstore.lsm.wal import encode_batch, encode_record

DOC = Path(kvstore.lsm.__file__).with_name("FORMAT.md")
BLOCK_RE = re.compile(r"```hex example=(?P<name>[\w-]+)\n(?P<body>.*?)```", re.S)


def _examples() -> dict[str, bytes]:
    out = {}
    for m in BLOCK_RE.finditer(DOC.read_text()):
        hex_text = " ".join(line.split("#", 1)[0] for line in m.group("body").splitlines())
        out[m.group("name")] = bytes.fromhex(hex_text)
    return out


def _table() -> bytes:
    fs = SimFileSystem()
    fs.make_dirs("/t")
    f = fs.open_write("/t/4.sst")
    builder = TableBuilder(f, block_size_bytes=4096, bloom_bits_per_key=10)
    builder.add_many([b"a", b"b"], [b"1", b"2"])
    builder.finish()
    return fs.read_file("/t/4.sst")


def _encode(name: str) -> bytes:
    if name == "wal-record":
        return encode_record(encode_batch([b"k1", b"k2"], [b"v1", None]))
    if name == "block":
        return seal_block(encode_block([b"apple", b"banana"], [b"red", None]))
    if name == "sstable":
        return _table()
    if name == "footer":
        return _table()[-FOOTER_BYTES:]
    if name == "manifest-record":
        added = ((0, FileMeta(4, len(_table()), 2, 0, b"a", b"b")),)
        return encode_record(encode_edit(VersionEdit(log_number=3, next_file_number=5, added=added)))
    raise KeyError(name)


EXPECTED_EXAMPLES = ["wal-record", "block", "sstable", "footer", "manifest-record"]


def test_format_doc_has_every_worked_example() -> None:
    """FORMAT.md carries a worked example for the WAL, a block, an SSTable, the footer and the manifest."""
    assert sorted(_examples()) == sorted(EXPECTED_EXAMPLES)


@pytest.mark.parametrize("name", EXPECTED_EXAMPLES)
def test_format_doc_example_matches_the_codec(name: str) -> None:
    """Encoding the example's inputs gives exactly the hex printed in FORMAT.md."""
    assert _encode(name).hex(" ") == _examples()[name].hex(" ")
