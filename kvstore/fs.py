"""The file-system seam: every byte the engine (and later the Raft log) stores goes through here.

Theory of operation. Storage code never calls ``open``/``os.*`` directly; it asks a
:class:`FileSystem` for :class:`WritableFile` and :class:`ReadableFile` handles and for the
few directory operations a crash-safe store needs (list, remove, rename, hard link, fsync of
a directory). Two implementations stand behind the protocol:

* :class:`OSFileSystem` — the real one, thin wrappers over ``os.open``/``os.pread``/
  ``os.fsync``; every ``OSError`` becomes a :class:`~kvstore.errors.StorageError` naming the
  path.
* :class:`SimFileSystem` — an in-memory disk for tests and the simulator. It keeps, for every
  file, the bytes the process sees *and* the bytes that are durable (as of the last
  ``sync``), and for every directory the entries the process sees *and* the durable entries
  (as of the last ``sync_dir``). :meth:`SimFileSystem.reboot` models power loss: every byte
  not yet fsynced is lost, including un-fsynced creations, renames and removals, and the
  last write may survive *torn* (a prefix of it). :meth:`SimFileSystem.flip_bit` damages a
  stored byte. A crash can be scheduled at the N-th mutating operation
  (:meth:`SimFileSystem.schedule_crash`): that operation and every later one raise
  :class:`SimulatedCrash`, as if the machine had stopped.

The durability rules the simulated disk enforces are the POSIX ones careful stores rely on:

1. ``WritableFile.sync()`` makes that file's *contents* durable, not its directory entry.
2. ``sync_dir(d)`` makes the entries of ``d`` (creations, renames, removals) durable.
3. ``rename`` atomically replaces the destination (the whole rename is lost or kept).
4. A handle opened for reading keeps working after its file is removed (an open inode).

Directories themselves (``make_dirs``) are treated as durable at once; stores create their
directory once, at open, and the interesting crashes are inside it.
"""

from __future__ import annotations

import mmap
import os
import posixpath
import random
import threading
import weakref
from dataclasses import dataclass
from typing import Protocol

from kvstore.errors import StorageError
from kvstore.invariants import invariant


class SimulatedCrash(BaseException):
    """The simulated machine stopped: raised by :class:`SimFileSystem` at and after a crash point.

    Deliberately a ``BaseException`` (like ``KeyboardInterrupt``): storage code must not catch
    it as an operating error, so it unwinds everything the way a power cut would.
    """


class WritableFile(Protocol):
    """A file open for appending.

    Call rules: ``write`` appends at the end; ``sync`` makes everything written so far
    durable (fsync); after ``close`` no other call is allowed. ``size`` is the number of bytes
    in the file including those not yet synced.
    """

    path: str

    def write(self, data: bytes) -> None:
        """Append ``data``. Raises StorageError on an I/O error."""
        ...

    def sync(self) -> None:
        """Make the file's contents durable (fsync). Raises StorageError."""
        ...

    def size(self) -> int:
        """Bytes in the file, synced or not."""
        ...

    def close(self) -> None:
        """Release the handle (does not sync)."""
        ...


class ReadableFile(Protocol):
    """A file open for positional reads; safe to share between threads.

    ``read_at`` returns fewer bytes than asked only at the end of the file.
    """

    path: str

    def read_at(self, offset: int, length: int) -> bytes:
        """Return up to ``length`` bytes starting at ``offset``. Raises StorageError."""
        ...

    def size(self) -> int:
        """The file's length in bytes."""
        ...

    def close(self) -> None:
        """Release the handle."""
        ...


class FileSystem(Protocol):
    """The operations a crash-safe store needs. Paths are strings; errors are StorageError.

    Contract: nothing is durable until synced — file contents by ``WritableFile.sync``,
    directory entries (create, rename, remove, link) by ``sync_dir`` of their directory.
    """

    def open_write(self, path: str, *, append: bool = False) -> WritableFile:
        """Create (or truncate, unless ``append``) ``path`` and open it for appending."""
        ...

    def open_read(self, path: str) -> ReadableFile:
        """Open an existing file for reading. Raises StorageError if it does not exist."""
        ...

    def read_file(self, path: str) -> bytes:
        """The whole contents of ``path``."""
        ...

    def exists(self, path: str) -> bool:
        """Whether ``path`` names a file or directory."""
        ...

    def file_size(self, path: str) -> int:
        """Length of the file in bytes."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """Names (not paths) of the entries of directory ``path``, sorted."""
        ...

    def make_dirs(self, path: str) -> None:
        """Create ``path`` and missing parents (no error if it exists)."""
        ...

    def remove(self, path: str) -> None:
        """Unlink a file (open read handles keep working)."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically move ``src`` to ``dst``, replacing ``dst``."""
        ...

    def link(self, src: str, dst: str) -> None:
        """Create a hard link ``dst`` to ``src``; StorageError if impossible."""
        ...

    def truncate(self, path: str, size: int) -> None:
        """Cut the file to ``size`` bytes (durable after a sync of the file)."""
        ...

    def sync_dir(self, path: str) -> None:
        """Make the entries of directory ``path`` durable."""
        ...


def write_file_durably(fs: FileSystem, path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably: write a temp file, fsync, rename, fsync dir.

    After a crash at any point, ``path`` holds either its old contents or ``data``.
    """
    tmp = path + ".tmp"
    f = fs.open_write(tmp)
    try:
        f.write(data)
        f.sync()
    finally:
        f.close()
    fs.rename(tmp, path)
    fs.sync_dir(posixpath.dirname(path) or ".")


# --------------------------------------------------------------------------
# The real file system.
# --------------------------------------------------------------------------


def _storage_error(op: str, path: str, err: OSError) -> StorageError:
    return StorageError(f"{op} {path}: {err.strerror or err}")


class _OSWritableFile:
    """An append-only OS file descriptor."""

    __slots__ = ("_fd", "_size", "path")

    def __init__(self, path: str, fd: int, size: int) -> None:
        self.path = path
        self._fd = fd
        self._size = size

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
                self._size += n
        except OSError as e:
            raise _storage_error("write", self.path, e) from e

    def sync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as e:
            raise _storage_error("fsync", self.path, e) from e

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError as e:
                raise _storage_error("close", self.path, e) from e


def _close_mapping(mapping: mmap.mmap | None, fd: int) -> None:
    if mapping is not None:
        mapping.close()
    os.close(fd)


class _OSReadableFile:
    """A read-only file, read with ``pread`` or, if asked, memory-mapped (reads are then slices).

    The mapping and descriptor close on :meth:`close` or, failing that, when the last
    reference to this object goes away (CPython reference counting). Readers of a storage
    engine rely on the latter: an in-flight read that still holds a table keeps its mapping
    valid even after the table file was removed by a compaction. The files read this way are
    immutable (tables); a file truncated under a mapping would fault.
    """

    __slots__ = ("__weakref__", "_closer", "_fd", "_map", "_size", "path")

    def __init__(self, path: str, fd: int, *, use_mmap: bool) -> None:
        self.path = path
        self._fd = fd
        self._size = os.fstat(fd).st_size
        self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if use_mmap and self._size else None
        self._closer = weakref.finalize(self, _close_mapping, self._map, fd)

    def read_at(self, offset: int, length: int) -> bytes:
        if self._map is not None:
            if self._map.closed:
                raise StorageError(f"read {self.path}: file is closed")
            return self._map[offset : offset + length]
        try:
            return os.pread(self._fd, length, offset)
        except OSError as e:
            raise _storage_error("read", self.path, e) from e

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        self._closer()


class OSFileSystem:
    """The real file system (POSIX semantics; directory fsync via ``os.open(dir)``).

    Args:
        mmap_reads: memory-map files opened with :meth:`open_read` instead of using
            ``pread`` — faster for random reads, but only for files that are never appended
            to or truncated while open (SSTables): a mapping does not grow, and reading a
            truncated mapping faults. Off by default; the LSM engine turns it on.
    """

    def __init__(self, *, mmap_reads: bool = False) -> None:
        self.mmap_reads = mmap_reads

    def open_write(self, path: str, *, append: bool = False) -> WritableFile:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            fd = os.open(path, flags, 0o644)
            size = os.fstat(fd).st_size
        except OSError as e:
            raise _storage_error("open", path, e) from e
        return _OSWritableFile(path, fd, size)

    def open_read(self, path: str) -> ReadableFile:
        try:
            return _OSReadableFile(path, os.open(path, os.O_RDONLY), use_mmap=self.mmap_reads)
        except OSError as e:
            raise _storage_error("open", path, e) from e

    def read_file(self, path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as e:
            raise _storage_error("read", path, e) from e

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def file_size(self, path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError as e:
            raise _storage_error("stat", path, e) from e

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError as e:
            raise _storage_error("list", path, e) from e

    def make_dirs(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise _storage_error("mkdir", path, e) from e

    def remove(self, path: str) -> None:
        try:
            os.remove(path)
        except OSError as e:
            raise _storage_error("remove", path, e) from e

    def rename(self, src: str, dst: str) -> None:
        try:
            os.replace(src, dst)
        except OSError as e:
            raise _storage_error("rename", src, e) from e

    def link(self, src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError as e:
            raise _storage_error("link", src, e) from e

    def truncate(self, path: str, size: int) -> None:
        try:
            os.truncate(path, size)
        except OSError as e:
            raise _storage_error("truncate", path, e) from e

    def sync_dir(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise _storage_error("fsync dir", path, e) from e


# --------------------------------------------------------------------------
# The simulated file system.
# --------------------------------------------------------------------------


class _Inode:
    """One simulated file: what the process sees and what would survive a power cut."""

    __slots__ = ("data", "durable")

    def __init__(self) -> None:
        self.data = bytearray()
        self.durable = b""


@dataclass(frozen=True, slots=True)
class RebootReport:
    """What a simulated power loss destroyed (proof that the fault happened).

    Attributes:
        lost_bytes: file bytes written but not synced, summed over surviving files.
        lost_entries: directory changes (create, rename, remove, link) not yet synced.
        torn_bytes: bytes of the last write that survived although never synced.
    """

    lost_bytes: int
    lost_entries: int
    torn_bytes: int


class _SimWritable:
    __slots__ = ("_closed", "_fs", "_inode", "path")

    def __init__(self, fs: SimFileSystem, path: str, inode: _Inode) -> None:
        self._fs = fs
        self.path = path
        self._inode = inode
        self._closed = False

    def write(self, data: bytes) -> None:
        invariant(not self._closed, "write after close")
        self._fs._write(self._inode, self.path, data)

    def sync(self) -> None:
        invariant(not self._closed, "sync after close")
        self._fs._sync(self._inode)

    def size(self) -> int:
        return len(self._inode.data)

    def close(self) -> None:
        self._closed = True


class _SimReadable:
    __slots__ = ("_fs", "_inode", "path")

    def __init__(self, fs: SimFileSystem, path: str, inode: _Inode) -> None:
        self._fs = fs
        self.path = path
        self._inode = inode

    def read_at(self, offset: int, length: int) -> bytes:
        self._fs._check_alive()
        return bytes(self._inode.data[offset : offset + length])

    def size(self) -> int:
        return len(self._inode.data)

    def close(self) -> None:
        pass


class SimFileSystem:
    """An in-memory disk that can lose un-fsynced bytes, tear the last write and flip bits.

    Thread-safe (one lock); deterministic given the same sequence of calls and seed.

    Args:
        seed: seeds the random choices of :meth:`reboot` (how much of a torn write survives).

    Invariants:
        every durable directory entry's inode is a known inode; ``op_count`` never decreases.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._dirs: dict[str, dict[str, _Inode]] = {"/": {}}
        self._durable_dirs: dict[str, dict[str, _Inode]] = {"/": {}}
        self._crash_at: int | None = None
        self._crashed = False
        self._last_write: _Inode | None = None  # target of the most recent write (tear candidate)
        self.op_count = 0
        self.sync_count = 0

    # -- fault control ------------------------------------------------------

    def schedule_crash(self, after_ops: int | None) -> None:
        """Crash at mutating operation number ``op_count + after_ops`` (None cancels).

        ``after_ops=0`` crashes at the very next mutating operation (write, sync, create,
        remove, rename, link, truncate, sync_dir), which then does not happen — except a
        ``write``, of which a prefix may survive :meth:`reboot` with ``tear=True``.
        """
        with self._lock:
            self._crash_at = None if after_ops is None else self.op_count + after_ops

    def crash_now(self) -> None:
        """Stop the machine at once: every later operation raises SimulatedCrash."""
        with self._lock:
            self._crashed = True

    @property
    def crashed(self) -> bool:
        """True after a crash point was reached and before :meth:`reboot`."""
        return self._crashed

    def reboot(self, *, tear: bool = False) -> RebootReport:
        """Power-cycle: drop every un-fsynced byte and directory change, then resume service.

        Args:
            tear: keep a random prefix of the last write's un-synced bytes (a torn write).
        Returns:
            a :class:`RebootReport` saying what was destroyed.
        """
        with self._lock:
            lost_entries = 0
            for d, entries in self._dirs.items():
                durable = self._durable_dirs.setdefault(d, {})
                lost_entries += sum(1 for n, i in entries.items() if durable.get(n) is not i)
                lost_entries += sum(1 for n in durable if n not in entries)
            self._dirs = {d: dict(e) for d, e in self._durable_dirs.items()}
            lost_bytes = 0
            torn = 0
            for inode in self._all_inodes():
                lost_bytes += abs(len(inode.data) - len(inode.durable)) if inode.data != inode.durable else 0
                keep = b""
                if tear and self._last_write is inode:
                    tail = bytes(inode.data[len(inode.durable) :])
                    if inode.data[: len(inode.durable)] == inode.durable and tail:
                        keep = tail[: self._rng.randrange(0, len(tail) + 1)]
                        torn = len(keep)
                inode.data = bytearray(inode.durable + keep)
                inode.durable = bytes(inode.data) if keep else inode.durable
            self._crashed = False
            self._crash_at = None
            self._last_write = None
            return RebootReport(lost_bytes=lost_bytes, lost_entries=lost_entries, torn_bytes=torn)

    def flip_bit(self, path: str, bit_index: int) -> None:
        """Flip one stored bit of ``path`` (both the visible and the durable copy)."""
        with self._lock:
            inode = self._lookup(path)
            byte, bit = divmod(bit_index, 8)
            invariant(0 <= byte < len(inode.data), "flip_bit inside the file")
            inode.data[byte] ^= 1 << bit
            if byte < len(inode.durable):
                durable = bytearray(inode.durable)
                durable[byte] ^= 1 << bit
                inode.durable = bytes(durable)

    def check_invariants(self) -> None:
        """Every durable entry refers to an inode; every directory's parent exists."""
        with self._lock:
            for d in self._dirs:
                invariant(d == "/" or posixpath.dirname(d) in self._dirs, f"parent of {d} exists")
            invariant(set(self._durable_dirs) == set(self._dirs), "every directory is durable once made")

    # -- internals ----------------------------------------------------------

    def _all_inodes(self) -> list[_Inode]:
        seen: dict[int, _Inode] = {}
        for entries in list(self._dirs.values()) + list(self._durable_dirs.values()):
            for inode in entries.values():
                seen[id(inode)] = inode
        if self._last_write is not None:
            seen[id(self._last_write)] = self._last_write
        return list(seen.values())

    def _check_alive(self) -> None:
        if self._crashed:
            raise SimulatedCrash("the simulated machine has crashed")

    def _mutate(self) -> None:
        """Count one mutating operation; raise SimulatedCrash at and after the crash point."""
        self._check_alive()
        if self._crash_at is not None and self.op_count >= self._crash_at:
            self._crashed = True
            raise SimulatedCrash(f"crash point at operation {self.op_count}")
        self.op_count += 1

    @staticmethod
    def _norm(path: str) -> str:
        return posixpath.normpath(posixpath.join("/", path))

    def _split(self, path: str) -> tuple[dict[str, _Inode], str]:
        p = self._norm(path)
        d, name = posixpath.split(p)
        entries = self._dirs.get(d)
        if entries is None:
            raise StorageError(f"no such directory: {d}")
        return entries, name

    def _lookup(self, path: str) -> _Inode:
        entries, name = self._split(path)
        inode = entries.get(name)
        if inode is None:
            raise StorageError(f"no such file: {path}")
        return inode

    def _write(self, inode: _Inode, path: str, data: bytes) -> None:
        with self._lock:
            self._check_alive()
            self._last_write = inode
            if self._crash_at is not None and self.op_count >= self._crash_at:
                inode.data += data  # never seen by this process; may survive torn at reboot
                self._crashed = True
                raise SimulatedCrash(f"crash point at operation {self.op_count} (write to {path})")
            self.op_count += 1
            inode.data += data

    def _sync(self, inode: _Inode) -> None:
        with self._lock:
            self._mutate()
            self.sync_count += 1
            inode.durable = bytes(inode.data)

    # -- FileSystem protocol ------------------------------------------------

    def open_write(self, path: str, *, append: bool = False) -> WritableFile:
        with self._lock:
            self._mutate()
            entries, name = self._split(path)
            inode = entries.get(name)
            if inode is None:
                inode = _Inode()
                entries[name] = inode
            elif not append:
                inode.data = bytearray()
            return _SimWritable(self, self._norm(path), inode)

    def open_read(self, path: str) -> ReadableFile:
        with self._lock:
            self._check_alive()
            return _SimReadable(self, self._norm(path), self._lookup(path))

    def read_file(self, path: str) -> bytes:
        with self._lock:
            self._check_alive()
            return bytes(self._lookup(path).data)

    def exists(self, path: str) -> bool:
        with self._lock:
            self._check_alive()
            p = self._norm(path)
            if p in self._dirs:
                return True
            d, name = posixpath.split(p)
            return name in self._dirs.get(d, {})

    def file_size(self, path: str) -> int:
        with self._lock:
            self._check_alive()
            return len(self._lookup(path).data)

    def list_dir(self, path: str) -> list[str]:
        with self._lock:
            self._check_alive()
            p = self._norm(path)
            if p not in self._dirs:
                raise StorageError(f"no such directory: {path}")
            subdirs = [posixpath.basename(d) for d in self._dirs if d != p and posixpath.dirname(d) == p]
            return sorted(list(self._dirs[p]) + subdirs)

    def make_dirs(self, path: str) -> None:
        with self._lock:
            self._check_alive()
            p = self._norm(path)
            parts: list[str] = []
            while p not in self._dirs:
                parts.append(p)
                p = posixpath.dirname(p)
            for d in reversed(parts):
                self._dirs[d] = {}
                self._durable_dirs[d] = {}

    def remove(self, path: str) -> None:
        with self._lock:
            self._mutate()
            entries, name = self._split(path)
            if name not in entries:
                raise StorageError(f"no such file: {path}")
            del entries[name]

    def rename(self, src: str, dst: str) -> None:
        with self._lock:
            self._mutate()
            s_entries, s_name = self._split(src)
            d_entries, d_name = self._split(dst)
            if s_name not in s_entries:
                raise StorageError(f"no such file: {src}")
            d_entries[d_name] = s_entries.pop(s_name)

    def link(self, src: str, dst: str) -> None:
        with self._lock:
            self._mutate()
            inode = self._lookup(src)
            d_entries, d_name = self._split(dst)
            if d_name in d_entries:
                raise StorageError(f"file exists: {dst}")
            d_entries[d_name] = inode

    def truncate(self, path: str, size: int) -> None:
        with self._lock:
            self._mutate()
            inode = self._lookup(path)
            del inode.data[size:]

    def sync_dir(self, path: str) -> None:
        with self._lock:
            self._mutate()
            p = self._norm(path)
            if p not in self._dirs:
                raise StorageError(f"no such directory: {path}")
            self._durable_dirs[p] = dict(self._dirs[p])
            self.sync_count += 1

    def durable_size(self, path: str) -> int:
        """Bytes of ``path`` that would survive a crash now (tests use it to prove loss)."""
        with self._lock:
            return len(self._lookup(path).durable)


# --------------------------------------------------------------------------
# Wrappers: a file system that passes everything to another one.
# --------------------------------------------------------------------------


class ForwardingFileSystem:
    """A :class:`FileSystem` that passes every call to ``inner``: the base of fault wrappers.

    Subclasses override only the operations they change (a disk that fills up, a journal of
    fsyncs for power-loss simulation) and inherit the rest.
    """

    def __init__(self, inner: FileSystem) -> None:
        self._inner = inner

    def open_write(self, path: str, *, append: bool = False) -> WritableFile:
        """Open for appending (see :class:`FileSystem`)."""
        return self._inner.open_write(path, append=append)

    def open_read(self, path: str) -> ReadableFile:
        """Open for reading."""
        return self._inner.open_read(path)

    def read_file(self, path: str) -> bytes:
        """Read a whole file."""
        return self._inner.read_file(path)

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists."""
        return self._inner.exists(path)

    def file_size(self, path: str) -> int:
        """Size of a file."""
        return self._inner.file_size(path)

    def list_dir(self, path: str) -> list[str]:
        """Entries of a directory."""
        return self._inner.list_dir(path)

    def make_dirs(self, path: str) -> None:
        """Create a directory and its parents."""
        self._inner.make_dirs(path)

    def remove(self, path: str) -> None:
        """Remove a file."""
        self._inner.remove(path)

    def rename(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` over ``dst``."""
        self._inner.rename(src, dst)

    def link(self, src: str, dst: str) -> None:
        """Hard-link ``src`` as ``dst``."""
        self._inner.link(src, dst)

    def truncate(self, path: str, size: int) -> None:
        """Cut a file to ``size`` bytes."""
        self._inner.truncate(path, size)

    def sync_dir(self, path: str) -> None:
        """fsync a directory."""
        self._inner.sync_dir(path)


# --------------------------------------------------------------------------
# A disk that fills up.
# --------------------------------------------------------------------------


class _QuotaWritable:
    """A writable handle whose writes draw on its :class:`FullDiskFileSystem`'s free space."""

    __slots__ = ("_fs", "_inner", "path")

    def __init__(self, fs: FullDiskFileSystem, inner: WritableFile) -> None:
        self._fs = fs
        self._inner = inner
        self.path = inner.path

    def write(self, data: bytes) -> None:
        fits = self._fs._take(len(data))
        if fits:
            self._inner.write(data[:fits])
        if fits < len(data):
            self._fs.refusals += 1
            raise StorageError(f"write {self.path}: No space left on device")

    def sync(self) -> None:
        self._inner.sync()

    def size(self) -> int:
        return self._inner.size()

    def close(self) -> None:
        self._inner.close()


class FullDiskFileSystem(ForwardingFileSystem):
    """Wraps another :class:`FileSystem` and runs out of space after ``free_bytes`` more bytes.

    A write that does not fit writes the prefix that fits, then raises
    :class:`~kvstore.errors.StorageError` ("No space left on device"), as a real disk does
    (a short ``write`` followed by ``ENOSPC``): the partial bytes stay in the file, which is
    the case storage code must survive. Removing files does not give space back; tests call
    :meth:`set_free_bytes` ("the operator cleaned up") instead. Reads, syncs and directory
    operations are passed through unchanged.

    Attributes:
        refusals: how many writes ran out of space (tests use it to prove the fault happened).
    """

    def __init__(self, inner: FileSystem, *, free_bytes: int | None) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        self._free: int | None = free_bytes
        self.refusals = 0

    def set_free_bytes(self, free_bytes: int | None) -> None:
        """Set the remaining space (``None``: unlimited)."""
        with self._lock:
            self._free = free_bytes

    def _take(self, n: int) -> int:
        """Reserve up to ``n`` bytes; return how many fit."""
        with self._lock:
            if self._free is None:
                return n
            fits = min(n, self._free)
            self._free -= fits
            return fits

    def open_write(self, path: str, *, append: bool = False) -> WritableFile:
        """Open for appending; the handle's writes draw on the free space."""
        return _QuotaWritable(self, self._inner.open_write(path, append=append))
