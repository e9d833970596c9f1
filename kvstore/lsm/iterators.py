"""Merging iterators: one ordered view over memtables and SSTables, newest value wins.

Theory of operation. Every source — a memtable, a level-0 table, or a whole level >= 1 (its
tables are disjoint, so they concatenate) — is read as a stream of *runs*: ``(keys, values)``
lists, keys ascending inside a run, runs in key order (or, for a reverse scan, in reverse key
order). A value of ``None`` is a tombstone. Sources are given newest first.

The textbook merge keeps a heap of cursors and pops one entry at a time; in Python that is
several interpreted steps per entry. :func:`merge_runs` merges *windows* instead: it finds
the smallest "last key of the current run" over all sources (``bound``); every entry ``<=
bound`` of every source is then in hand. It feeds those entries into a dict from the oldest
source to the newest (so a newer value or tombstone overwrites an older one — recency),
sorts the dict's keys, and yields the live entries. Each window consumes at least one whole
run, so the merge ends; all per-entry work (``dict.update``, ``sorted``) runs in C. Reverse
scans mirror this with the largest "first key of the current run".

Consistency: a scan sees the tables of the version current when it started (the sources
keep them open even if a compaction removes their files). From the *active* memtable it sees
the keys present when the scan began, each with the value current when its run is read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import chain

from kvstore.lsm.memtable import Memtable
from kvstore.lsm.sstable import TableReader

Run = tuple[list[bytes], list[bytes | None]]

MEMTABLE_RUN_KEYS = 256  # memtable keys per run: big enough to amortize, small enough for short scans
COALESCED_RUN_ENTRIES = 2048  # table entries per merged run in scans (about 50 blocks of 4 KiB)


def memtable_runs(mem: Memtable, start: bytes | None, end: bytes | None, *, reverse: bool = False) -> Iterator[Run]:
    """Runs of the memtable's entries with ``start <= key < end`` (tombstones included)."""
    # BEGIN SOLUTION lsm-sstable
    keys = mem.sorted_keys()
    lo = 0 if start is None else bisect_left(keys, start)
    hi = len(keys) if end is None else bisect_left(keys, end)
    get = mem.value_of
    step = MEMTABLE_RUN_KEYS
    if reverse:
        for b in range(hi, lo, -step):
            chunk = keys[max(lo, b - step) : b]
            yield chunk, list(map(get, chunk))
    else:
        for a in range(lo, hi, step):
            chunk = keys[a : min(hi, a + step)]
            yield chunk, list(map(get, chunk))
    # END SOLUTION


def level_runs(
    tables: Sequence[TableReader], start: bytes | None, end: bytes | None, *, reverse: bool = False
) -> Iterator[Run]:
    """Runs of a level of disjoint tables given in key order (tables outside the range skipped)."""
    # BEGIN SOLUTION lsm-sstable
    first = 0 if start is None else bisect_left([t.largest for t in tables], start)
    order = range(len(tables) - 1, first - 1, -1) if reverse else range(first, len(tables))
    for i in order:
        yield from tables[i].chunks(start, end, reverse=reverse)
    # END SOLUTION


def merge_windows(sources: Sequence[Iterator[Run]], *, reverse: bool = False) -> Iterator[dict[bytes, bytes | None]]:
    """Merge run streams (newest source first) into consecutive *windows*.

    Each window is a dict ``key -> newest value or None (tombstone)`` holding every entry of
    every source in a key interval; windows come in key order (descending with ``reverse``)
    and do not overlap. A key's value is the one from the newest source that has the key.

    Complexity: O(N) dict work plus O(S) per window for S sources.
    """
    # BEGIN SOLUTION lsm-sstable
    cursors: list[tuple[Iterator[Run], list[bytes], list[bytes | None], list[int]]] = []
    for stream in reversed(sources):  # oldest first, so newer entries overwrite older ones
        run = next(stream, None)
        if run is not None:
            cursors.append((stream, run[0], run[1], [0, len(run[0])]))
    while cursors:
        if reverse:
            bound = max(keys[span[0]] for _, keys, _, span in cursors)
        else:
            bound = min(keys[span[1] - 1] for _, keys, _, span in cursors)
        window: dict[bytes, bytes | None] = {}
        still: list[tuple[Iterator[Run], list[bytes], list[bytes | None], list[int]]] = []
        for cursor in cursors:
            stream, keys, values, span = cursor
            lo, hi = span
            if reverse:
                j = bisect_left(keys, bound, lo, hi)
                window.update(zip(keys[j:hi], values[j:hi], strict=True))
                hi = span[1] = j
            else:
                j = bisect_right(keys, bound, lo, hi)
                window.update(zip(keys[lo:j], values[lo:j], strict=True))
                lo = span[0] = j
            if lo < hi:
                still.append(cursor)
            else:
                run = next(stream, None)
                if run is not None:
                    still.append((stream, run[0], run[1], [0, len(run[0])]))
        cursors = still
        yield window
    # END SOLUTION


def merge_runs(sources: Sequence[Iterator[Run]], *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
    """Live ``(key, value)`` pairs of the merged sources in key order; tombstoned keys skipped.

    The result is a C iterator (a chain of one ``zip`` per window): no interpreted step per pair.
    """
    return chain.from_iterable(
        map(_live_pairs_reversed if reverse else _live_pairs, merge_windows(sources, reverse=reverse))
    )


def _live_pairs(window: dict[bytes, bytes | None]) -> Iterator[tuple[bytes, bytes]]:
    keys = sorted(window)
    if None in window.values():
        return ((k, v) for k in keys if (v := window[k]) is not None)
    return zip(keys, map(window.__getitem__, keys), strict=True)  # type: ignore[arg-type]  # no None here


def _live_pairs_reversed(window: dict[bytes, bytes | None]) -> Iterator[tuple[bytes, bytes]]:
    keys = sorted(window, reverse=True)
    if None in window.values():
        return ((k, v) for k in keys if (v := window[k]) is not None)
    return zip(keys, map(window.__getitem__, keys), strict=True)  # type: ignore[arg-type]  # no None here


def coalesce_runs(
    stream: Iterator[Run], *, reverse: bool = False, max_entries: int = COALESCED_RUN_ENTRIES
) -> Iterator[Run]:
    """The same entries as ``stream`` in fewer, longer runs (consecutive runs joined).

    The first run passes through alone (a short scan decodes no more than it needs); after
    that each output run gathers input runs until it holds ``max_entries`` or more, doubling
    its goal each time from the first run's length. Longer runs mean fewer merge windows,
    and each window costs a fixed number of interpreted steps. With ``reverse`` the input
    runs come last first, so they are joined in the opposite order.
    """
    goal = 0
    while True:
        run = next(stream, None)
        if run is None:
            return
        keys, values = run
        goal = min(max_entries, max(2 * goal, len(keys)))
        if len(keys) < goal:
            keys = list(keys)
            values = list(values)
            while len(keys) < goal:
                more = next(stream, None)
                if more is None:
                    break
                if reverse:
                    keys[:0] = more[0]
                    values[:0] = more[1]
                else:
                    keys += more[0]
                    values += more[1]
        yield keys, values


def merge_runs_with_tombstones(sources: Sequence[Iterator[Run]]) -> Iterator[Run]:
    """Forward merge yielding each window as a sorted run, tombstones kept (for compaction)."""
    for window in merge_windows(sources):
        keys = sorted(window)
        yield keys, [window[k] for k in keys]
