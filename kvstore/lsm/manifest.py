"""The manifest: which SSTables make up the database, as a log of version edits.

Theory of operation. The set of live tables per level is a :class:`Version`. Every change
(a flush adds a level-0 table; a compaction deletes its inputs and adds its outputs) is a
:class:`VersionEdit`, appended as one record (the WAL framing of :mod:`kvstore.lsm.wal`) to the
current ``MANIFEST-NNNNNN`` file and fsynced *before* the change is used or any file it
obsoletes is removed. The file ``CURRENT`` names the live manifest; it is replaced atomically
(write ``CURRENT.tmp``, fsync, rename, fsync the directory), so after a crash it names either
the old or the new manifest, both complete.

On open, the engine reads ``CURRENT``, replays the named manifest's edits onto an empty
version, and then starts a *new* manifest whose first record is a snapshot of the result (so
manifests never grow without bound across restarts). A torn last record of the manifest is a
change whose fsync never finished: it is dropped, and its half-made table is garbage.

Edits are tagged fields (``FORMAT.md``, "Manifest"). Tags are on disk: do not renumber.
"""

from __future__ import annotations

import itertools
import posixpath
import struct
from bisect import bisect_left
from dataclasses import dataclass, field

from kvstore.errors import CorruptionError
from kvstore.fs import FileSystem, WritableFile, write_file_durably
from kvstore.invariants import invariant
from kvstore.lsm.wal import encode_record, read_records

# Version edit field tags. Do not renumber: they are on disk.
TAG_LOG_NUMBER = 1
TAG_NEXT_FILE_NUMBER = 2
TAG_DELETED_FILE = 3
TAG_ADDED_FILE = 4

NUM_LEVELS = 7  # L0..L6: with a size ratio of 10 and a 10 MiB L1, L6 holds 10 TiB
_U64 = struct.Struct("<Q")
_DELETED = struct.Struct("<BQ")  # level, file number
_ADDED = struct.Struct("<BQQQQII")  # level, number, size, entries, tombstones, smallest len, largest len


@dataclass(frozen=True, slots=True)
class FileMeta:
    """One live SSTable: its number, size and key range."""

    number: int
    size_bytes: int
    entries: int
    tombstones: int
    smallest: bytes
    largest: bytes


@dataclass(frozen=True, slots=True)
class VersionEdit:
    """A change to the version: files added and deleted, and bookkeeping numbers.

    ``log_number``: WAL files numbered below it are fully reflected in tables.
    ``next_file_number``: the next unused file number.
    """

    log_number: int | None = None
    next_file_number: int | None = None
    deleted: tuple[tuple[int, int], ...] = ()  # (level, file number)
    added: tuple[tuple[int, FileMeta], ...] = ()  # (level, file)


def encode_edit(edit: VersionEdit) -> bytes:
    """Serialize an edit as a sequence of tagged fields (u8 tag, little-endian integers)."""
    # BEGIN SOLUTION lsm-compaction
    out: list[bytes] = []
    if edit.log_number is not None:
        out += [bytes([TAG_LOG_NUMBER]), _U64.pack(edit.log_number)]
    if edit.next_file_number is not None:
        out += [bytes([TAG_NEXT_FILE_NUMBER]), _U64.pack(edit.next_file_number)]
    for level, number in edit.deleted:
        out += [bytes([TAG_DELETED_FILE]), _DELETED.pack(level, number)]
    for level, f in edit.added:
        out.append(bytes([TAG_ADDED_FILE]))
        out.append(_ADDED.pack(level, f.number, f.size_bytes, f.entries, f.tombstones, len(f.smallest), len(f.largest)))
        out += [f.smallest, f.largest]
    return b"".join(out)
    # END SOLUTION


def decode_edit(data: bytes, path: str, offset: int) -> VersionEdit:
    """Inverse of :func:`encode_edit`.

    Raises:
        CorruptionError: unknown tag or a field running past the record.
    """
    # BEGIN SOLUTION lsm-compaction
    log_number: int | None = None
    next_file: int | None = None
    deleted: list[tuple[int, int]] = []
    added: list[tuple[int, FileMeta]] = []
    pos = 0
    try:
        while pos < len(data):
            tag = data[pos]
            pos += 1
            if tag == TAG_LOG_NUMBER:
                (log_number,) = _U64.unpack_from(data, pos)
                pos += 8
            elif tag == TAG_NEXT_FILE_NUMBER:
                (next_file,) = _U64.unpack_from(data, pos)
                pos += 8
            elif tag == TAG_DELETED_FILE:
                deleted.append(_DELETED.unpack_from(data, pos))
                pos += _DELETED.size
            elif tag == TAG_ADDED_FILE:
                level, number, size, entries, tombs, slen, llen = _ADDED.unpack_from(data, pos)
                pos += _ADDED.size
                smallest, largest = data[pos : pos + slen], data[pos + slen : pos + slen + llen]
                pos += slen + llen
                if pos > len(data):
                    raise struct.error("key runs past the record")
                added.append((level, FileMeta(number, size, entries, tombs, smallest, largest)))
            else:
                raise struct.error(f"unknown tag {tag}")
    except struct.error as e:
        raise CorruptionError(path, offset, f"malformed version edit: {e}") from None
    return VersionEdit(log_number, next_file, tuple(deleted), tuple(added))
    # END SOLUTION


@dataclass(frozen=True, slots=True)
class Version:
    """The live tables, per level. Immutable: an edit produces a new Version.

    ``levels[0]`` is ordered oldest to newest (by file number; tables may overlap).
    ``levels[1:]`` are each sorted by key and non-overlapping.
    """

    levels: tuple[tuple[FileMeta, ...], ...] = field(default_factory=lambda: ((),) * NUM_LEVELS)

    def apply(self, edit: VersionEdit) -> Version:
        """The version after ``edit``.

        Raises:
            InvariantViolation: the edit deletes a file that is not there, adds one twice, or
                leaves a level >= 1 with overlapping tables.
        """
        # BEGIN SOLUTION lsm-compaction
        levels = [list(files) for files in self.levels]
        for level, number in edit.deleted:
            before = len(levels[level])
            levels[level] = [f for f in levels[level] if f.number != number]
            invariant(len(levels[level]) == before - 1, f"deleted file {number} was live at level {level}")
        for level, f in edit.added:
            invariant(0 <= level < NUM_LEVELS, "level in range")
            levels[level].append(f)
        levels[0].sort(key=lambda f: f.number)
        for files in levels[1:]:
            files.sort(key=lambda f: f.smallest)
        result = Version(tuple(tuple(files) for files in levels))
        result.check_invariants()
        return result
        # END SOLUTION

    def files(self) -> list[tuple[int, FileMeta]]:
        """Every live file with its level."""
        return [(level, f) for level, files in enumerate(self.levels) for f in files]

    def level_bytes(self, level: int) -> int:
        """Total table bytes at ``level``."""
        return sum(f.size_bytes for f in self.levels[level])

    def overlapping(self, level: int, smallest: bytes, largest: bytes) -> list[FileMeta]:
        """Files at ``level`` whose key range meets ``[smallest, largest]``."""
        return [f for f in self.levels[level] if f.largest >= smallest and f.smallest <= largest]

    def deeper_may_contain(self, level: int, key: bytes) -> bool:
        """Whether a level below ``level`` has a table whose range covers ``key``."""
        for files in self.levels[level + 1 :]:
            i = bisect_left([f.largest for f in files], key)
            if i < len(files) and files[i].smallest <= key:
                return True
        return False

    def snapshot_edit(self, *, log_number: int, next_file_number: int) -> VersionEdit:
        """An edit that rebuilds this version from empty (first record of a new manifest)."""
        return VersionEdit(log_number, next_file_number, (), tuple(self.files()))

    def check_invariants(self) -> None:
        """Numbers unique; levels >= 1 sorted and non-overlapping; ranges well-formed."""
        numbers = [f.number for _, f in self.files()]
        invariant(len(numbers) == len(set(numbers)), "every live file number is unique")
        invariant(len(self.levels) == NUM_LEVELS, "every level is present")
        for _, f in self.files():
            invariant(f.smallest <= f.largest, "a file's smallest key is <= its largest")
        for level, files in enumerate(self.levels[1:], start=1):
            for a, b in itertools.pairwise(files):
                invariant(a.largest < b.smallest, f"tables at level {level} do not overlap")


def manifest_name(number: int) -> str:
    """File name of manifest ``number``."""
    return f"MANIFEST-{number:06d}"


@dataclass(frozen=True, slots=True)
class RecoveredState:
    """What replaying the manifest produced."""

    version: Version
    log_number: int
    next_file_number: int
    manifest_number: int


def recover(fs: FileSystem, dirname: str) -> RecoveredState:
    """Read ``CURRENT`` and replay the manifest it names.

    Raises:
        CorruptionError: ``CURRENT`` malformed or naming a missing file; a manifest record
            damaged before its tail; an edit that does not apply.
    """
    current = posixpath.join(dirname, "CURRENT")
    raw = fs.read_file(current)
    name = raw.decode("ascii", "replace").strip()
    if not raw.endswith(b"\n") or not name.startswith("MANIFEST-") or not name[9:].isdigit():
        raise CorruptionError(current, 0, f"CURRENT does not name a manifest: {raw[:40]!r}")
    path = posixpath.join(dirname, name)
    if not fs.exists(path):
        raise CorruptionError(current, 0, f"CURRENT names a missing manifest {name}")
    records, _ = read_records(fs.read_file(path), path)
    version = Version()
    log_number = 0
    next_file = 0
    offset = 0
    for rec in records:
        edit = decode_edit(rec, path, offset)
        try:
            version = version.apply(edit)
        except AssertionError as e:
            raise CorruptionError(path, offset, f"version edit does not apply: {e}") from None
        log_number = edit.log_number if edit.log_number is not None else log_number
        next_file = edit.next_file_number if edit.next_file_number is not None else next_file
        offset += 12 + len(rec)
    if not records:
        raise CorruptionError(path, 0, "manifest holds no complete record")
    return RecoveredState(version, log_number, next_file, int(name[9:]))


class ManifestWriter:
    """Appends edits to one manifest file, each fsynced before :meth:`append` returns.

    Call rules: one caller at a time (the engine holds its manifest lock).
    """

    def __init__(self, fs: FileSystem, dirname: str, number: int, file: WritableFile) -> None:
        self._fs = fs
        self.dirname = dirname
        self.number = number
        self._file = file

    @classmethod
    def create(cls, fs: FileSystem, dirname: str, number: int, snapshot: VersionEdit) -> ManifestWriter:
        """Write a new manifest holding ``snapshot``, make it durable, and point CURRENT at it."""
        name = manifest_name(number)
        f = fs.open_write(posixpath.join(dirname, name))
        f.write(encode_record(encode_edit(snapshot)))
        f.sync()
        fs.sync_dir(dirname)
        write_file_durably(fs, posixpath.join(dirname, "CURRENT"), (name + "\n").encode("ascii"))
        return cls(fs, dirname, number, f)

    def append(self, edit: VersionEdit) -> None:
        """Log ``edit`` durably (write + fsync)."""
        self._file.write(encode_record(encode_edit(edit)))
        self._file.sync()

    def size(self) -> int:
        """Bytes in the manifest so far."""
        return self._file.size()

    def close(self) -> None:
        """Close the file (every append was already synced)."""
        self._file.close()
