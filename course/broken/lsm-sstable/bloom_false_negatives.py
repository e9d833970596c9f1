# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A bloom filter whose lookup counts the trailing k byte as filter bits: probes land on the wrong bits (false negatives)."""

FILE = "kvstore/lsm/bloom.py"
CAUGHT_BY = ['test_a_bloom_filter_never_rejects_a_key_it_holds']


def may_contain(filter_bytes: bytes, h: int) -> bool:
    """False only if the key whose :func:`key_hash` is ``h`` is certainly not in the filter."""
    nbits = len(filter_bytes) << 3  # BUG: the last byte is k, not part of the bit array
    k = filter_bytes[-1]
    delta = (h >> 17) | ((h << 15) & 0xFFFFFFFF) | 1
    for pos in range(h, h + k * delta, delta):
        pos %= nbits
        if not filter_bytes[pos >> 3] & (1 << (pos & 7)):
            return False
    return True
