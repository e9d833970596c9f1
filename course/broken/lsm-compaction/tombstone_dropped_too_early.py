# ruff: noqa  (a patch fragment: names come from the file it patches)
"""Tombstones dropped in every compaction, even when a deeper level still holds an older value: the deleted key comes back."""

FILE = "kvstore/lsm/compaction.py"
CAUGHT_BY = ['test_a_tombstone_is_kept_while_a_deeper_level_may_hold_the_key', 'test_a_deleted_key_stays_deleted_through_partial_compactions']


def tombstone_dropper(version: Version, c: Compaction) -> Callable[[bytes], bool]:
    """A predicate: may a tombstone for ``key`` be left out of ``c``'s output?"""
    return lambda key: True  # BUG: only safe when no deeper level may hold the key
