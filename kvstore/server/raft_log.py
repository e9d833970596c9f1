"""The durable Raft log of one node: segment files of checksummed records, group-committed.

Theory of operation. Everything Raft must remember (log entries, the hard state, which
snapshot is current) is one append-only *stream of records*, cut into numbered segment files
(``seg-<seq>.log``). The byte formats are in ``RAFT_LOG_FORMAT.md`` (same folder); this module
is the code for them. Snapshot images live in their own files (``snap-<seq>.snap``), written
once and never modified; a SNAPSHOT record in the stream says which one is current.

* **Records.** Every record is ``header_crc | length | type | body_crc | body``
  (:func:`encode_record`). The header checksum covers the length, so a damaged length is
  detected instead of being trusted.
* **Batches and group commit.** ``append``/``set_hard_state``/``save_snapshot`` only add
  records to a user-space buffer (snapshot images go to their file without fsync).
  ``sync()`` ends the batch with a COMMIT record and makes it durable with one fsync per
  file written (snapshot files, the directory if a file was created, the segment). Recovery
  honours only records up to the last COMMIT: a batch is recovered whole or not at all, so
  after a crash the log is exactly as of a completed ``sync()`` (or of the ``sync()`` that was
  running when the machine stopped).
* **Suffix replacement is logical.** ``append`` of entries starting at index ``i`` writes the
  new ENTRY records after the old ones; replay (:func:`replay_segments`) deletes every entry
  ``>= i`` when it meets ENTRY ``i``. Nothing is overwritten in place, so no crash can
  resurrect a deleted entry once its replacement is committed, and before that commit the old
  entries are still there, intact.
* **Segments** roll over at a batch boundary: the first write after a ``sync()`` starts a new
  segment when the current one holds ``segment_bytes`` or more (a segment may exceed it by one
  batch), so a batch never spans two files. Each segment begins with a SEGMENT_HEADER and
  copies of the current HARD_STATE and SNAPSHOT records, so any suffix of the segments
  replays to the same state as the whole stream, as far as entries after the snapshot go.
  That is what lets compaction delete the oldest segments once every entry in them is covered
  by a durable snapshot, without rewriting anything.
* **Recovery** (:meth:`DurableRaftLog.open`) reads every segment with :func:`scan_records`,
  which tells a *torn tail* (a short header, a body running past the end of the file, or a
  zero-filled tail: the writer died) from *corruption* (a complete record whose checksum or
  length is wrong: :class:`~kvstore.errors.CorruptionError` with file and offset). In the last
  segment everything after the last COMMIT is an unfinished batch: it is truncated away (and
  the file removed if it holds no COMMIT). Any damage in an earlier segment, a missing
  segment, an entry gap, or a missing or damaged snapshot file is corruption.

Checksums are CRC-32 (``zlib.crc32``, the IEEE polynomial): CRC-32C is not in the standard
library, and CRC-32 detects every burst error up to 32 bits just the same.
"""

from __future__ import annotations

import enum
import posixpath
import re
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from kvstore import limits
from kvstore.errors import ClosedError, CorruptionError, InvalidArgument, LimitExceeded, StorageError
from kvstore.fs import FileSystem, OSFileSystem, WritableFile
from kvstore.invariants import invariant
from kvstore.raft.core import RestoreState
from kvstore.raft.messages import Configuration, Entry, EntryType, HardState, Snapshot, SnapshotMeta
from kvstore.trace import NULL_TRACER, TraceEvent, Tracer

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "HEADER_BYTES",
    "DurableRaftLog",
    "RawRecord",
    "RecordType",
    "Replayed",
    "ScanResult",
    "SnapshotRef",
    "decode_commit",
    "decode_entry",
    "decode_hard_state",
    "decode_segment_header",
    "decode_snapshot_file",
    "decode_snapshot_ref",
    "encode_commit",
    "encode_entry",
    "encode_hard_state",
    "encode_record",
    "encode_segment_header",
    "encode_snapshot_file",
    "encode_snapshot_ref",
    "replay_segments",
    "scan_records",
    "segment_name",
    "snapshot_name",
]


class RecordType(enum.IntEnum):
    """The kind of a record, stored as one byte. On-disk values: do not renumber."""

    SEGMENT_HEADER = 1
    ENTRY = 2
    HARD_STATE = 3
    SNAPSHOT = 4
    COMMIT = 5
    SNAPSHOT_FILE = 6


# Record header: header_crc, body length, record type, body_crc (little-endian, 13 bytes).
# header_crc is the CRC-32 of the 9 bytes after it (length, type, body_crc).
_HEADER = struct.Struct("<IIBI")
_HEADER_TAIL = struct.Struct("<IBI")
HEADER_BYTES = _HEADER.size
_U32 = struct.Struct("<I")

SEGMENT_MAGIC = b"KVRAFTLG"
SNAPSHOT_MAGIC = b"KVRAFTSN"
FORMAT_VERSION = 1
_SEGMENT_HEADER = struct.Struct("<8sHQ")  # magic, version, segment seq
_ENTRY = struct.Struct("<QQB")  # term, index, entry type; then data
_HARD_STATE = struct.Struct("<QQB")  # term, commit_index, has_vote; then voted_for (UTF-8)
_SNAPSHOT_REF = struct.Struct("<QQQBQI")  # snapshot seq, index, term, drop_all, file bytes, file crc
_COMMIT = struct.Struct("<Q")  # batch seq
_SNAPSHOT_FILE = struct.Struct("<8sHQQQI")  # magic, version, snapshot seq, index, term, config length
_U64_MAX = 2**64 - 1

# Segments this size or larger are closed at the next batch boundary. 16 MiB: recovery reads
# a segment whole, and compaction frees space a whole segment at a time; etcd uses 64 MB.
DEFAULT_SEGMENT_BYTES = 16 * limits.MiB

# Records are handed to the OS in chunks of this size when a batch grows large between
# syncs (one write syscall per MiB, bounded memory); a sync writes whatever is left.
WRITE_BUFFER_BYTES = 1 * limits.MiB

# The largest body a record may declare: an entry is capped at MAX_MESSAGE_BYTES of data
# (the proposal limit of the Raft core) plus its fixed fields; the snapshot file's one
# record at MAX_SNAPSHOT_DATA_BYTES plus the configuration. A larger length is corruption.
MAX_LOG_RECORD_BODY_BYTES = limits.MAX_MESSAGE_BYTES + _ENTRY.size
MAX_SNAPSHOT_RECORD_BODY_BYTES = limits.MAX_SNAPSHOT_DATA_BYTES + limits.MAX_MESSAGE_BYTES

_SEGMENT_RE = re.compile(r"^seg-(\d{20})\.log$")
_SNAPSHOT_RE = re.compile(r"^snap-(\d{20})\.snap$")


def segment_name(seq: int) -> str:
    """File name of segment number ``seq`` (20 decimal digits, so names sort by number)."""
    return f"seg-{seq:020d}.log"


def snapshot_name(seq: int) -> str:
    """File name of snapshot number ``seq``."""
    return f"snap-{seq:020d}.snap"


# --------------------------------------------------------------------------
# Record framing (pure).
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One checksum-verified record as found in a file: its type, body and byte range."""

    type: int
    body: bytes
    offset: int
    end: int


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What :func:`scan_records` found: the valid records and where they end.

    ``valid_bytes`` is the length of the file unless it ends in a torn tail.
    """

    records: tuple[RawRecord, ...]
    valid_bytes: int


def encode_record(record_type: int, body: bytes) -> bytes:
    """Frame ``body`` as one record.

    Layout (all little-endian)::

        header_crc:u32 | length:u32 | type:u8 | body_crc:u32 | body

    where ``length = len(body)``, ``body_crc = crc32(body)`` and ``header_crc`` is the
    ``zlib.crc32`` of the 9 bytes ``length | type | body_crc``.

    Returns:
        ``HEADER_BYTES + len(body)`` bytes.
    """
    # BEGIN SOLUTION raft-persistence
    tail = _HEADER_TAIL.pack(len(body), record_type, zlib.crc32(body))
    return _U32.pack(zlib.crc32(tail)) + tail + body
    # END SOLUTION


def scan_records(data: bytes, path: str, *, max_body_bytes: int = MAX_LOG_RECORD_BODY_BYTES) -> ScanResult:
    """Decode every complete, checksum-verified record of a file, from offset 0.

    A *torn tail* ends the scan silently: fewer than ``HEADER_BYTES`` bytes left, a body
    that runs past the end of the file, or a tail of zero bytes only (a header that fails
    its checksum but is followed by nothing but zeros). Anything else that fails is damage
    to bytes that were once written whole.

    Args:
        data: the whole file.
        path: the file's name, for errors.
        max_body_bytes: a larger declared length is corruption.
    Returns:
        the records in order and the offset where the valid ones end (``len(data)``
        unless the file ends in a torn tail).
    Raises:
        CorruptionError: a header checksum fails (and the rest is not all zeros), a length
            is over ``max_body_bytes``, or a complete body fails its checksum; the offset is
            that of the bad record.
    """
    # BEGIN SOLUTION raft-persistence
    records: list[RawRecord] = []
    off = 0
    n = len(data)
    while off < n:
        if n - off < HEADER_BYTES:
            break  # torn: the writer died inside a header
        header_crc, length, record_type, body_crc = _HEADER.unpack_from(data, off)
        if zlib.crc32(data[off + 4 : off + HEADER_BYTES]) != header_crc:
            if data.count(0, off) == n - off:
                break  # zero-filled tail: blocks allocated but never written
            raise CorruptionError(path, off, "record header checksum mismatch")
        if length > max_body_bytes:
            raise CorruptionError(path, off, f"record length {length} is over the limit of {max_body_bytes}")
        end = off + HEADER_BYTES + length
        if end > n:
            break  # torn: the body was cut short
        body = data[off + HEADER_BYTES : end]
        if zlib.crc32(body) != body_crc:
            raise CorruptionError(path, off, "record body checksum mismatch")
        records.append(RawRecord(record_type, body, off, end))
        off = end
    return ScanResult(tuple(records), off)
    # END SOLUTION


# --------------------------------------------------------------------------
# Record bodies (pure). Each decoder raises CorruptionError on a malformed body.
# --------------------------------------------------------------------------


def encode_segment_header(seq: int) -> bytes:
    """Body of a SEGMENT_HEADER record: ``magic:8s | version:u16 | seq:u64``."""
    return _SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, seq)


def decode_segment_header(body: bytes, path: str, offset: int) -> int:
    """The segment seq of a SEGMENT_HEADER body (checks magic and version)."""
    if len(body) != _SEGMENT_HEADER.size:
        raise CorruptionError(path, offset, f"segment header is {len(body)} bytes, not {_SEGMENT_HEADER.size}")
    magic, version, seq = _SEGMENT_HEADER.unpack(body)
    if magic != SEGMENT_MAGIC:
        raise CorruptionError(path, offset, f"bad segment magic {magic!r}")
    if version != FORMAT_VERSION:
        raise CorruptionError(path, offset, f"unsupported segment format version {version}")
    return int(seq)


def encode_entry(entry: Entry) -> bytes:
    """Body of an ENTRY record: ``term:u64 | index:u64 | type:u8 | data``."""
    return _ENTRY.pack(entry.term, entry.index, int(entry.type)) + entry.data


def decode_entry(body: bytes, path: str, offset: int) -> Entry:
    """Inverse of :func:`encode_entry`."""
    if len(body) < _ENTRY.size:
        raise CorruptionError(path, offset, f"entry record is {len(body)} bytes, shorter than {_ENTRY.size}")
    term, index, kind = _ENTRY.unpack_from(body)
    try:
        entry_type = EntryType(kind)
    except ValueError:
        raise CorruptionError(path, offset, f"unknown entry type {kind}") from None
    if index < 1 or term < 1:
        raise CorruptionError(path, offset, f"entry with index {index} and term {term} (both must be >= 1)")
    return Entry(term=term, index=index, type=entry_type, data=body[_ENTRY.size :])


def encode_hard_state(hs: HardState) -> bytes:
    """Body of a HARD_STATE record: ``term:u64 | commit_index:u64 | has_vote:u8 | voted_for``."""
    vote = b"" if hs.voted_for is None else hs.voted_for.encode()
    return _HARD_STATE.pack(hs.term, hs.commit_index, hs.voted_for is not None) + vote


def decode_hard_state(body: bytes, path: str, offset: int) -> HardState:
    """Inverse of :func:`encode_hard_state`."""
    if len(body) < _HARD_STATE.size:
        raise CorruptionError(path, offset, "hard-state record too short")
    term, commit_index, has_vote = _HARD_STATE.unpack_from(body)
    raw = body[_HARD_STATE.size :]
    if has_vote not in (0, 1) or (not has_vote and raw) or len(raw) > limits.MAX_NODE_ID_BYTES:
        raise CorruptionError(path, offset, "malformed voted_for in hard-state record")
    try:
        vote = raw.decode() if has_vote else None
    except UnicodeDecodeError:
        raise CorruptionError(path, offset, "voted_for is not UTF-8") from None
    return HardState(term=term, voted_for=vote, commit_index=commit_index)


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """What a SNAPSHOT record says: which snapshot file is current and what it covers.

    Attributes:
        seq: number of the snapshot file (``snap-<seq>.snap``).
        index, term: the snapshot's last included entry.
        drop_all: True if, when the snapshot was saved, the log did not hold ``index`` with
            ``term``, so every entry was dropped; False if entries after ``index`` were kept.
        file_bytes, file_crc: length and CRC-32 of the whole snapshot file.
    """

    seq: int
    index: int
    term: int
    drop_all: bool
    file_bytes: int
    file_crc: int


def encode_snapshot_ref(ref: SnapshotRef) -> bytes:
    """Body of a SNAPSHOT record (see :class:`SnapshotRef`)."""
    return _SNAPSHOT_REF.pack(ref.seq, ref.index, ref.term, ref.drop_all, ref.file_bytes, ref.file_crc)


def decode_snapshot_ref(body: bytes, path: str, offset: int) -> SnapshotRef:
    """Inverse of :func:`encode_snapshot_ref`."""
    if len(body) != _SNAPSHOT_REF.size:
        raise CorruptionError(path, offset, f"snapshot record is {len(body)} bytes, not {_SNAPSHOT_REF.size}")
    seq, index, term, drop_all, size, crc = _SNAPSHOT_REF.unpack(body)
    if drop_all not in (0, 1) or seq < 1:
        raise CorruptionError(path, offset, "malformed snapshot record")
    return SnapshotRef(seq, index, term, bool(drop_all), size, crc)


def encode_commit(batch_seq: int) -> bytes:
    """Body of a COMMIT record: ``batch_seq:u64`` (consecutive along the stream)."""
    return _COMMIT.pack(batch_seq)


def decode_commit(body: bytes, path: str, offset: int) -> int:
    """Inverse of :func:`encode_commit`."""
    if len(body) != _COMMIT.size:
        raise CorruptionError(path, offset, "malformed commit record")
    return int(_COMMIT.unpack(body)[0])


def encode_snapshot_file(seq: int, snapshot: Snapshot) -> bytes:
    """The whole snapshot file: one SNAPSHOT_FILE record whose body is
    ``magic:8s | version:u16 | seq:u64 | index:u64 | term:u64 | config_len:u32 | config | data``
    (``config`` is :meth:`Configuration.encode`, sorted JSON)."""
    meta = snapshot.meta
    config = meta.configuration.encode()
    head = _SNAPSHOT_FILE.pack(SNAPSHOT_MAGIC, FORMAT_VERSION, seq, meta.index, meta.term, len(config))
    return encode_record(RecordType.SNAPSHOT_FILE, head + config + snapshot.data)


def decode_snapshot_file(data: bytes, path: str) -> tuple[int, Snapshot]:
    """Inverse of :func:`encode_snapshot_file`: ``(seq, snapshot)``.

    Raises:
        CorruptionError: anything but exactly one valid SNAPSHOT_FILE record (a snapshot
            file is fsynced before any record refers to it, so even a short one is damage).
    """
    scan = scan_records(data, path, max_body_bytes=MAX_SNAPSHOT_RECORD_BODY_BYTES)
    if len(scan.records) != 1 or scan.valid_bytes != len(data) or scan.records[0].type != RecordType.SNAPSHOT_FILE:
        raise CorruptionError(path, scan.valid_bytes, "snapshot file is not exactly one snapshot record")
    body = scan.records[0].body
    if len(body) < _SNAPSHOT_FILE.size:
        raise CorruptionError(path, 0, "snapshot record too short")
    magic, version, seq, index, term, config_len = _SNAPSHOT_FILE.unpack_from(body)
    if magic != SNAPSHOT_MAGIC or version != FORMAT_VERSION or _SNAPSHOT_FILE.size + config_len > len(body):
        raise CorruptionError(path, 0, "bad snapshot magic, version or configuration length")
    config_end = _SNAPSHOT_FILE.size + config_len
    try:
        config = Configuration.decode(body[_SNAPSHOT_FILE.size : config_end])
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptionError(path, 0, f"snapshot configuration does not decode: {exc}") from None
    meta = SnapshotMeta(index=index, term=term, configuration=config)
    return int(seq), Snapshot(meta=meta, data=body[config_end:])


# --------------------------------------------------------------------------
# Replay (pure): committed records -> state.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replayed:
    """The state a stream of committed records describes.

    Attributes:
        hard_state: the last HARD_STATE record's value (or the default).
        snapshot: the last SNAPSHOT record's value, if any.
        entries: the entries after the snapshot, contiguous from ``snapshot.index + 1``.
        batch_seq: the last COMMIT's batch number (0 if none).
    """

    hard_state: HardState = field(default_factory=HardState)
    snapshot: SnapshotRef | None = None
    entries: tuple[Entry, ...] = ()
    batch_seq: int = 0


def replay_segments(segments: Sequence[tuple[str, Sequence[RawRecord]]]) -> Replayed:
    """Replay the committed records of consecutive segments, oldest first, into a state.

    Each segment's records start with its SEGMENT_HEADER (already checked by the caller;
    skipped here). The rules, in stream order:

    * ENTRY ``i``: first delete every entry ``>= i`` (suffix replacement), then append it.
      ``i`` must be above the current snapshot index, at most one past the last entry (no
      gap) and its term at least the previous entry's. If the entry list is empty, any
      ``i`` above the snapshot is accepted: the segments holding earlier entries may have
      been deleted by compaction (then a later snapshot covers them; checked at the end).
    * HARD_STATE: replaces the hard state.
    * SNAPSHOT: becomes the current snapshot; deletes all entries if ``drop_all``, else the
      entries ``<= index`` (an entry still held at ``index`` must have the snapshot's term).
    * COMMIT: batch numbers must be consecutive.

    At the end the entries must start exactly at ``snapshot.index + 1``.

    Raises:
        CorruptionError: a malformed body, an unknown record type, a header in the middle of
            a segment, or any rule above broken; path and offset name the offending record.
    """
    # BEGIN SOLUTION raft-persistence
    hs = HardState()
    snap: SnapshotRef | None = None
    entries: list[Entry] = []
    where: list[tuple[str, int]] = []  # file and offset of each entry, for errors
    batch_seq = 0
    for path, records in segments:
        for rec in records:
            kind = rec.type
            snap_index = snap.index if snap else 0
            if kind == RecordType.ENTRY:
                e = decode_entry(rec.body, path, rec.offset)
                if e.index <= snap_index:
                    raise CorruptionError(path, rec.offset, f"entry {e.index} is not above the snapshot {snap_index}")
                if entries and e.index > entries[-1].index + 1:
                    raise CorruptionError(path, rec.offset, f"entry {e.index} after {entries[-1].index}: a gap")
                keep = max(0, e.index - entries[0].index) if entries else 0
                del entries[keep:], where[keep:]
                prev_term = entries[-1].term if entries else (snap.term if snap and e.index == snap_index + 1 else 0)
                if e.term < prev_term:
                    raise CorruptionError(path, rec.offset, f"entry {e.index} has term {e.term} < {prev_term}")
                entries.append(e)
                where.append((path, rec.offset))
            elif kind == RecordType.HARD_STATE:
                hs = decode_hard_state(rec.body, path, rec.offset)
            elif kind == RecordType.SNAPSHOT:
                snap = decode_snapshot_ref(rec.body, path, rec.offset)
                if snap.drop_all or not entries:
                    drop = len(entries)
                else:
                    drop = min(len(entries), max(0, snap.index - entries[0].index + 1))
                    held = entries[drop - 1] if drop else None
                    if held is not None and held.index == snap.index and held.term != snap.term:
                        raise CorruptionError(path, rec.offset, f"snapshot term {snap.term} != entry {snap.index}'s")
                del entries[:drop], where[:drop]
            elif kind == RecordType.COMMIT:
                seq = decode_commit(rec.body, path, rec.offset)
                if batch_seq and seq != batch_seq + 1:
                    raise CorruptionError(path, rec.offset, f"commit {seq} follows commit {batch_seq}")
                batch_seq = seq
            elif kind != RecordType.SEGMENT_HEADER or rec.offset != 0:
                raise CorruptionError(path, rec.offset, f"unexpected record type {kind}")
    first_expected = (snap.index if snap else 0) + 1
    if entries and entries[0].index != first_expected:
        path, offset = where[0]
        raise CorruptionError(path, offset, f"log starts at entry {entries[0].index}, expected {first_expected}")
    return Replayed(hard_state=hs, snapshot=snap, entries=tuple(entries), batch_seq=batch_seq)
    # END SOLUTION


# --------------------------------------------------------------------------
# The durable log (I/O around the pure parts above).
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _Segment:
    """Book-keeping for one segment file."""

    seq: int
    path: str
    size_bytes: int  # bytes in the file, including records still in the write buffer
    max_index: int  # highest entry index ever written into it (0 if none)


@dataclass(slots=True)
class _Recovered:
    """What recovery read: the state, the segments and the files it found."""

    state: RestoreState
    replayed: Replayed
    segments: list[_Segment]
    snapshot_files: dict[int, str]
    torn_bytes: int


def _validate_entries(entries: tuple[Entry, ...]) -> None:
    """Refuse entries that are not well-formed, contiguous, term-ordered Entry values."""
    prev: Entry | None = None
    for e in entries:
        if not isinstance(e, Entry) or not isinstance(e.data, bytes) or not isinstance(e.type, EntryType):
            raise InvalidArgument("append takes a tuple of Entry with bytes data and an EntryType")
        if not (1 <= e.index <= _U64_MAX and 1 <= e.term <= _U64_MAX):
            raise InvalidArgument(f"entry index and term must be in [1, 2**64), got {e.index}/{e.term}")
        if len(e.data) > limits.MAX_MESSAGE_BYTES:
            raise LimitExceeded("entry data", len(e.data), limits.MAX_MESSAGE_BYTES)
        if prev is not None and (e.index != prev.index + 1 or e.term < prev.term):
            raise InvalidArgument(f"entries must be contiguous with non-decreasing terms ({prev.index} then {e.index})")
        prev = e


def _validate_hard_state(hs: HardState) -> None:
    """Refuse a hard state with out-of-range numbers or an oversized or non-string vote."""
    if not isinstance(hs, HardState):
        raise InvalidArgument("set_hard_state takes a HardState")
    if not (0 <= hs.term <= _U64_MAX and 0 <= hs.commit_index <= _U64_MAX):
        raise InvalidArgument("hard-state term and commit_index must be in [0, 2**64)")
    if hs.voted_for is not None:
        if not isinstance(hs.voted_for, str):
            raise InvalidArgument("voted_for must be a string or None")
        size = len(hs.voted_for.encode())
        if size > limits.MAX_NODE_ID_BYTES:
            raise LimitExceeded("voted_for", size, limits.MAX_NODE_ID_BYTES)


def _validate_snapshot(snapshot: Snapshot) -> None:
    """Refuse a snapshot with out-of-range meta, a bad configuration or oversized data."""
    if not isinstance(snapshot, Snapshot) or not isinstance(snapshot.data, bytes):
        raise InvalidArgument("save_snapshot takes a Snapshot with bytes data")
    meta = snapshot.meta
    if not (0 <= meta.index <= _U64_MAX and 0 <= meta.term <= _U64_MAX):
        raise InvalidArgument("snapshot index and term must be in [0, 2**64)")
    if len(snapshot.data) > limits.MAX_SNAPSHOT_DATA_BYTES:
        raise LimitExceeded("snapshot data", len(snapshot.data), limits.MAX_SNAPSHOT_DATA_BYTES)
    for member in meta.configuration.members():
        if not isinstance(member, str) or len(member.encode()) > limits.MAX_NODE_ID_BYTES:
            raise InvalidArgument(f"configuration member {member!r} is not a node id")


class DurableRaftLog:
    """A :class:`~kvstore.raft.storage.LogStorage` on a :class:`~kvstore.fs.FileSystem` directory.

    See the module docstring for the design and ``RAFT_LOG_FORMAT.md`` for the bytes.

    Call rules: create with :meth:`open` (which runs recovery); :meth:`load` once for the
    restart state; then any sequence of ``append`` / ``set_hard_state`` / ``save_snapshot``,
    each batch ended by ``sync()`` (the runtime calls :func:`~kvstore.raft.storage.persist_ready`,
    which does exactly that); :meth:`close` last. Not thread-safe: one caller (the node's
    Raft loop) at a time.

    Durability: after ``sync()`` returns, everything written before it survives a crash;
    before it returns, a crash keeps either all of the batch or none of it. After a
    :class:`~kvstore.errors.StorageError` from any write the log refuses further writes
    (the page cache can no longer be trusted): reopen it.

    Invariants: the entry terms are non-decreasing and the first is at least the snapshot's
    term; the segments are numbered consecutively and only the last one receives records;
    the write buffer is empty outside a batch.
    """

    def __init__(
        self,
        fs: FileSystem,
        directory: str,
        recovered: _Recovered,
        *,
        segment_bytes: int,
        tracer: Tracer,
        node_id: str,
        clock: Callable[[], float],
    ) -> None:
        """Use :meth:`open`."""
        self._fs = fs
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._tracer = tracer
        self._node_id = node_id
        self._clock = clock
        rs = recovered.state
        self._recovered: RestoreState | None = rs
        self._segments = recovered.segments
        self._snapshot_files = recovered.snapshot_files
        self._hard_state = rs.hard_state
        self._snapshot = rs.snapshot
        self._snapshot_ref = recovered.replayed.snapshot
        self._terms: list[int] = [e.term for e in rs.entries]
        self._batch_seq = recovered.replayed.batch_seq
        self._next_snapshot_seq = max([0, *recovered.snapshot_files]) + 1
        self._file: WritableFile | None = None  # the last segment, open for appending
        self._pending_files: list[WritableFile] = []  # snapshot files written, not yet fsynced
        self._buf = bytearray()
        self._in_batch = False
        self._dir_dirty = False
        self._closed = False
        self._failed = False
        self.fsync_count = 0  # file and directory fsyncs issued by sync() (for tests and benchmarks)

    # -- opening and recovery ---------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: str,
        *,
        fs: FileSystem | None = None,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        tracer: Tracer = NULL_TRACER,
        node_id: str = "",
        clock: Callable[[], float] = time.time,
    ) -> DurableRaftLog:
        """Open (creating if missing) the log in ``directory`` and recover it.

        Recovery truncates a torn tail of the last segment, removes a last segment that holds
        no committed batch, snapshot files no committed record refers to, and segments wholly
        covered by the snapshot; then :meth:`load` returns what it found.

        Args:
            directory: the log's own directory (nothing else should live there).
            fs: the file system (default: the real one).
            segment_bytes: close a segment at the first batch boundary at or past this size.
            tracer, node_id, clock: where trace events go and how they are stamped.
        Raises:
            InvalidArgument: ``segment_bytes < 1``.
            CorruptionError: damaged records, a missing segment, an entry gap, a missing or
                damaged snapshot file (the error names the file and offset).
            StorageError: an I/O error.
        """
        if segment_bytes < 1:
            raise InvalidArgument(f"segment_bytes must be >= 1, got {segment_bytes}")
        fs = fs if fs is not None else OSFileSystem()
        fs.make_dirs(directory)
        recovered = _recover(fs, directory, repair=True)
        log = cls(fs, directory, recovered, segment_bytes=segment_bytes, tracer=tracer, node_id=node_id, clock=clock)
        log._collect_garbage()
        log._trace(
            "raft_log_opened",
            segments=len(log._segments),
            first_index=log.first_index(),
            last_index=log.last_index(),
            snapshot_index=log.snapshot_index(),
            torn_bytes=recovered.torn_bytes,
        )
        return log

    def load(self) -> RestoreState:
        """The durable state: hard state, newest snapshot, and the contiguous entries after it.

        The first call after :meth:`open` returns what recovery found; a later call re-reads
        the files (it must not be made in the middle of a batch).

        Raises:
            InvalidArgument: called with unsynced writes (call ``sync()`` first).
            CorruptionError, StorageError: as for :meth:`open`.
        """
        self._check_usable()
        if self._in_batch:
            raise InvalidArgument("load() in the middle of a batch: call sync() first")
        if self._recovered is not None:
            return self._recovered
        return _recover(self._fs, self._dir, repair=False).state

    # -- LogStorage writes --------------------------------------------------------

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Store ``entries``, first deleting every stored entry with index ``>= entries[0].index``.

        Buffered: durable only after :meth:`sync`.

        Raises:
            InvalidArgument / LimitExceeded: entries not contiguous, terms decreasing, data
                over ``MAX_MESSAGE_BYTES``, the first index at or below the snapshot or more
                than one past the last entry, or a term below the entry before it.
            StorageError: an I/O error (the log then refuses further writes).
        """
        self._check_usable()
        if not entries:
            return
        _validate_entries(entries)
        first = entries[0].index
        snap_index = self.snapshot_index()
        if not snap_index < first <= self.last_index() + 1:
            raise InvalidArgument(f"append at {first}: must be in ({snap_index}, {self.last_index() + 1}]")
        prev_term = self.term(first - 1) or 0
        if entries[0].term < prev_term:
            raise InvalidArgument(f"entry {first} has term {entries[0].term} below the previous entry's {prev_term}")
        self._begin_batch()
        del self._terms[first - snap_index - 1 :]
        self._put_many([encode_record(RecordType.ENTRY, encode_entry(e)) for e in entries])
        self._terms.extend(e.term for e in entries)
        seg = self._segments[-1]
        seg.max_index = max(seg.max_index, entries[-1].index)
        self._recovered = None

    def set_hard_state(self, hard_state: HardState) -> None:
        """Store the hard state (buffered: durable only after :meth:`sync`).

        Raises:
            InvalidArgument / LimitExceeded: numbers out of range, voted_for over
                ``MAX_NODE_ID_BYTES``.
            StorageError: an I/O error.
        """
        self._check_usable()
        _validate_hard_state(hard_state)
        self._begin_batch()
        self._put(RecordType.HARD_STATE, encode_hard_state(hard_state))
        self._hard_state = hard_state
        self._recovered = None

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` and drop the entries it covers.

        The entries after ``snapshot.meta.index`` stay if the log holds that index with that
        term (or the index is the current snapshot's, with its term); otherwise every entry
        is dropped. The image is written to a new file now, without fsync; :meth:`sync` makes
        the file and its directory entry durable *before* the SNAPSHOT record that names it
        (so the switch to the new snapshot is atomic: the commit is the switch). Superseded
        snapshot files and segments wholly covered are deleted after that sync.

        Raises:
            InvalidArgument / LimitExceeded: meta out of range, data over
                ``MAX_SNAPSHOT_DATA_BYTES``, a configuration member that is not a node id.
            StorageError: an I/O error.
        """
        self._check_usable()
        _validate_snapshot(snapshot)
        meta = snapshot.meta
        keep = meta.index <= self.last_index() and self.term(meta.index) == meta.term
        self._begin_batch()
        seq = self._next_snapshot_seq
        self._next_snapshot_seq += 1
        image = encode_snapshot_file(seq, snapshot)
        path = posixpath.join(self._dir, snapshot_name(seq))
        try:
            f = self._fs.open_write(path)
            self._snapshot_files[seq] = path
            self._dir_dirty = True
            self._pending_files.append(f)
            f.write(image)
        except StorageError:
            self._failed = True
            raise
        ref = SnapshotRef(seq, meta.index, meta.term, not keep, len(image), zlib.crc32(image))
        self._put(RecordType.SNAPSHOT, encode_snapshot_ref(ref))
        if keep:
            del self._terms[: meta.index - self.snapshot_index()]
        else:
            self._terms.clear()
        self._snapshot = snapshot
        self._snapshot_ref = ref
        self._recovered = None

    def sync(self) -> None:
        """Make every write since the last sync durable: one fsync per file written.

        Order: each new snapshot file, then the directory (if a file was created or removed
        since the last sync), then the segment holding the batch, ended by a COMMIT record.
        A no-op when nothing was written. Afterwards, snapshot files and segments made
        obsolete by a snapshot are deleted (their directory entries become durable at the
        next sync; if they come back after a crash, recovery deletes them again).

        Raises:
            StorageError: an I/O error; the batch may or may not be durable, and the log
                refuses further writes.
        """
        self._check_usable()
        if not self._in_batch:
            return
        try:
            self._put(RecordType.COMMIT, encode_commit(self._batch_seq + 1))
            for f in self._pending_files:
                f.sync()
                f.close()
                self.fsync_count += 1
            self._pending_files.clear()
            if self._dir_dirty:
                self._fs.sync_dir(self._dir)
                self.fsync_count += 1
                self._dir_dirty = False
            self._flush()
            invariant(self._file is not None, "a batch has an open segment")
            if self._file is not None:
                self._file.sync()
                self.fsync_count += 1
        except StorageError:
            self._failed = True
            raise
        self._batch_seq += 1
        self._in_batch = False
        self._collect_garbage()

    def close(self) -> None:
        """Release the file handles. Writes since the last :meth:`sync` are abandoned
        (recovery drops them like a crash would). Idempotent."""
        if self._closed:
            return
        self._closed = True
        handles = [*self._pending_files, *([self._file] if self._file is not None else [])]
        self._pending_files.clear()
        self._file = None
        self._buf.clear()
        for f in handles:
            f.close()

    # -- queries --------------------------------------------------------------

    def snapshot_index(self) -> int:
        """Index covered by the current snapshot (0 if none)."""
        return self._snapshot.meta.index if self._snapshot is not None else 0

    def first_index(self) -> int:
        """Index of the first entry the log can hold now (``snapshot_index() + 1``)."""
        return self.snapshot_index() + 1

    def last_index(self) -> int:
        """Index of the last stored entry (the snapshot index if there is none)."""
        return self.snapshot_index() + len(self._terms)

    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``: the snapshot's at its index, 0 at index 0, None if not held."""
        snap_index = self.snapshot_index()
        if index == snap_index:
            return self._snapshot.meta.term if self._snapshot is not None else 0
        if snap_index < index <= self.last_index():
            return self._terms[index - snap_index - 1]
        return None

    def log_bytes(self) -> int:
        """Bytes of the segment files, including records buffered for the current batch."""
        return sum(s.size_bytes for s in self._segments)

    def segment_count(self) -> int:
        """How many segment files the log has."""
        return len(self._segments)

    def check_invariants(self) -> None:
        """Check the invariants stated in the class docstring."""
        terms = self._terms
        invariant(all(a <= b for a, b in pairwise(terms)), "entry terms never decrease")
        if terms and self._snapshot is not None:
            invariant(terms[0] >= self._snapshot.meta.term, "first entry term >= snapshot term")
        seqs = [s.seq for s in self._segments]
        invariant(seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True, "segments consecutive")
        invariant(all(s.size_bytes >= 0 for s in self._segments), "segment sizes are non-negative")
        invariant(self._in_batch or not self._buf, "the write buffer is empty outside a batch")
        invariant(self._in_batch or not self._pending_files, "no pending snapshot file outside a batch")
        ref = self._snapshot_ref
        invariant((ref is None) == (self._snapshot is None), "a snapshot has a reference record")
        if ref is not None and self._snapshot is not None:
            invariant(ref.index == self._snapshot.meta.index, "snapshot reference matches the snapshot")
            invariant(ref.seq in self._snapshot_files, "the current snapshot has a file")

    # -- internals ----------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise ClosedError("the Raft log is closed")
        if self._failed:
            raise StorageError(f"the Raft log in {self._dir} failed an earlier write; reopen it")

    def _begin_batch(self) -> None:
        """Start a batch if none is open: roll over to a new segment if the last one is full."""
        if self._in_batch:
            return
        last = self._segments[-1] if self._segments else None
        try:
            if last is None or last.size_bytes >= self._segment_bytes:
                self._roll(last.seq + 1 if last is not None else 1)
            elif self._file is None:
                self._file = self._fs.open_write(last.path, append=True)
        except StorageError:
            self._failed = True
            raise
        self._in_batch = True

    def _roll(self, seq: int) -> None:
        """Create segment ``seq`` and buffer its header and the copies of the current state."""
        if self._file is not None:
            self._file.close()
            self._file = None
        path = posixpath.join(self._dir, segment_name(seq))
        self._file = self._fs.open_write(path)
        self._dir_dirty = True
        self._segments.append(_Segment(seq=seq, path=path, size_bytes=0, max_index=0))
        self._put(RecordType.SEGMENT_HEADER, encode_segment_header(seq))
        self._put(RecordType.HARD_STATE, encode_hard_state(self._hard_state))
        ref = self._snapshot_ref
        if ref is not None:
            copy = SnapshotRef(ref.seq, ref.index, ref.term, False, ref.file_bytes, ref.file_crc)
            self._put(RecordType.SNAPSHOT, encode_snapshot_ref(copy))
        self._trace("raft_log_segment_created", seq=seq)

    def _put(self, record_type: RecordType, body: bytes) -> None:
        """Buffer one record for the last segment."""
        self._put_many([encode_record(record_type, body)])

    def _put_many(self, records: list[bytes]) -> None:
        """Buffer encoded records for the last segment; hand the buffer to the OS when it is large."""
        chunk = b"".join(records)
        self._buf += chunk
        self._segments[-1].size_bytes += len(chunk)
        if len(self._buf) >= WRITE_BUFFER_BYTES:
            try:
                self._flush()
            except StorageError:
                self._failed = True
                raise

    def _flush(self) -> None:
        if self._buf and self._file is not None:
            self._file.write(bytes(self._buf))
            self._buf.clear()

    def _collect_garbage(self) -> None:
        """Delete segments wholly covered by the (durable) snapshot and unreferenced snapshot files.

        Only a prefix of the segments, never the last, and only segments whose every entry is
        at or below the snapshot index (their hard-state and snapshot records are superseded
        by the copies at the start of every later segment).
        """
        snap_index = self.snapshot_index()
        removed: list[str] = []
        while len(self._segments) > 1 and self._segments[0].max_index <= snap_index:
            removed.append(self._segments.pop(0).path)
        current = self._snapshot_ref.seq if self._snapshot_ref is not None else None
        removed += [p for seq, p in self._snapshot_files.items() if seq != current]
        self._snapshot_files = {seq: p for seq, p in self._snapshot_files.items() if seq == current}
        if not removed:
            return
        self._dir_dirty = True
        for path in removed:
            self._fs.remove(path)  # a StorageError leaves a stray file that recovery removes later
        self._trace("raft_log_files_removed", files=[posixpath.basename(p) for p in removed])

    def _trace(self, event: str, **fields: object) -> None:
        self._tracer.emit(
            TraceEvent(
                time=self._clock(),
                node=self._node_id,
                term=self._hard_state.term,
                role="",
                event=event,
                fields=dict(fields),
            )
        )


def _recover(fs: FileSystem, directory: str, *, repair: bool) -> _Recovered:
    """Read every segment and the current snapshot of ``directory`` into a state.

    With ``repair``, the torn tail of the last segment is truncated (and fsynced) and a last
    segment without any COMMIT is removed; without it they are only skipped.

    Raises:
        CorruptionError: see :meth:`DurableRaftLog.open`.
    """
    names = fs.list_dir(directory)
    seqs = sorted(int(m.group(1)) for n in names if (m := _SEGMENT_RE.match(n)))
    snapshot_files = {int(m.group(1)): posixpath.join(directory, n) for n in names if (m := _SNAPSHOT_RE.match(n))}
    for a, b in pairwise(seqs):
        if b != a + 1:
            missing = posixpath.join(directory, segment_name(a + 1))
            raise CorruptionError(missing, -1, f"segment missing (segments {a} and {b} exist)")
    segments: list[_Segment] = []
    stream: list[tuple[str, Sequence[RawRecord]]] = []
    torn_bytes = 0
    for i, seq in enumerate(seqs):
        path = posixpath.join(directory, segment_name(seq))
        data = fs.read_file(path)
        scan = scan_records(data, path)
        records = list(scan.records)
        if i == len(seqs) - 1:
            commits = [k for k, r in enumerate(records) if r.type == RecordType.COMMIT]
            records = records[: commits[-1] + 1] if commits else []
            cut = records[-1].end if records else 0
            torn_bytes += len(data) - cut
            if repair and not records:
                fs.remove(path)
            elif repair and cut < len(data):
                _truncate_durably(fs, path, cut)
            if not records:
                continue
        elif scan.valid_bytes != len(data) or not records or records[-1].type != RecordType.COMMIT:
            raise CorruptionError(path, scan.valid_bytes, "a segment that is not the last must end with a commit")
        _check_segment_header(records, path, seq)
        segments.append(_Segment(seq=seq, path=path, size_bytes=records[-1].end, max_index=_max_entry_index(records)))
        stream.append((path, records))
    replayed = replay_segments(stream)
    snapshot = _read_snapshot(fs, directory, replayed.snapshot, snapshot_files)
    state = RestoreState(hard_state=replayed.hard_state, snapshot=snapshot, entries=replayed.entries)
    return _Recovered(state, replayed, segments, snapshot_files, torn_bytes)


def _truncate_durably(fs: FileSystem, path: str, size: int) -> None:
    """Cut ``path`` to ``size`` bytes and fsync it (so later appends never follow stale bytes)."""
    fs.truncate(path, size)
    f = fs.open_write(path, append=True)
    try:
        f.sync()
    finally:
        f.close()


def _check_segment_header(records: Sequence[RawRecord], path: str, seq: int) -> None:
    """The first record must be a SEGMENT_HEADER naming this segment's number."""
    first = records[0]
    if first.type != RecordType.SEGMENT_HEADER or first.offset != 0:
        raise CorruptionError(path, first.offset, "segment does not start with a segment header")
    found = decode_segment_header(first.body, path, first.offset)
    if found != seq:
        raise CorruptionError(path, first.offset, f"segment header says segment {found}, the file name {seq}")


def _max_entry_index(records: Sequence[RawRecord]) -> int:
    """Highest index of the ENTRY records among ``records`` (0 if none)."""
    top = 0
    for r in records:
        if r.type == RecordType.ENTRY and len(r.body) >= _ENTRY.size:
            top = max(top, int(_ENTRY.unpack_from(r.body)[1]))
    return top


def _read_snapshot(fs: FileSystem, directory: str, ref: SnapshotRef | None, files: dict[int, str]) -> Snapshot | None:
    """Read and verify the snapshot file that ``ref`` names.

    Raises:
        CorruptionError: the file is missing, or its length, checksum or contents do not
            match the record that names it.
    """
    if ref is None:
        return None
    path = files.get(ref.seq, posixpath.join(directory, snapshot_name(ref.seq)))
    if ref.seq not in files:
        raise CorruptionError(path, -1, "the current snapshot's file is missing")
    data = fs.read_file(path)
    if len(data) != ref.file_bytes or zlib.crc32(data) != ref.file_crc:
        raise CorruptionError(path, 0, "snapshot file does not match the length and checksum of its record")
    seq, snapshot = decode_snapshot_file(data, path)
    if (seq, snapshot.meta.index, snapshot.meta.term) != (ref.seq, ref.index, ref.term):
        raise CorruptionError(path, 0, "snapshot file does not match its record")
    return snapshot
