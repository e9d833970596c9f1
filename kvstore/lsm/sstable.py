"""SSTables: immutable sorted files of key -> value-or-tombstone.

Theory of operation. A table is a sequence of *data blocks* (about ``block_size_bytes``
each), then a *filter block* (a bloom filter of every key), an *index block* (for each data
block: its last key and its position), and a fixed 56-byte *footer* that locates the filter
and index and ends with a magic number. Every block carries a type byte and a CRC-32, so any
flipped bit in a block is found when the block is read. The exact bytes are in ``FORMAT.md``
(sections "Block", "SSTable", "Footer").

Blocks are *columnar*: all keys, then all values, then an array of end offsets, then a kind
byte per entry (value or tombstone), then the entry count. The offset array makes every
entry a restart point (LevelDB restarts every 16 entries and prefix-compresses between
restarts): a block just read is searched in place — the offset arrays are read through a
``memoryview`` cast, the key is found with ``bytes.find`` and checked against the key
boundaries — and one list comprehension turns a block into a list of keys when it is scanned or
read often. Prefix compression is left out on purpose:
decoding it entry by entry is the slowest thing pure Python can do, and with the random
16-byte keys of the benchmark it would save almost nothing.

Reading (:class:`TableReader`): opening a table reads and verifies the footer, the index and
the filter and keeps them in memory; data blocks are read on demand through the shared
:class:`~kvstore.lsm.cache.BlockCache`. A point read costs one bloom probe and, when the filter
says "maybe", one index bisect, at most one block read (verified by its CRC-32 every time it is
read from the file), and one search in the block. Where each of those microseconds goes is
measured in ``docs/PERFORMANCE.md`` (engine section).
"""

from __future__ import annotations

import struct
import sys
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from operator import add

from kvstore.errors import CorruptionError
from kvstore.fs import FileSystem, WritableFile
from kvstore.invariants import invariant
from kvstore.lsm.bloom import build_filter, check_filter, may_contain, prepare_probe
from kvstore.lsm.cache import BlockCache
from kvstore.lsm.memtable import MISSING, Sentinel

# Entry kinds stored in blocks. Do not renumber: they are on disk.
KIND_TOMBSTONE = 0
KIND_VALUE = 1

# Block types (the trailer's first byte). Do not renumber: they are on disk.
BLOCK_TYPE_PLAIN = 0

TRAILER = struct.Struct("<BI")  # block type u8, crc32 u32 of contents + type byte
TRAILER_BYTES = TRAILER.size
FOOTER = struct.Struct("<QIQIQQIIQ")  # index off,size; filter off,size; entries; tombstones; version; crc; magic
FOOTER_BYTES = FOOTER.size
FOOTER_CRC_SPAN = FOOTER_BYTES - 12  # the crc covers every field before it
MAGIC = int.from_bytes(b"KVSSTBL1", "little")
FORMAT_VERSION = 2  # 2: blocked bloom filters (version 1 tables had classic filters and are refused)
HANDLE = struct.Struct("<QI")  # block offset u64, block size u32 (contents + trailer)
_U32 = struct.Struct("<I")
_U32x2 = struct.Struct("<II")
# CRC-32 of any message followed by its own CRC-32 (little-endian) is this constant: checking a
# sealed block is one crc32 call over the whole of it.
CRC32_RESIDUE = 0x2144DF1C
ENTRY_OVERHEAD_BYTES = 9  # two u32 offsets and a kind byte per entry
_NATIVE_U32 = sys.byteorder == "little" and struct.calcsize("I") == 4  # memoryview.cast("I") reads <I
DECODE_AFTER_CACHE_HITS = 2  # measured: decoding on the first hit made uniformly random reads of 1M keys ~10 % slower
WRITE_BUFFER_BYTES = 256 * 1024  # the builder hands blocks to the file in chunks of this size


def encode_block(keys: list[bytes], values: list[bytes | None]) -> bytes:
    """Encode a block's contents (without trailer); ``keys`` strictly increasing, non-empty.

    Layout: ``keys… values… key_end[n] value_end[n] kind[n] n`` (u32 little-endian ends,
    offsets from the block start; a tombstone has an empty value and kind 0).
    """
    # BEGIN SOLUTION lsm-sstable
    n = len(keys)
    invariant(n > 0, "a block holds at least one entry")
    if None in values:
        kinds = bytes([v is not None for v in values])
        vals = [b"" if v is None else v for v in values]
    else:
        kinds = b"\x01" * n
        vals = values  # type: ignore[assignment]  # no None in the list
    key_ends = list(accumulate(map(len, keys)))
    value_ends = list(accumulate(map(len, vals), initial=key_ends[-1]))[1:]
    offsets = struct.pack(f"<{2 * n}I", *key_ends, *value_ends)
    return b"".join([*keys, *vals, offsets, kinds, _U32.pack(n)])
    # END SOLUTION


def seal_block(contents: bytes) -> bytes:
    """Append the trailer: block type and CRC-32 of contents + type byte."""
    typed = contents + bytes([BLOCK_TYPE_PLAIN])
    return typed + _U32.pack(zlib.crc32(typed))


class Block:
    """A verified block: its raw contents plus the ``key_end``/``value_end`` arrays, read in place.

    ``ends`` is a sequence of ``2n`` ints (``key_end[0..n-1]`` then ``value_end[0..n-1]``); when
    :func:`decode_block` builds a block, it is a ``memoryview`` cast over the block's own bytes,
    so nothing is unpacked until it is used. Entry ``i`` has key ``contents[ends[i-1]:ends[i]]``
    (``0`` for the start of key 0) and value ``contents[ends[n+i-1]:ends[n+i]]`` (the value of
    entry 0 starts where the last key ends). A point read of a block just read from disk
    searches the raw bytes (:meth:`find`) instead of decoding every key; once the block is used
    again (it came from the cache) or scanned, :attr:`keys` decodes the whole list once and
    later searches are a C ``bisect``.

    Invariants: ``len(ends) == 2 * len(kinds)``; ends increase; keys strictly increase.
    """

    __slots__ = ("_ends", "_keys", "cache_hits", "contents", "kinds")

    def __init__(
        self, contents: bytes, key_bounds: tuple[int, ...], value_bounds: tuple[int, ...], kinds: bytes
    ) -> None:
        self.contents = contents
        self._ends: Sequence[int] = (*key_bounds[1:], *value_bounds[1:])
        self.kinds = kinds
        self._keys: list[bytes] | None = None
        self.cache_hits = 0  # lookups served from the block cache (see TableReader.block)

    @classmethod
    def from_ends(cls, contents: bytes, ends: Sequence[int], kinds: bytes) -> Block:
        """A block over ``contents`` whose ``2n`` end offsets are ``ends`` (no copy, no decoding)."""
        blk = cls.__new__(cls)
        blk.contents = contents
        blk._ends = ends
        blk.kinds = kinds
        blk._keys = None
        blk.cache_hits = 0
        return blk

    @property
    def key_bounds(self) -> tuple[int, ...]:
        """``(0, key_end[0], …, key_end[n-1])``: key ``i`` is ``contents[kb[i]:kb[i+1]]``."""
        return (0, *self._ends[: len(self.kinds)])

    @property
    def value_bounds(self) -> tuple[int, ...]:
        """``(key_end[n-1], value_end[0], …)``: value ``i`` is ``contents[vb[i]:vb[i+1]]``."""
        n = len(self.kinds)
        return tuple(self._ends[n - 1 :]) if n else (0,)

    @property
    def keys(self) -> list[bytes]:
        """Every key, in order (decoded on first use)."""
        keys = self._keys
        if keys is None:
            c = self.contents
            keys = self._keys = [c[a:b] for a, b in pairwise(self.key_bounds)]
        return keys

    def find(self, key: bytes) -> int:
        """Index of ``key`` in the block, or -1.

        With decoded keys: a C ``bisect``. Otherwise the key's bytes are searched in the key
        area with ``bytes.find`` (C) and a match counts only if it starts exactly at a key
        boundary and ends at the next one (the entry is guessed as ``p // len(key)``, right
        when all keys have one length, else found by a ``bisect`` of the key ends); a match
        that straddles keys is skipped. After a few such false matches (keys sharing long
        runs of bytes) it falls back to a binary search over the raw keys.

        Complexity: O(log n) comparisons plus one C scan of the key area.
        """
        # BEGIN SOLUTION lsm-sstable
        keys = self._keys
        n = len(self.kinds)
        if keys is not None:
            i = bisect_left(keys, key)
            return i if i < n and keys[i] == key else -1
        if not n:
            return -1
        c = self.contents
        e = self._ends
        area = e[n - 1]  # the keys occupy contents[0:area]
        p = c.find(key, 0, area)
        if p < 0:
            return -1
        klen = len(key)
        i = p // (klen or 1)  # the entry at p if every key has this length (checked, so never wrong)
        if i < n and (e[i - 1] if i else 0) == p and e[i] == p + klen:
            return i
        i = bisect_right(e, p, 0, n)  # the key that holds byte p
        if (e[i - 1] if i else 0) == p and e[i] - p == klen:
            return i  # the usual case: the first match is the key
        for _ in range(4):  # a match straddling keys: look further
            p = c.find(key, p + 1, area)
            if p < 0:
                return -1
            i = bisect_right(e, p, 0, n)
            if (e[i - 1] if i else 0) == p and e[i] - p == len(key):
                return i
        lo, hi = 0, n  # many false matches: plain binary search
        while lo < hi:
            mid = (lo + hi) >> 1
            if c[(e[mid - 1] if mid else 0) : e[mid]] < key:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < n and c[(e[lo - 1] if lo else 0) : e[lo]] == key else -1
        # END SOLUTION

    def value_at(self, i: int) -> bytes | None:
        """The value of entry ``i``, or None for a tombstone."""
        kinds = self.kinds
        if not kinds[i]:
            return None
        e = self._ends
        n = len(kinds)
        return self.contents[e[n + i - 1] : e[n + i]]

    def values(self, lo: int, hi: int) -> list[bytes | None]:
        """Values of entries ``lo..hi-1`` (tombstones as None)."""
        c = self.contents
        b = self.value_bounds
        vals: list[bytes | None] = [c[x:y] for x, y in zip(b[lo:hi], b[lo + 1 : hi + 1], strict=True)]
        kinds = self.kinds
        if 0 in kinds[lo:hi]:
            for i in range(lo, hi):
                if not kinds[i]:
                    vals[i - lo] = None
        return vals

    def check_invariants(self) -> None:
        """Shape and order (O(n))."""
        k = self.keys
        e = self._ends
        invariant(len(k) == len(self.kinds) and len(e) == 2 * len(k), "block columns have one length")
        invariant(all(a <= b for a, b in pairwise(e)), "block end offsets increase")
        invariant(all(a < b for a, b in pairwise(k)), "block keys strictly increase")


def u32_array(raw: bytes, offset: int, count: int) -> Sequence[int]:
    """The ``count`` little-endian u32 values at ``offset`` of ``raw``, as an indexable sequence.

    On little-endian machines this is a ``memoryview`` cast over ``raw`` (no copy, no unpacking);
    elsewhere a tuple from ``struct``.
    """
    if _NATIVE_U32:
        return memoryview(raw)[offset : offset + 4 * count].cast("I")
    return struct.unpack_from(f"<{count}I", raw, offset)


def check_trailer(raw: bytes, path: str, offset: int) -> None:
    """Verify a sealed block's trailer: long enough, CRC-32 matches, known block type.

    Raises:
        CorruptionError: naming ``path`` and the block's ``offset``.
    """
    if len(raw) < TRAILER_BYTES:
        raise CorruptionError(path, offset, "block shorter than its trailer")
    block_type, crc = TRAILER.unpack_from(raw, len(raw) - TRAILER_BYTES)
    if zlib.crc32(memoryview(raw)[:-4]) != crc:  # a view: no copy of the block
        raise CorruptionError(path, offset, "block checksum mismatch")
    if block_type != BLOCK_TYPE_PLAIN:
        raise CorruptionError(path, offset, f"unknown block type {block_type}")


def unseal_block(raw: bytes, path: str, offset: int) -> bytes:
    """Verify a sealed block's trailer (type and CRC-32) and return its contents.

    Raises:
        CorruptionError: too short, checksum mismatch or unknown type (naming ``path`` and ``offset``).
    """
    check_trailer(raw, path, offset)
    return raw[:-TRAILER_BYTES]


def decode_block(raw: bytes, path: str, offset: int) -> Block:
    """Verify a sealed block's checksum and decode its offset arrays.

    The returned block keeps ``raw`` itself as its contents (the trailer stays at the end,
    beyond every offset), which saves copying the block.

    Raises:
        CorruptionError: bad checksum, unknown type, or offsets that do not fit (naming
            ``path`` and the block's ``offset``).
    """
    # BEGIN SOLUTION lsm-sstable
    size = len(raw) - TRAILER_BYTES
    if size < 4:
        raise CorruptionError(path, offset, "block too short for its trailer and entry count")
    if zlib.crc32(raw) != CRC32_RESIDUE:  # the same test as crc32(raw[:-4]) == stored crc, without a copy
        raise CorruptionError(path, offset, "block checksum mismatch")
    if raw[size] != BLOCK_TYPE_PLAIN:
        raise CorruptionError(path, offset, f"unknown block type {raw[size]}")
    (n,) = _U32.unpack_from(raw, size - 4)
    table_at = size - 4 - 9 * n
    if table_at < 0:
        raise CorruptionError(path, offset, "block entry count does not fit")
    if _NATIVE_U32:
        ends: Sequence[int] = memoryview(raw)[table_at : table_at + 8 * n].cast("I")
    else:
        ends = u32_array(raw, table_at, 2 * n)
    last_value_end, last_key_end = (ends[2 * n - 1], ends[n - 1]) if n else (0, 0)
    if last_value_end != table_at or last_key_end > table_at:
        raise CorruptionError(path, offset, "block offsets do not match its size")
    blk = Block.__new__(Block)  # Block.from_ends, inlined: this runs once per block read
    blk.contents = raw
    blk._ends = ends
    blk.kinds = raw[size - 4 - n : size - 4]
    blk._keys = None
    blk.cache_hits = 0
    return blk
    # END SOLUTION


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What a finished table holds (recorded in the manifest)."""

    size_bytes: int
    entries: int
    tombstones: int
    smallest: bytes
    largest: bytes


class TableBuilder:
    """Writes one SSTable. Call rules: ``add_many*`` with globally increasing keys, then ``finish`` once.

    The caller syncs and closes the file after :meth:`finish` (it decides durability).

    Invariants: every key added is greater than every key added before.
    """

    def __init__(self, file: WritableFile, *, block_size_bytes: int, bloom_bits_per_key: int) -> None:
        self._file = file
        self._block_size = block_size_bytes
        self._bits_per_key = bloom_bits_per_key
        self._offset = 0
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._index_keys: list[bytes] = []
        self._index_values: list[bytes | None] = []
        self._all_keys: list[bytes] = []
        self._pend_keys: list[bytes] = []
        self._pend_values: list[bytes | None] = []
        self._pend_bytes = 0
        self.entries = 0
        self.tombstones = 0
        self.data_bytes = 0  # key + value bytes added

    def add_many(self, keys: list[bytes], values: list[bytes | None]) -> None:
        """Append a sorted run of entries (``None`` values are tombstones).

        A data block is cut as soon as its keys and values reach ``block_size_bytes``.
        """
        # BEGIN SOLUTION lsm-sstable
        if not keys:
            return
        if self._all_keys:
            invariant(keys[0] > self._all_keys[-1], "table keys strictly increase across runs")
        invariant(keys == sorted(keys), "table keys increase within a run")  # sorted() of sorted input is O(n) in C
        self._all_keys += keys
        self.entries += len(keys)
        tombstones = values.count(None)
        self.tombstones += tombstones
        pk = self._pend_keys + keys
        pv = self._pend_values + values
        if tombstones or None in self._pend_values:
            value_lens: Iterable[int] = [0 if v is None else len(v) for v in pv]
        else:
            value_lens = map(len, pv)  # type: ignore[arg-type]  # no None here
        # cum[i]: key and value bytes of pending entries 0..i (block size counts payload only)
        cum = list(map(add, accumulate(map(len, pk)), accumulate(value_lens)))
        self.data_bytes += cum[-1] - self._pend_bytes
        start = 0
        base = 0
        bs = self._block_size
        while cum[-1] - base >= bs:
            j = bisect_left(cum, base + bs, start) + 1
            self._emit_block(pk[start:j], pv[start:j])
            base = cum[j - 1]
            start = j
        self._pend_keys = pk[start:]
        self._pend_values = pv[start:]
        self._pend_bytes = cum[-1] - base
        # END SOLUTION

    def _emit_block(self, keys: list[bytes], values: list[bytes | None]) -> None:
        raw = seal_block(encode_block(keys, values))
        self._index_keys.append(keys[-1])
        self._index_values.append(HANDLE.pack(self._offset, len(raw)))
        self._write(raw)

    def _write(self, raw: bytes) -> None:
        self._out.append(raw)
        self._offset += len(raw)
        self._out_bytes += len(raw)
        if self._out_bytes >= WRITE_BUFFER_BYTES:
            self._file.write(b"".join(self._out))
            self._out = []
            self._out_bytes = 0

    def finish(self) -> TableInfo:
        """Write the last block, filter, index and footer. REQUIRES: at least one entry."""
        invariant(self.entries > 0, "a table holds at least one entry")
        if self._pend_keys:
            self._emit_block(self._pend_keys, self._pend_values)
        filter_raw = seal_block(build_filter(self._all_keys, self._bits_per_key))
        filter_off = self._offset
        self._write(filter_raw)
        index_raw = seal_block(encode_block(self._index_keys, self._index_values))
        index_off = self._offset
        self._write(index_raw)
        head = FOOTER.pack(
            index_off, len(index_raw), filter_off, len(filter_raw), self.entries, self.tombstones, FORMAT_VERSION, 0, 0
        )[:FOOTER_CRC_SPAN]
        footer = head + struct.pack("<IQ", zlib.crc32(head), MAGIC)
        self._write(footer)
        self._file.write(b"".join(self._out))
        self._out = []
        return TableInfo(self._offset, self.entries, self.tombstones, self._all_keys[0], self._all_keys[-1])


class TableReader:
    """Reads one SSTable; safe to share between threads.

    Args:
        fs: the file system.
        path: the table file.
        number: the file number (the cache key prefix).
        cache: the engine's shared block cache.
    Raises:
        CorruptionError: a bad footer (length, magic, checksum, version), index or filter.
    """

    def __init__(self, fs: FileSystem, path: str, number: int, cache: BlockCache[Block]) -> None:
        self.path = path
        self.number = number
        self._cache = cache
        self._file = fs.open_read(path)
        size = self._file.size()
        self.size_bytes = size
        if size < FOOTER_BYTES:
            raise CorruptionError(path, 0, "file too short for a footer")
        foot_at = size - FOOTER_BYTES
        footer = self._file.read_at(foot_at, FOOTER_BYTES)
        index_off, index_size, filter_off, filter_size, entries, tombstones, version, crc, magic = FOOTER.unpack(footer)
        if magic != MAGIC:
            raise CorruptionError(path, foot_at, "bad magic number (not an SSTable, or truncated)")
        if zlib.crc32(footer[:FOOTER_CRC_SPAN]) != crc:
            raise CorruptionError(path, foot_at, "footer checksum mismatch")
        if version != FORMAT_VERSION:
            raise CorruptionError(path, foot_at, f"unknown table format version {version}")
        if filter_off + filter_size != index_off or index_off + index_size != foot_at:
            raise CorruptionError(path, foot_at, "footer block handles do not fit the file")
        self.entries = entries
        self.tombstones = tombstones
        raw_filter = self._file.read_at(filter_off, filter_size)
        self._filter = unseal_block(raw_filter, path, filter_off)
        check_filter(self._filter, path, filter_off)
        self.filter_bytes = self._filter  # the encoded bloom filter, for callers that probe it themselves
        self.filter_probe = prepare_probe(self._filter)  # the same filter, as Engine.get probes it inline
        index = self._read_block(index_off, index_size)
        self.index_keys = index.keys
        try:
            self._handles = [HANDLE.unpack(index.value_at(i) or b"") for i in range(len(index.keys))]
        except struct.error:
            raise CorruptionError(path, index_off, "malformed block handle in the index") from None
        prev_end = 0
        for off, sz in self._handles:
            if off != prev_end:
                raise CorruptionError(path, index_off, "index block handles are not contiguous")
            prev_end = off + sz
        if prev_end != filter_off or not self.index_keys:
            raise CorruptionError(path, index_off, "index block does not cover the data blocks")
        self.largest = self.index_keys[-1]
        self.bloom_negatives = 0
        self.bloom_false_positives = 0

    def _read_block(self, offset: int, size: int) -> Block:
        raw = self._file.read_at(offset, size)
        if len(raw) != size:
            raise CorruptionError(self.path, offset, "block runs past the end of the file")
        return decode_block(raw, self.path, offset)

    def block(self, i: int, *, fill_cache: bool = True) -> Block:
        """Data block ``i`` (from the cache or the file).

        A block read from the file is only verified, and cached when ``fill_cache`` and the cache
        admits it (on its second read: see :meth:`BlockCache.admit`). A cached block has its keys
        decoded on its ``DECODE_AFTER_CACHE_HITS``-th hit: from then on a lookup is a C ``bisect``
        (0.3 µs) instead of a search of the raw bytes (1.5 µs), which repays the decoding (3 µs
        for a 4 KiB block) only for blocks read several times.
        """
        key = (self.number, i)
        blk = self._cache.get(key)
        if blk is None:
            off, size = self._handles[i]
            raw = self._file.read_at(off, size)
            if len(raw) != size:
                raise CorruptionError(self.path, off, "block runs past the end of the file")
            blk = decode_block(raw, self.path, off)
            if fill_cache and self._cache.admit(key):
                n = len(blk.kinds)  # charge: contents, plus the key list decoded on the next use
                self._cache.put(key, blk, size + blk._ends[n - 1] + 64 * n if n else size)
        elif blk._keys is None:
            blk.cache_hits += 1
            if blk.cache_hits >= DECODE_AFTER_CACHE_HITS:
                blk.keys  # noqa: B018 - a block this hot is worth decoding once
        return blk

    def block_or_raw(self, i: int) -> Block | bytes:
        """Data block ``i`` for a point read: a :class:`Block` if cached or admitted, else its sealed bytes.

        Like :meth:`block`, except that a block read from the file that the cache does not
        admit (on random reads, most of them: it is used once) comes back as the raw sealed
        bytes, length checked but *not yet verified*: the caller checks its CRC before using
        any of it (see :meth:`lookup`), and building a :class:`Block` for one search is skipped.
        """
        key = (self.number, i)
        cache = self._cache
        blk = cache.get(key)
        if blk is None:
            off, size = self._handles[i]
            raw = self._file.read_at(off, size)
            if len(raw) != size:
                raise CorruptionError(self.path, off, "block runs past the end of the file")
            if not cache.admit(key):
                return raw
            blk = decode_block(raw, self.path, off)
            n = len(blk.kinds)
            cache.put(key, blk, size + blk._ends[n - 1] + 64 * n if n else size)
        elif blk._keys is None:
            blk.cache_hits += 1
            if blk.cache_hits >= DECODE_AFTER_CACHE_HITS:
                blk.keys  # noqa: B018 - a block this hot is worth decoding once
        return blk

    def block_offset(self, i: int) -> int:
        """File offset of data block ``i`` (for error messages)."""
        return int(self._handles[i][0])

    @property
    def block_count(self) -> int:
        """Number of data blocks."""
        return len(self._handles)

    def may_contain(self, h: int) -> bool:
        """Bloom check for a key with hash ``h`` (see :func:`kvstore.lsm.bloom.key_hash`); counts negatives."""
        if may_contain(self._filter, h):
            return True
        self.bloom_negatives += 1
        return False

    def get(self, key: bytes, h: int) -> bytes | Sentinel | None:
        """The entry for ``key``: value bytes, None (tombstone) or MISSING.

        Args:
            key: the key.
            h: ``key_hash(key)``, computed once by the caller for all tables.
        """
        if not may_contain(self._filter, h):
            self.bloom_negatives += 1
            return MISSING
        return self.lookup(key)

    def lookup(self, key: bytes) -> bytes | Sentinel | None:
        """Like :meth:`get` without the bloom check (the caller already probed the filter).

        A block that :meth:`block_or_raw` returns as sealed bytes (read once, not cached) is
        searched where it lies: CRC-32 of the whole block against the residue, the entry
        count, the two offsets that bound the key area, ``bytes.find`` of the key, and — when
        the match starts at entry ``p // len(key)`` — that entry's key bounds, kind and value
        bounds, each one ``struct`` read. No :class:`Block` is built. Anything else (damage,
        keys of mixed lengths, a match straddling keys) goes through :func:`decode_block` and
        :meth:`Block.find`, which raise or answer exactly.

        Complexity: one bisect in the index, at most one block read, one search in the block.
        """
        # BEGIN SOLUTION lsm-sstable
        index = self.index_keys
        i = bisect_left(index, key)
        if i < len(index):
            blk = self.block_or_raw(i)
            if isinstance(blk, bytes):
                raw = blk
                s = len(raw) - TRAILER_BYTES  # contents end; raw[s] is the block type
                if s >= 4 and zlib.crc32(raw) == CRC32_RESIDUE and raw[s] == BLOCK_TYPE_PLAIN:
                    (n,) = _U32.unpack_from(raw, s - 4)
                    t = s - 4 - 9 * n  # key_end[0..n-1], value_end[0..n-1], kind[0..n-1], n
                    if n and t >= 0:
                        (area,) = _U32.unpack_from(raw, t + 4 * n - 4)  # key_end[n-1]: the keys end there
                        if _U32.unpack_from(raw, t + 8 * n - 4)[0] == t and area <= t:  # as decode_block checks
                            p = raw.find(key, 0, area)
                            if p < 0:
                                self.bloom_false_positives += 1
                                return MISSING
                            j = p // len(key)
                            if j < n:
                                a, b = _U32x2.unpack_from(raw, t + 4 * j - 4) if j else (0, _U32.unpack_from(raw, t)[0])
                                if a == p and b == p + len(key):
                                    if raw[t + 8 * n + j] == KIND_TOMBSTONE:
                                        return None
                                    a, b = _U32x2.unpack_from(raw, t + 4 * (n + j) - 4)
                                    return raw[a:b]
                blk = decode_block(raw, self.path, self.block_offset(i))  # raises, or the general case
            j = blk.find(key)
            if j >= 0:
                return blk.value_at(j)
        self.bloom_false_positives += 1
        return MISSING
        # END SOLUTION

    def chunks(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[list[bytes], list[bytes | None]]]:
        """Yield the entries with ``start <= key < end`` block by block, as (keys, values) runs.

        Runs are ascending inside; with ``reverse`` the runs come last block first.
        Blocks read by a scan are not added to the cache (a full scan would flush it).
        """
        # BEGIN SOLUTION lsm-sstable
        n = len(self.index_keys)
        first = 0 if start is None else bisect_left(self.index_keys, start)
        last = n - 1 if end is None else min(n - 1, bisect_left(self.index_keys, end))
        order = range(last, first - 1, -1) if reverse else range(first, last + 1)
        for i in order:
            blk = self.block(i, fill_cache=False)
            keys = blk.keys
            lo = 0 if start is None else bisect_left(keys, start)
            hi = len(keys) if end is None else bisect_left(keys, end)
            if lo < hi:
                yield keys[lo:hi], blk.values(lo, hi)
        # END SOLUTION

    def first_key(self) -> bytes:
        """The smallest key in the table (reads the first block)."""
        return self.block(0, fill_cache=False).keys[0]

    def close(self) -> None:
        """Release the file handle (in-flight readers must be finished)."""
        self._file.close()


def key_range_overlaps(smallest: bytes, largest: bytes, start: bytes | None, end: bytes | None) -> bool:
    """Whether ``[smallest, largest]`` meets ``[start, end)`` (None = unbounded)."""
    return (end is None or smallest < end) and (start is None or largest >= start)


__all__ = [
    "MISSING",
    "Block",
    "TableBuilder",
    "TableInfo",
    "TableReader",
    "decode_block",
    "encode_block",
    "key_range_overlaps",
    "seal_block",
]
