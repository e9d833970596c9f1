# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A block encoder that writes a tombstone as an empty value of kind "value": a deleted key reads back as b""."""

FILE = "kvstore/lsm/sstable.py"
CAUGHT_BY = ['test_block_round_trip_with_tombstones', 'test_a_tombstone_in_a_newer_table_hides_the_value_in_an_older_one']


def encode_block(keys: list[bytes], values: list[bytes | None]) -> bytes:
    """Encode a block's contents (without trailer); ``keys`` strictly increasing, non-empty."""
    n = len(keys)
    invariant(n > 0, "a block holds at least one entry")
    kinds = b"\x01" * n  # BUG: a tombstone needs kind 0
    vals = [b"" if v is None else v for v in values]
    key_ends = list(accumulate(map(len, keys)))
    value_ends = list(accumulate(map(len, vals), initial=key_ends[-1]))[1:]
    offsets = struct.pack(f"<{2 * n}I", *key_ends, *value_ends)
    return b"".join([*keys, *vals, offsets, kinds, _U32.pack(n)])
