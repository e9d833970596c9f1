"""The write-ahead log: every write batch, checksummed, before it reaches the memtable.

Theory of operation. Each :class:`~kvstore.lsm.engine.WriteBatch` becomes one *record* (so a
batch is recovered whole or not at all). A record is a 12-byte header — payload checksum,
payload length, and a checksum of those two fields — followed by the payload (the format is
in ``FORMAT.md``, section "WAL"). The header has its own checksum so that a damaged length
field is detected instead of being mistaken for a record that runs off the end of the file.

Recovery (:func:`read_records`) tells a *torn tail* from *corruption*, as LevelDB's log
reader does: a writer that died mid-record leaves a short header, a record whose length runs
past the end of the file, or a zero-filled tail — recovery stops there silently. A checksum
mismatch anywhere else is damage to data that was once complete: :class:`CorruptionError`
with the file and the offset of the bad record.

Group commit (:class:`WalWriter`): appenders add records to a user-space buffer (under the
engine's write lock); a writer that needs durability calls :meth:`WalWriter.sync_to` with the
end offset of its record *after releasing the write lock*. The first such writer writes the
buffer and fsyncs; writers whose records were covered by that fsync return without another.

The same record framing carries the manifest (see :mod:`kvstore.lsm.manifest`).
"""

from __future__ import annotations

import struct
import threading
import zlib
from itertools import accumulate, pairwise

from kvstore.errors import CorruptionError, StorageError
from kvstore.fs import WritableFile
from kvstore.invariants import invariant

HEADER = struct.Struct("<III")  # payload crc32, payload length, header crc32 (of the first 8 bytes)
HEADER_BYTES = HEADER.size
_LEN_CRC = struct.Struct("<II")
_U32 = struct.Struct("<I")

# A value length of 0xFFFFFFFF in a batch marks a tombstone (delete). Do not renumber.
TOMBSTONE_LEN = 0xFFFFFFFF

# User-space buffer of the WAL writer: records are handed to the OS in chunks of this size
# (one write syscall per ~64 KiB instead of per record) unless a sync asks for them sooner.
WAL_BUFFER_BYTES = 64 * 1024


def encode_record(payload: bytes) -> bytes:
    """Frame ``payload`` as one WAL record: ``crc32(payload) | len | crc32(crc|len) | payload``.

    All integers are unsigned 32-bit little-endian; checksums are CRC-32 (``zlib.crc32``).
    """
    # BEGIN SOLUTION lsm-memtable-wal
    head = _LEN_CRC.pack(zlib.crc32(payload), len(payload))
    return head + _U32.pack(zlib.crc32(head)) + payload
    # END SOLUTION


def read_records(data: bytes, path: str) -> tuple[list[bytes], int]:
    """Decode every complete record of a log file's contents.

    Args:
        data: the whole file.
        path: the file's name, for errors.
    Returns:
        (payloads in order, offset where the valid records end). The offset is
        ``len(data)`` unless the file ends in a torn tail.
    Raises:
        CorruptionError: a header or payload checksum fails anywhere except in a torn tail
            (a tail that is too short for its header or length, or all zero bytes).
    """
    # BEGIN SOLUTION lsm-memtable-wal
    out: list[bytes] = []
    off = 0
    n = len(data)
    while off < n:
        if n - off < HEADER_BYTES:
            break  # torn: the writer died inside a header
        crc, length, head_crc = HEADER.unpack_from(data, off)
        if zlib.crc32(data[off : off + 8]) != head_crc:
            if not data[off:].strip(b"\0"):
                break  # zero-filled tail (preallocated or never-written blocks)
            raise CorruptionError(path, off, "WAL record header checksum mismatch")
        end = off + HEADER_BYTES + length
        if end > n:
            break  # torn: the payload was cut short
        payload = data[off + HEADER_BYTES : end]
        if zlib.crc32(payload) != crc:
            raise CorruptionError(path, off, "WAL record payload checksum mismatch")
        out.append(payload)
        off = end
    return out, off
    # END SOLUTION


def encode_batch(keys: list[bytes], values: list[bytes | None]) -> bytes:
    """Encode a batch columnar: ``count | key_len* | value_len* | keys | values``.

    Lengths are u32 little-endian; a value length of ``TOMBSTONE_LEN`` means delete (no bytes).
    Columnar layout lets one ``struct`` call pack or unpack all the lengths.
    """
    n = len(keys)
    if None in values:
        vlens = [TOMBSTONE_LEN if v is None else len(v) for v in values]
        present = [v for v in values if v is not None]
    else:
        vlens = list(map(len, values))  # type: ignore[arg-type]  # no None here
        present = values  # type: ignore[assignment]
    head = struct.pack(f"<I{n}I{n}I", n, *map(len, keys), *vlens)
    return b"".join([head, *keys, *present])


def decode_batch(payload: bytes, path: str, offset: int) -> tuple[list[bytes], list[bytes | None]]:
    """Inverse of :func:`encode_batch`.

    Raises:
        CorruptionError: the payload's lengths do not add up (checksummed data that is still
            malformed means a bug or deliberate damage; either way it is not trusted).
    """
    try:
        (n,) = _U32.unpack_from(payload, 0)
        lens = struct.unpack_from(f"<{2 * n}I", payload, 4)
    except struct.error as e:
        raise CorruptionError(path, offset, f"malformed batch header: {e}") from None
    klens = lens[:n]
    vlens = lens[n:]
    pos = 4 + 8 * n
    key_ends = list(accumulate(klens, initial=pos))
    keys = [payload[a:b] for a, b in pairwise(key_ends)]
    pos = key_ends[-1]
    values: list[bytes | None] = []
    for vl in vlens:
        if vl == TOMBSTONE_LEN:
            values.append(None)
        else:
            values.append(payload[pos : pos + vl])
            pos += vl
    if pos != len(payload) or any(len(v) != vl for v, vl in zip(values, vlens, strict=True) if v is not None):
        raise CorruptionError(path, offset, "batch lengths do not match its payload")
    return keys, values


class WalWriter:
    """Appends records to one log file with a user-space buffer and group-committed fsyncs.

    Call rules: ``add`` is called by one thread at a time (the engine's write lock);
    ``sync_to`` and ``flush`` may be called from any thread; nothing after ``close``.

    Fail-stop: once a write or an fsync of the file fails (a full disk, an I/O error), the file
    may end in part of a record. Appending after it would turn that torn tail into damage in
    the middle of the log, which recovery must refuse; so from then on every ``add``,
    ``flush`` and ``sync_to`` raises :class:`~kvstore.errors.StorageError` and ``close`` writes
    nothing more. The engine must be reopened (recovery drops the torn tail).

    Invariants: ``synced_offset <= written_offset <= end_offset``.
    """

    def __init__(self, file: WritableFile) -> None:
        self.file = file
        self.path = file.path
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self.end_offset = file.size()  # logical end, including buffered records
        self.written_offset = self.end_offset  # handed to the OS
        self.synced_offset = self.end_offset  # durable
        self._buf_lock = threading.Lock()  # guards _buf, _buf_bytes, end_offset
        self._io_lock = threading.Lock()  # serializes file writes and fsyncs
        self.sync_count = 0
        self._closed = False
        self._failed: str | None = None  # why the file stopped taking writes (fail-stop)

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise StorageError(f"WAL {self.path} refuses writes after an earlier failure ({self._failed}); reopen")

    def add(self, payload: bytes) -> int:
        """Buffer one record; return the log offset at which it ends (for :meth:`sync_to`)."""
        if self._failed is not None:
            self._check_usable()
        rec = encode_record(payload)
        with self._buf_lock:
            self._buf.append(rec)
            self._buf_bytes += len(rec)
            self.end_offset += len(rec)
            end = self.end_offset
            full = self._buf_bytes >= WAL_BUFFER_BYTES
        if full:
            self.flush()
        return end

    def flush(self) -> None:
        """Hand buffered records to the OS (no fsync)."""
        with self._io_lock:
            self._write_out()

    def _write_out(self) -> None:
        """REQUIRES: ``_io_lock`` held."""
        self._check_usable()
        with self._buf_lock:
            if not self._buf:
                return
            chunk = b"".join(self._buf)
            self._buf = []
            self._buf_bytes = 0
            upto = self.end_offset
        try:
            self.file.write(chunk)
        except BaseException as e:
            self._failed = f"write failed: {e}"
            raise
        self.written_offset = upto

    def sync_to(self, offset: int) -> None:
        """Return once every record ending at or before ``offset`` is durable (group commit)."""
        if self.synced_offset >= offset:
            return
        with self._io_lock:
            if self.synced_offset >= offset:
                return  # another writer's fsync covered us
            self._write_out()
            target = self.written_offset
            try:
                self.file.sync()
            except BaseException as e:
                self._failed = f"fsync failed: {e}"
                raise
            self.sync_count += 1
            self.synced_offset = target

    def close(self, *, sync: bool) -> None:
        """Write out the buffer, fsync if ``sync``, and close the file."""
        if self._closed:
            return
        with self._io_lock:
            if self._failed is not None:  # write nothing after a possibly torn record
                self._closed = True
                self.file.close()
                return
            self._write_out()
            if sync and self.synced_offset < self.written_offset:
                self.file.sync()
                self.synced_offset = self.written_offset
            self.file.close()
            self._closed = True

    def check_invariants(self) -> None:
        """Offsets are ordered."""
        invariant(self.synced_offset <= self.written_offset <= self.end_offset, "synced <= written <= end")
