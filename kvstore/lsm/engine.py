"""The LSM-tree engine: an embedded, ordered, durable map of bytes to bytes.

Theory of operation. A write is appended to the write-ahead log (WAL) and applied to the
*active memtable*. When the memtable is full it is frozen (it joins the *immutable
memtables*), a new WAL file and memtable take the writes, and a background flush writes the
frozen memtable as a level-0 SSTable. Background compaction merges tables down the levels
(see :mod:`kvstore.lsm.compaction`). The set of tables is the *version*; every change to it is
first made durable in the manifest (:mod:`kvstore.lsm.manifest`), and only then used; files it
makes obsolete are removed only after that. A read looks in the active memtable, then the
immutable ones (newest first), then L0 tables (newest first), then one table per deeper level,
skipping any table whose key range does not hold the key and any whose bloom filter rules it out.

Recovery (:meth:`Engine.open`): replay the manifest to get the version, replay the WAL files
not yet reflected in tables, write what they held as L0 tables, start a new manifest and WAL,
and delete every file the new version does not use.

Threading model.

* **Writers** (``put``/``delete``/``write``) serialize on one lock, ``_lock``: WAL append and
  memtable apply happen under it, in the same order. An fsync requested by the write happens
  *after* the lock is released, so writers that arrive during an fsync share the next one
  (group commit, :class:`~kvstore.lsm.wal.WalWriter`).
* **Readers** (``get``/``scan``) take no lock. They read ``_state``, an immutable snapshot
  (active memtable, immutable memtables, table readers per level) that is replaced as a
  whole, so a reader always sees a consistent set of sources. Table readers keep their file
  open while referenced, so a table removed by compaction stays readable to a scan that
  started before. Readers see the active memtable live: a point read sees a batch entirely
  or not at all; a scan is consistent for all tables and immutable memtables and sees the
  active memtable's keys as of its start.
* **Two background threads**: one flushes immutable memtables, one runs compactions, so a
  long compaction never holds up a flush. Compactions serialize on ``_compact_lock``;
  manifest appends and version installs serialize on ``_manifest_lock``. With
  ``background=False`` the same work runs synchronously at the start of the next write (or
  in ``flush``/``compact``/``close``) — deterministic, and used by the crash tests.
* **Write stall**: a writer that needs to freeze a full memtable waits (on a condition, not
  a sleep) while ``max_immutable_memtables`` memtables are already waiting to be flushed, or
  while level 0 holds ``l0_stall_files`` (default 12) or more tables — then compaction has
  fallen behind, and waiting bounds both memory and read amplification.
* ``close()`` must not race with in-flight operations of other threads; operations after it
  raise :class:`~kvstore.errors.ClosedError`.

Durability (``sync`` option): ``"always"`` (default) — each write returns after its WAL
record is fsynced; ``"batch"`` — the WAL is fsynced whenever ``batch_sync_bytes`` of records
accumulated (and at close), so a crash may lose the last writes; ``"never"`` — the caller
provides durability (a Raft-driven node); ``write(..., sync=True)`` forces one fsync in any
mode. With ``wal_enabled=False`` there is no WAL at all: only flushed data survives a crash.
"""

from __future__ import annotations

import contextlib
import posixpath
import struct
import threading
import time
import zlib
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from itertools import islice
from types import TracebackType
from typing import Any, Literal

from kvstore import limits
from kvstore.errors import ClosedError, CorruptionError, InvalidArgument, KVError, StorageError
from kvstore.fs import FileSystem, OSFileSystem, WritableFile
from kvstore.invariants import invariant
from kvstore.lsm.cache import BlockCache
from kvstore.lsm.compaction import (
    Compaction,
    CompactionPolicy,
    expand,
    pick_compaction,
    tombstone_dropper,
    write_merged,
)
from kvstore.lsm.iterators import Run, coalesce_runs, level_runs, memtable_runs, merge_runs, merge_runs_with_tombstones
from kvstore.lsm.manifest import NUM_LEVELS, FileMeta, ManifestWriter, Version, VersionEdit, recover
from kvstore.lsm.memtable import MISSING, Memtable
from kvstore.lsm.sstable import Block, TableBuilder, TableReader
from kvstore.lsm.wal import TOMBSTONE_LEN, WalWriter, decode_batch, encode_batch, read_records

SyncMode = Literal["always", "batch", "never"]
_key_hash = zlib.crc32  # bloom.key_hash without the call (test_engine checks that they agree)


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Tuning and durability options (all keyword arguments of :meth:`Engine.open`)."""

    sync: SyncMode = "always"
    wal_enabled: bool = True
    memtable_bytes: int = 4 * limits.MiB
    max_immutable_memtables: int = 2
    block_size_bytes: int = 4 * limits.KiB
    bloom_bits_per_key: int = 10
    block_cache_bytes: int = 8 * limits.MiB
    table_target_bytes: int = 2 * limits.MiB
    l0_compaction_trigger_files: int = 4
    l0_stall_files: int = 12
    level1_target_bytes: int = 10 * limits.MiB
    level_size_ratio: int = 10
    batch_sync_bytes: int = 1 * limits.MiB
    background: bool = True
    fs: FileSystem = field(default_factory=lambda: OSFileSystem(mmap_reads=True))  # tables are immutable

    def validate(self) -> None:
        """Raise InvalidArgument for values that cannot work."""
        if self.sync not in ("always", "batch", "never"):
            raise InvalidArgument(f"sync must be 'always', 'batch' or 'never', not {self.sync!r}")
        positive = [
            "memtable_bytes",
            "max_immutable_memtables",
            "block_size_bytes",
            "bloom_bits_per_key",
            "table_target_bytes",
            "l0_compaction_trigger_files",
            "level1_target_bytes",
            "batch_sync_bytes",
        ]
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise InvalidArgument(f"{name} must be positive")
        if self.level_size_ratio < 2:
            raise InvalidArgument("level_size_ratio must be at least 2")
        if self.l0_stall_files <= self.l0_compaction_trigger_files:
            raise InvalidArgument("l0_stall_files must exceed l0_compaction_trigger_files")
        if self.block_cache_bytes < 0:
            raise InvalidArgument("block_cache_bytes must not be negative")


@dataclass(frozen=True, slots=True)
class LevelStats:
    """Tables at one level."""

    level: int
    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class EngineStats:
    """A snapshot of the engine's shape and counters.

    Amplification figures:
        ``write_amplification`` = (WAL + flush + compaction bytes written) / user bytes written;
        ``read_amplification`` = tables searched per point read that reached the tables
        (bloom-filter rejections excluded);
        ``space_amplification`` = table bytes / bytes of the largest level (≈ 1 when fully
        compacted; an estimate, since the largest level may still hold overwritten data).
    """

    levels: tuple[LevelStats, ...]
    memtable_bytes: int
    immutable_memtables: int
    user_bytes_written: int
    wal_bytes_written: int
    flush_bytes_written: int
    compaction_bytes_read: int
    compaction_bytes_written: int
    flushes: int
    compactions: int
    gets: int
    tables_searched: int
    bloom_negatives: int
    bloom_false_positives: int
    stalls: int
    stall_seconds: float
    wal_syncs: int
    block_cache_hits: int
    block_cache_misses: int
    write_amplification: float
    read_amplification: float
    space_amplification: float
    bloom_false_positive_rate: float

    @property
    def table_bytes(self) -> int:
        """Bytes in all tables."""
        return sum(lv.bytes for lv in self.levels)


_Probe = tuple[list[int], int, list[int], TableReader]


def _probe(reader: TableReader) -> _Probe:
    return (*reader.filter_probe, reader)


@dataclass(frozen=True, slots=True)
class _ReadState:
    """What readers look at; replaced whole, never changed in place."""

    mem: Memtable
    imms: tuple[Memtable, ...]  # newest first
    l0: tuple[TableReader, ...]  # newest first
    levels: tuple[tuple[list[bytes], tuple[TableReader, ...]], ...]  # non-empty L1..: (largest keys, tables)
    # The same tables for point reads: (filter blocks, block count, base masks, reader), see bloom.prepare_probe;
    # L0 as (smallest, largest, probe); deeper levels as (largest keys, smallest keys, probes).
    l0_probes: tuple[tuple[bytes, bytes, _Probe], ...]
    level_probes: tuple[tuple[list[bytes], list[bytes], tuple[_Probe, ...]], ...]


class WriteBatch:
    """Puts and deletes applied atomically by :meth:`Engine.write` (last operation per key wins).

    Limits: at most ``limits.MAX_BATCH_OPS`` distinct keys and ``limits.MAX_BATCH_BYTES`` of
    keys and values (checked by :meth:`Engine.write`).
    """

    __slots__ = ("_ops",)

    def __init__(self) -> None:
        self._ops: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> WriteBatch:
        """Set ``key`` to ``value``. Raises InvalidArgument / KeyTooLargeError / ValueTooLargeError."""
        if type(key) is not bytes or not 0 < len(key) <= limits.MAX_ENGINE_KEY_BYTES:
            limits.check_key(key, limit=limits.MAX_ENGINE_KEY_BYTES)
            key = bytes(key)
        if type(value) is not bytes or len(value) > limits.MAX_VALUE_BYTES:
            limits.check_value(value)
            value = bytes(value)
        self._ops[key] = value
        return self

    def delete(self, key: bytes) -> WriteBatch:
        """Remove ``key``."""
        limits.check_key(key, limit=limits.MAX_ENGINE_KEY_BYTES)
        self._ops[bytes(key)] = None
        return self

    def clear(self) -> None:
        """Forget every operation."""
        self._ops.clear()

    def __len__(self) -> int:
        return len(self._ops)

    def items(self) -> list[tuple[bytes, bytes | None]]:
        """The operations as (key, value or None for delete)."""
        return list(self._ops.items())


def _table_name(number: int) -> str:
    return f"{number:06d}.sst"


def _log_name(number: int) -> str:
    return f"{number:06d}.log"


def _parse_number(name: str) -> tuple[str, int] | None:
    """('sst'|'log'|'manifest', number) for a file this engine names, else None."""
    if name.startswith("MANIFEST-") and name[9:].isdigit():
        return "manifest", int(name[9:])
    stem, _, ext = name.partition(".")
    if stem.isdigit() and ext in ("sst", "log"):
        return ext, int(stem)
    return None


class Engine:
    """An LSM-tree key-value engine. Create with :meth:`Engine.open`; see the module docstring.

    Invariants (checked by :meth:`check_invariants`): the version is well-formed; every table
    of the version has an open reader; immutable memtables are frozen; the active one is not.
    """

    # ------------------------------------------------------------------ open / close

    def __init__(self, path: str, options: EngineOptions) -> None:
        self.path = path
        self.options = options
        self.fs = options.fs
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._manifest_lock = threading.Lock()
        self._compact_lock = threading.Lock()
        self._cache: BlockCache[Block] = BlockCache(capacity_bytes=options.block_cache_bytes)
        self._policy = CompactionPolicy(
            l0_compaction_trigger_files=options.l0_compaction_trigger_files,
            level1_target_bytes=options.level1_target_bytes,
            level_size_ratio=options.level_size_ratio,
            table_target_bytes=options.table_target_bytes,
            block_size_bytes=options.block_size_bytes,
            bloom_bits_per_key=options.bloom_bits_per_key,
        )
        self._readers: dict[int, TableReader] = {}
        self._version = Version()
        self._next_file = 1
        self._mem = Memtable(capacity_bytes=options.memtable_bytes)
        self._imms: tuple[Memtable, ...] = ()
        self._wal: WalWriter | None = None
        self._manifest: ManifestWriter | None = None
        self._state: _ReadState | None = None
        self._cursors: dict[int, bytes] = {}
        self._bg_error: BaseException | None = None
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._counters: dict[str, float] = dict.fromkeys(
            [
                "user_bytes_written",
                "wal_bytes_written",
                "flush_bytes_written",
                "compaction_bytes_read",
                "compaction_bytes_written",
                "flushes",
                "compactions",
                "stalls",
                "stall_seconds",
                "wal_syncs",
                "bloom_negatives",
                "bloom_false_positives",
            ],
            0,
        )
        self._gets = 0
        self._tables_searched = 0

    @classmethod
    def open(cls, path: str, **options: Any) -> Engine:
        """Open (creating if needed) the database in directory ``path``.

        Args:
            path: the directory.
            **options: fields of :class:`EngineOptions`.
        Raises:
            InvalidArgument: an unknown or invalid option.
            CorruptionError: damaged manifest, table or WAL (naming the file).
            StorageError: an I/O error.
        """
        known = {f.name for f in fields(EngineOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidArgument(f"unknown engine options: {', '.join(unknown)}")
        opts = EngineOptions(**options)
        opts.validate()
        engine = cls(path, opts)
        try:
            engine._recover()
        except BaseException:
            engine._close_files()
            raise
        if opts.background:
            for name, target in (("flush", engine._flush_main), ("compaction", engine._compaction_main)):
                thread = threading.Thread(target=target, name=f"lsm-{name}:{path}", daemon=True)
                engine._threads.append(thread)
                thread.start()
        return engine

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop background work, make the WAL durable (or flush, without a WAL), release files.

        Idempotent. Raises StorageError if the final sync or flush fails.
        """
        with self._cond:
            if self._state is None:
                return
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        try:
            if not self.options.wal_enabled and self._bg_error is None:
                self._flush_all_inline()
        finally:
            with self._cond:
                self._state = None
            self._close_files()

    def _close_files(self) -> None:
        wal, self._wal = self._wal, None
        if wal is not None:
            wal.close(sync=self.options.sync != "never")
        manifest, self._manifest = self._manifest, None
        if manifest is not None:
            manifest.close()
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """Rebuild the state from CURRENT, the manifest and the WAL; start fresh files."""
        fs, path = self.fs, self.path
        fs.make_dirs(path)
        names = fs.list_dir(path)
        if "CURRENT" in names:
            rs = recover(fs, path)
            self._version, log_number, self._next_file = rs.version, rs.log_number, rs.next_file_number
        else:
            if any((p := _parse_number(n)) is not None and p[0] != "manifest" for n in names):
                raise CorruptionError(posixpath.join(path, "CURRENT"), -1, "missing, but data files exist")
            log_number = 0
        numbers = [p[1] for n in names if (p := _parse_number(n)) is not None]
        self._next_file = max([self._next_file, 1, *(n + 1 for n in numbers)])
        for _, f in self._version.files():
            self._readers[f.number] = self._open_table(f.number)
        added = self._replay_wals(sorted(p[1] for n in names if (p := _parse_number(n)) and p[0] == "log"), log_number)
        new_log = self._new_file_number()
        manifest_number = self._new_file_number()
        if added:
            fs.sync_dir(path)
            self._version = self._version.apply(VersionEdit(added=tuple((0, f) for f in added)))
            for f in added:
                self._readers[f.number] = self._open_table(f.number)
        snapshot = self._version.snapshot_edit(log_number=new_log, next_file_number=self._next_file)
        self._manifest = ManifestWriter.create(fs, path, manifest_number, snapshot)
        if self.options.wal_enabled:
            self._wal = WalWriter(fs.open_write(posixpath.join(path, _log_name(new_log))))
            fs.sync_dir(path)
        self._mem = Memtable(capacity_bytes=self.options.memtable_bytes, log_number=new_log)
        self._publish()
        self._delete_obsolete_files(keep_log=new_log, keep_manifest=manifest_number)

    def _open_table(self, number: int) -> TableReader:
        p = posixpath.join(self.path, _table_name(number))
        if not self.fs.exists(p):
            raise CorruptionError(p, -1, "table named by the manifest is missing")
        return TableReader(self.fs, p, number, self._cache)

    def _replay_wals(self, log_numbers: list[int], log_number: int) -> list[FileMeta]:
        """Replay WAL files ``>= log_number`` into memtables written out as L0 tables."""
        added: list[FileMeta] = []
        mem = Memtable(capacity_bytes=self.options.memtable_bytes)
        for number in log_numbers:
            if number < log_number:
                continue
            p = posixpath.join(self.path, _log_name(number))
            records, _ = read_records(self.fs.read_file(p), p)
            offset = 0
            for rec in records:
                keys, values = decode_batch(rec, p, offset)
                offset += 12 + len(rec)
                mem.apply(dict(zip(keys, values, strict=True)), len(rec))
                if mem.is_full():
                    added.append(self._write_memtable(mem, self._new_file_number()))
                    mem = Memtable(capacity_bytes=self.options.memtable_bytes)
        if len(mem):
            added.append(self._write_memtable(mem, self._new_file_number()))
        return added

    def _delete_obsolete_files(self, *, keep_log: int, keep_manifest: int) -> None:
        live = {f.number for _, f in self._version.files()}
        for name in self.fs.list_dir(self.path):
            parsed = _parse_number(name)
            obsolete = name.endswith(".tmp")
            if parsed is not None:
                kind, number = parsed
                obsolete = (
                    (kind == "log" and number < keep_log)
                    or (kind == "manifest" and number != keep_manifest)
                    or (kind == "sst" and number not in live)
                )
            if obsolete:
                self.fs.remove(posixpath.join(self.path, name))

    # ------------------------------------------------------------------ state

    def _new_file_number(self) -> int:
        n = self._next_file
        self._next_file += 1
        return n

    def _publish(self) -> None:
        """Replace the read state from the current fields. REQUIRES: ``_lock`` held (or no threads yet)."""
        levels = self._version.levels
        readers = self._readers
        deeper = [files for files in levels[1:] if files]  # a read bisects only levels that hold tables
        self._state = _ReadState(
            mem=self._mem,
            imms=self._imms,
            l0=tuple(readers[f.number] for f in reversed(levels[0])),
            levels=tuple(([f.largest for f in files], tuple(readers[f.number] for f in files)) for files in deeper),
            l0_probes=tuple((f.smallest, f.largest, _probe(readers[f.number])) for f in reversed(levels[0])),
            level_probes=tuple(
                (
                    [f.largest for f in files],
                    [f.smallest for f in files],
                    tuple(_probe(readers[f.number]) for f in files),
                )
                for files in deeper
            ),
        )

    def _live_state(self) -> _ReadState:
        st = self._state
        if st is None:
            raise ClosedError("the engine is closed")
        return st

    # ------------------------------------------------------------------ reads

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None if absent.

        Raises: InvalidArgument / KeyTooLargeError, ClosedError, CorruptionError, StorageError.
        Complexity: O(1) in memtables; per level one bloom probe, at most one block read.
        """
        if type(key) is not bytes or not key or len(key) > limits.MAX_ENGINE_KEY_BYTES:
            limits.check_key(key, limit=limits.MAX_ENGINE_KEY_BYTES)
            key = bytes(key)
        st = self._state
        if st is None:
            raise ClosedError("the engine is closed")
        v = st.mem.get(key)
        if v is not MISSING:
            return v
        for imm in st.imms:
            v = imm.get(key)
            if v is not MISSING:
                return v
        # The tables, inlined (this is the hot path of a read): L0 newest first, then one table
        # per deeper level found by bisecting the level's largest keys. A table whose key range
        # misses the key is skipped (a level need not cover the whole key space); then the bloom
        # filter, probed here rather than by a call: bloom.probe_prepared, which agrees with
        # may_contain (tested).
        self._gets += 1
        h = _key_hash(key)
        a = h & 511
        b = (h >> 9) & 127
        for lo, hi, (blocks, n, bases, reader) in st.l0_probes:
            if not lo <= key <= hi:
                continue
            m = bases[b]
            if (blocks[(h * n) >> 32] >> a) & m == m:
                self._tables_searched += 1
                v = reader.lookup(key)
                if v is not MISSING:
                    return v
            else:
                reader.bloom_negatives += 1
        for largest, smallest, probes in st.level_probes:
            i = bisect_left(largest, key)
            if i < len(largest) and smallest[i] <= key:
                blocks, n, bases, reader = probes[i]
                m = bases[b]
                if (blocks[(h * n) >> 32] >> a) & m == m:
                    self._tables_searched += 1
                    v = reader.lookup(key)
                    if v is not MISSING:
                        return v
                else:
                    reader.bloom_negatives += 1
        return None

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` for ``start <= key < end`` in key order (descending if ``reverse``).

        Args:
            start: first key (inclusive), None for the beginning.
            end: end key (exclusive), None for the end.
            reverse: iterate from the largest key down.
            limit: stop after this many pairs (None: no limit).
        Raises:
            InvalidArgument: bad bounds or limit (raised here, before iteration starts).
        """
        for bound in (start, end):
            if bound is not None:
                limits.check_key(bound, limit=limits.MAX_ENGINE_KEY_BYTES)
        if limit is not None and (type(limit) is not int or limit < 0):
            raise InvalidArgument("limit must be a non-negative integer or None")
        start = None if start is None else bytes(start)
        end = None if end is None else bytes(end)
        st = self._live_state()
        if start is not None and end is not None and start >= end:
            return iter(())
        sources: list[Iterator[Run]] = [memtable_runs(st.mem, start, end, reverse=reverse)]
        sources += [memtable_runs(m, start, end, reverse=reverse) for m in st.imms]
        sources += [coalesce_runs(r.chunks(start, end, reverse=reverse), reverse=reverse) for r in st.l0]
        sources += [
            coalesce_runs(level_runs(readers, start, end, reverse=reverse), reverse=reverse)
            for _, readers in st.levels
            if readers
        ]
        merged = merge_runs(sources, reverse=reverse)
        return merged if limit is None else islice(merged, limit)

    # ------------------------------------------------------------------ writes

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value`` (durable on return with ``sync="always"``)."""
        if type(key) is not bytes or not 0 < len(key) <= limits.MAX_ENGINE_KEY_BYTES:
            limits.check_key(key, limit=limits.MAX_ENGINE_KEY_BYTES)
            key = bytes(key)
        if type(value) is not bytes or len(value) > limits.MAX_VALUE_BYTES:
            limits.check_value(value)
            value = bytes(value)
        payload = _ONE_OP.pack(1, len(key), len(value)) + key + value
        self._write_one(key, value, payload)

    def delete(self, key: bytes) -> None:
        """Remove ``key`` (a tombstone; absent keys may be deleted)."""
        limits.check_key(key, limit=limits.MAX_ENGINE_KEY_BYTES)
        key = bytes(key)
        self._write_one(key, None, _ONE_OP.pack(1, len(key), TOMBSTONE_LEN) + key)

    def _write_one(self, key: bytes, value: bytes | None, payload: bytes) -> None:
        if self._imms and not self.options.background:
            self._run_pending_work()
        with self._lock:
            self._make_room()
            wal = self._wal
            end = wal.add(payload) if wal is not None else 0
            self._mem.put(key, value)
            self._counters["user_bytes_written"] += len(key) + (len(value) if value is not None else 0)
        self._after_write(wal, end, None)

    def write(self, batch: WriteBatch, *, sync: bool | None = None) -> None:
        """Apply every operation of ``batch`` atomically (all survive a crash, or none).

        Args:
            batch: the operations.
            sync: True forces an fsync before returning, False skips it, None follows the
                engine's ``sync`` option.
        Raises:
            BatchTooLargeError: over the batch limits. ClosedError, StorageError.
        """
        if not isinstance(batch, WriteBatch):
            raise InvalidArgument("write() takes a WriteBatch")
        ops = batch._ops
        if not ops:
            return
        keys, values = list(ops), list(ops.values())
        if None in values:
            payload_bytes = sum(map(len, keys)) + sum(len(v) for v in values if v is not None)
        else:
            payload_bytes = sum(map(len, keys)) + sum(map(len, values))  # type: ignore[arg-type]
        limits.check_batch(len(ops), payload_bytes)
        payload = encode_batch(keys, values)
        if self._imms and not self.options.background:
            self._run_pending_work()
        with self._lock:
            self._make_room()
            wal = self._wal
            end = wal.add(payload) if wal is not None else 0
            self._mem.apply(ops, payload_bytes)
            self._counters["user_bytes_written"] += payload_bytes
        self._after_write(wal, end, sync)

    def _after_write(self, wal: WalWriter | None, end: int, sync: bool | None) -> None:
        """Sync as the mode asks (outside the lock: group commit)."""
        if wal is not None:
            mode = self.options.sync
            due = mode == "always" or (mode == "batch" and end - wal.synced_offset >= self.options.batch_sync_bytes)
            if sync or (sync is None and due):
                wal.sync_to(end)

    def _make_room(self) -> None:
        """Freeze a full memtable, stalling while flushes or L0 compaction lag. REQUIRES: ``_lock``."""
        while True:
            if self._state is None:
                raise ClosedError("the engine is closed")
            if self._bg_error is not None:
                raise StorageError(f"background work failed; the engine is read-only: {self._bg_error!r}")
            if not self._mem.is_full():
                return
            lagging = (
                len(self._imms) >= self.options.max_immutable_memtables
                or len(self._version.levels[0]) >= self.options.l0_stall_files
            )
            if not lagging or not self.options.background:
                self._switch_memtable()
                return
            self._counters["stalls"] += 1
            t0 = time.monotonic()
            self._cond.wait()
            self._counters["stall_seconds"] += time.monotonic() - t0

    def _switch_memtable(self) -> None:
        """Freeze the active memtable and start a new one (with a new WAL). REQUIRES: ``_lock``."""
        number = 0
        if self.options.wal_enabled:
            number = self._new_file_number()
            f = self.fs.open_write(posixpath.join(self.path, _log_name(number)))
            self.fs.sync_dir(self.path)
            old = self._wal
            self._wal = WalWriter(f)
            if old is not None:
                old.close(sync=True)
                self._counters["wal_bytes_written"] += old.end_offset
                self._counters["wal_syncs"] += old.sync_count
        self._mem.freeze()
        self._imms = (self._mem, *self._imms)
        self._mem = Memtable(capacity_bytes=self.options.memtable_bytes, log_number=number)
        self._publish()
        self._cond.notify_all()

    # ------------------------------------------------------------------ flush

    def flush(self) -> None:
        """Write the memtable(s) to level-0 tables and return once they are durable."""
        with self._lock:
            self._live_state()
            if len(self._mem):
                self._switch_memtable()
            target = self._imms[0] if self._imms else None
            if self.options.background:
                while target is not None and target in self._imms and self._bg_error is None:
                    self._cond.wait()
                if self._bg_error is not None:
                    raise StorageError(f"background work failed: {self._bg_error!r}")
        if not self.options.background:
            self._run_pending_work()

    def wait_idle(self) -> None:
        """Block until no flush or compaction is pending (for benchmarks and tests).

        With ``background=False`` this runs the pending work in the calling thread.
        Raises StorageError if background work failed.
        """
        if not self.options.background:
            self._run_pending_work()
            return
        with self._cond:
            while self._bg_error is None and self._state is not None and self._has_work():
                self._cond.wait()
            if self._bg_error is not None:
                raise StorageError(f"background work failed: {self._bg_error!r}")

    def _has_work(self) -> bool:
        """REQUIRES: ``_lock``."""
        return bool(self._imms) or pick_compaction(self._version, self._policy, self._cursors) is not None

    def _flush_all_inline(self) -> None:
        with self._lock:
            if len(self._mem):
                self._switch_memtable()
        while self._flush_oldest():
            pass

    def _flush_oldest(self) -> bool:
        """Flush the oldest immutable memtable; False if there is none.

        Order (crash-safe): write and fsync the table; make it durable in the manifest along
        with the new log number; only then delete the WAL file the memtable came from.
        """
        with self._lock:
            if not self._imms:
                return False
            imm = self._imms[-1]
            successor = self._imms[-2] if len(self._imms) > 1 else self._mem
            number = self._new_file_number() if len(imm) else 0
        meta = self._write_memtable(imm, number) if len(imm) else None
        added = ((0, meta),) if meta is not None else ()
        edit = VersionEdit(log_number=successor.log_number, added=added)
        self._log_and_apply(edit, flushed=imm)
        self._counters["flushes"] += 1
        if imm.log_number:
            with contextlib.suppress(StorageError):
                self.fs.remove(posixpath.join(self.path, _log_name(imm.log_number)))
        return True

    def _write_memtable(self, mem: Memtable, number: int) -> FileMeta:
        """Write a memtable as table ``number`` (fsynced, not yet in the manifest)."""
        f = self.fs.open_write(posixpath.join(self.path, _table_name(number)))
        builder = TableBuilder(
            f, block_size_bytes=self.options.block_size_bytes, bloom_bits_per_key=self.options.bloom_bits_per_key
        )
        keys = mem.sorted_keys()
        builder.add_many(keys, [mem.value_of(k) for k in keys])
        info = builder.finish()
        f.sync()
        f.close()
        self._counters["flush_bytes_written"] += info.size_bytes
        return FileMeta(number, info.size_bytes, info.entries, info.tombstones, info.smallest, info.largest)

    def _log_and_apply(self, edit: VersionEdit, *, flushed: Memtable | None = None) -> None:
        """Make ``edit`` durable in the manifest, then install it and publish the new state."""
        new_readers = {f.number: self._open_table(f.number) for _, f in edit.added}
        with self._manifest_lock:
            self.fs.sync_dir(self.path)  # the new tables' directory entries, before the manifest names them
            with self._lock:
                full = VersionEdit(edit.log_number, self._next_file, edit.deleted, edit.added)
            invariant(self._manifest is not None, "manifest open while the engine is")
            if self._manifest is not None:
                self._manifest.append(full)
            with self._lock:
                self._version = self._version.apply(full)
                self._readers.update(new_readers)
                dropped = [self._readers.pop(number) for _, number in full.deleted]
                if flushed is not None:
                    self._imms = tuple(m for m in self._imms if m is not flushed)
                self._publish()
                self._cond.notify_all()
        for reader in dropped:
            self._counters["bloom_negatives"] += reader.bloom_negatives
            self._counters["bloom_false_positives"] += reader.bloom_false_positives
            self._cache.evict_file(reader.number)
            with contextlib.suppress(StorageError):
                self.fs.remove(reader.path)

    def _table_path(self, number: int) -> str:
        return posixpath.join(self.path, _table_name(number))

    # ------------------------------------------------------------------ compaction

    def compact(self) -> None:
        """Flush, then merge every level down into the deepest non-empty one (a full compaction)."""
        self.flush()
        with self._compact_lock:
            with self._lock:
                version = self._version
            deepest = max([1, *(lv for lv in range(NUM_LEVELS) if version.levels[lv])])
            for level in range(deepest):
                with self._lock:
                    version = self._version
                files = version.levels[level]
                if files:
                    self._run_compaction(expand(version, level, files))

    def _maybe_compact(self) -> bool:
        """Run the most urgent compaction, if any; return whether one ran."""
        with self._compact_lock:
            with self._lock:
                c = pick_compaction(self._version, self._policy, self._cursors)
            if c is None:
                return False
            self._run_compaction(c)
            return True

    def _run_compaction(self, c: Compaction) -> None:
        """Merge the inputs of ``c`` into new tables at its output level. REQUIRES: ``_compact_lock``.

        Order (crash-safe): write and fsync the outputs; log the edit (inputs deleted, outputs
        added) durably in the manifest; only then remove the input files.
        """
        with self._lock:
            version = self._version
            readers = dict(self._readers)
        newest_first = sorted(c.inputs, key=lambda f: -f.number) if c.level == 0 else list(c.inputs)
        sources: list[Iterator[Run]] = [readers[f.number].chunks(None, None) for f in newest_first]
        if c.next_inputs:
            sources.append(level_runs([readers[f.number] for f in c.next_inputs], None, None))
        outputs = write_merged(
            merge_runs_with_tombstones(sources),
            drop_tombstone=tombstone_dropper(version, c),
            new_file=self._new_table_file,
            policy=self._policy,
        )
        edit = VersionEdit(
            deleted=tuple((lv, f.number) for lv, f in c.all_inputs()),
            added=tuple((c.output_level, f) for f in outputs),
        )
        self._log_and_apply(edit)
        self._cursors[c.level] = max(f.largest for f in c.inputs)
        self._counters["compactions"] += 1
        self._counters["compaction_bytes_read"] += sum(f.size_bytes for _, f in c.all_inputs())
        self._counters["compaction_bytes_written"] += sum(f.size_bytes for f in outputs)

    def _new_table_file(self) -> tuple[int, WritableFile]:
        with self._lock:
            number = self._new_file_number()
        return number, self.fs.open_write(self._table_path(number))

    # ------------------------------------------------------------------ background work

    def _background_loop(self, has_work: Any, step: Any) -> None:
        """Run ``step()`` whenever ``has_work()`` (checked under ``_lock``) until closed.

        Any exception stops the loop and is kept in ``_bg_error``: from then on writes raise
        StorageError (the engine is read-only), and waiters are woken.
        """
        try:
            while True:
                with self._cond:
                    while not self._stopping and self._bg_error is None and not has_work():
                        self._cond.wait()
                    if self._stopping or self._bg_error is not None:
                        return
                step()
        except BaseException as e:  # kept and reported to every later writer
            with self._cond:
                self._bg_error = e
                self._cond.notify_all()

    def _flush_main(self) -> None:
        """The flush thread: writes immutable memtables to L0 as soon as they appear."""
        self._background_loop(lambda: bool(self._imms), self._flush_oldest)

    def _compaction_main(self) -> None:
        """The compaction thread: runs the most urgent compaction while any level's score is >= 1."""
        self._background_loop(
            lambda: pick_compaction(self._version, self._policy, self._cursors) is not None, self._maybe_compact
        )

    def _run_pending_work(self) -> None:
        """``background=False``: do the flushes and compactions now, in the caller's thread."""
        while self._flush_oldest():
            pass
        while self._maybe_compact():
            pass

    # ------------------------------------------------------------------ checkpoint, stats

    def checkpoint(self, dest_dir: str) -> None:
        """Write a consistent copy of the database to ``dest_dir`` (hard links where possible).

        The copy holds at least every write that returned before the call. ``dest_dir`` must
        not exist or be empty. The copy opens with :meth:`Engine.open` like any database.
        """
        if self.fs.exists(dest_dir) and self.fs.list_dir(dest_dir):
            raise InvalidArgument(f"checkpoint directory {dest_dir} is not empty")
        self.flush()
        with self._compact_lock:
            with self._lock:
                version = self._version
                number = self._new_file_number()
            self.fs.make_dirs(dest_dir)
            for _, f in version.files():
                src, dst = self._table_path(f.number), posixpath.join(dest_dir, _table_name(f.number))
                try:
                    self.fs.link(src, dst)
                except StorageError:
                    out = self.fs.open_write(dst)
                    out.write(self.fs.read_file(src))
                    out.sync()
                    out.close()
            self.fs.sync_dir(dest_dir)
            snapshot = version.snapshot_edit(log_number=number + 1, next_file_number=number + 2)
            ManifestWriter.create(self.fs, dest_dir, number, snapshot).close()

    def stats(self) -> EngineStats:
        """Levels, sizes and counters (see :class:`EngineStats`)."""
        with self._lock:
            st = self._live_state()
            version = self._version
            c = dict(self._counters)
            readers = list(self._readers.values())
            wal = self._wal
            mem_bytes = self._mem.approximate_bytes
        if wal is not None:
            c["wal_bytes_written"] += wal.end_offset
            c["wal_syncs"] += wal.sync_count
        c["bloom_negatives"] += sum(r.bloom_negatives for r in readers)
        c["bloom_false_positives"] += sum(r.bloom_false_positives for r in readers)
        levels = tuple(LevelStats(lv, len(fs), sum(f.size_bytes for f in fs)) for lv, fs in enumerate(version.levels))
        written = c["wal_bytes_written"] + c["flush_bytes_written"] + c["compaction_bytes_written"]
        user = c["user_bytes_written"]
        total = sum(lv.bytes for lv in levels)
        largest = max(lv.bytes for lv in levels)
        fp, neg = c["bloom_false_positives"], c["bloom_negatives"]
        return EngineStats(
            levels=levels,
            memtable_bytes=mem_bytes,
            immutable_memtables=len(st.imms),
            user_bytes_written=int(user),
            wal_bytes_written=int(c["wal_bytes_written"]),
            flush_bytes_written=int(c["flush_bytes_written"]),
            compaction_bytes_read=int(c["compaction_bytes_read"]),
            compaction_bytes_written=int(c["compaction_bytes_written"]),
            flushes=int(c["flushes"]),
            compactions=int(c["compactions"]),
            gets=self._gets,
            tables_searched=self._tables_searched,
            bloom_negatives=int(neg),
            bloom_false_positives=int(fp),
            stalls=int(c["stalls"]),
            stall_seconds=c["stall_seconds"],
            wal_syncs=int(c["wal_syncs"]),
            block_cache_hits=self._cache.hits,
            block_cache_misses=self._cache.misses,
            write_amplification=written / user if user else 0.0,
            read_amplification=self._tables_searched / self._gets if self._gets else 0.0,
            space_amplification=total / largest if largest else 0.0,
            bloom_false_positive_rate=fp / (fp + neg) if fp + neg else 0.0,
        )

    def check_invariants(self) -> None:
        """Check the engine's structure (for tests; takes the write lock)."""
        with self._lock:
            self._version.check_invariants()
            live = {f.number for _, f in self._version.files()}
            invariant(live == set(self._readers), "every live table has exactly one open reader")
            invariant(not self._mem.frozen, "the active memtable takes writes")
            invariant(all(m.frozen for m in self._imms), "immutable memtables are frozen")
            invariant(self._next_file > max(live, default=0), "file numbers are never reused")
            st = self._state
            if st is not None:  # the point-read view lists the same tables as the scan view, with their ranges
                invariant([p[2][3] for p in st.l0_probes] == list(st.l0), "L0 probes follow the L0 tables")
                invariant(
                    [(lg, [p[3] for p in ps]) for lg, _, ps in st.level_probes]
                    == [(lg, list(rs)) for lg, rs in st.levels],
                    "level probes follow the level tables",
                )
                invariant(
                    all(sm[i] <= lg[i] for lg, sm, _ in st.level_probes for i in range(len(lg)))
                    and all(lo <= hi for lo, hi, _ in st.l0_probes),
                    "every table's smallest key is at most its largest",
                )
            self._mem.check_invariants()
            self._cache.check_invariants()
            if self._wal is not None:
                self._wal.check_invariants()

    @property
    def background_error(self) -> BaseException | None:
        """The error that stopped background work, if any (the engine is then read-only)."""
        return self._bg_error


_ONE_OP = struct.Struct("<III")  # a one-operation batch header: count, key len, value len

__all__ = ["Engine", "EngineOptions", "EngineStats", "KVError", "LevelStats", "WriteBatch"]
