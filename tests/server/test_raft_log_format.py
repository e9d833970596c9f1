"""RAFT_LOG_FORMAT.md's worked examples are the bytes the code writes (parsed out of the doc)."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest

from kvstore.fs import SimFileSystem
from kvstore.raft.messages import Configuration, Entry, EntryType, HardState, Snapshot, SnapshotMeta
from kvstore.server import raft_log as rl

DOC = Path(rl.__file__).with_name("RAFT_LOG_FORMAT.md")
_EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\s*```text\n(?P<body>.*?)```", re.DOTALL)
_HEX = re.compile(r"^[0-9a-f]{2}$")


def doc_examples() -> dict[str, bytes]:
    """Every worked example of the doc: name -> bytes (the leading hex-pair tokens of each line)."""
    out: dict[str, bytes] = {}
    for m in _EXAMPLE.finditer(DOC.read_text(encoding="utf-8")):
        raw = bytearray()
        for line in m.group("body").splitlines():
            for token in line.split():
                if not _HEX.match(token):
                    break
                raw.append(int(token, 16))
        out[m.group("name")] = bytes(raw)
    return out


SNAPSHOT = Snapshot(SnapshotMeta(5, 2, Configuration(voters=frozenset({"n1"}))), b"ckpt-5")


def _segment_file() -> bytes:
    fs = SimFileSystem()
    log = rl.DurableRaftLog.open("/raft", fs=fs)
    log.append((Entry(1, 1, EntryType.NOOP),))
    log.set_hard_state(HardState(1, "n1", 0))
    log.sync()
    return fs.read_file("/raft/" + rl.segment_name(1))


def _snapshot_record() -> bytes:
    image = rl.encode_snapshot_file(1, SNAPSHOT)
    ref = rl.SnapshotRef(1, 5, 2, False, len(image), zlib.crc32(image))
    return rl.encode_record(rl.RecordType.SNAPSHOT, rl.encode_snapshot_ref(ref))


ENCODERS = {
    "segment-header-record": lambda: rl.encode_record(rl.RecordType.SEGMENT_HEADER, rl.encode_segment_header(1)),
    "entry-record": lambda: rl.encode_record(
        rl.RecordType.ENTRY, rl.encode_entry(Entry(2, 7, EntryType.NORMAL, b"put k v"))
    ),
    "hard-state-record": lambda: rl.encode_record(
        rl.RecordType.HARD_STATE, rl.encode_hard_state(HardState(2, "n1", 6))
    ),
    "snapshot-record": _snapshot_record,
    "commit-record": lambda: rl.encode_record(rl.RecordType.COMMIT, rl.encode_commit(3)),
    "snapshot-file": lambda: rl.encode_snapshot_file(1, SNAPSHOT),
    "segment-file": _segment_file,
}


def test_doc_has_every_worked_example() -> None:
    """The doc holds exactly the examples this test knows how to encode, none empty."""
    examples = doc_examples()
    assert set(examples) == set(ENCODERS)
    assert all(len(b) >= rl.HEADER_BYTES for b in examples.values())


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_worked_example_matches_the_encoder(name: str) -> None:
    """The hex in the doc is byte for byte what the code writes for that example."""
    assert doc_examples()[name] == ENCODERS[name]()


def test_worked_examples_decode_to_their_values() -> None:
    """Decoding the doc's bytes gives back the values the doc describes."""
    ex = doc_examples()
    (entry,) = rl.scan_records(ex["entry-record"], "doc").records
    assert rl.decode_entry(entry.body, "doc", 0) == Entry(2, 7, EntryType.NORMAL, b"put k v")
    (hs,) = rl.scan_records(ex["hard-state-record"], "doc").records
    assert rl.decode_hard_state(hs.body, "doc", 0) == HardState(2, "n1", 6)
    assert rl.decode_snapshot_file(ex["snapshot-file"], "doc") == (1, SNAPSHOT)
    kinds = [r.type for r in rl.scan_records(ex["segment-file"], "doc").records]
    assert kinds == [1, 3, 2, 3, 5]
