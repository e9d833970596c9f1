# ruff: noqa  (a patch fragment: names come from the file it patches)
"""Sources merged in the wrong order (like L0 files read oldest last): an older value shadows a newer one."""

FILE = "kvstore/lsm/iterators.py"
CAUGHT_BY = ['test_engine_reads_agree_with_a_model_across_memtable_and_overlapping_l0_tables', 'test_a_tombstone_in_a_newer_table_hides_the_value_in_an_older_one']


def merge_windows(sources: Sequence[Iterator[Run]], *, reverse: bool = False) -> Iterator[dict[bytes, bytes | None]]:
    """Merge run streams (newest source first) into consecutive *windows*.

    Each window is a dict ``key -> newest value or None (tombstone)`` holding every entry of
    every source in a key interval; windows come in key order (descending with ``reverse``)
    and do not overlap. A key's value is the one from the newest source that has the key.

    Complexity: O(N) dict work plus O(S) per window for S sources.
    """
    cursors: list[tuple[Iterator[Run], list[bytes], list[bytes | None], list[int]]] = []
    for stream in sources:  # BUG: newest first, so older entries (older L0 files) overwrite newer ones
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
