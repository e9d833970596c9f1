# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A WAL reader that reports a zero-filled tail (preallocated, never-written blocks after a crash) as corruption."""

FILE = "kvstore/lsm/wal.py"
CAUGHT_BY = ['test_wal_zero_filled_tail_is_ignored']


def read_records(data: bytes, path: str) -> tuple[list[bytes], int]:
    """Decode every complete record of a log file's contents."""
    out: list[bytes] = []
    off = 0
    n = len(data)
    while off < n:
        if n - off < HEADER_BYTES:
            break
        crc, length, head_crc = HEADER.unpack_from(data, off)
        if zlib.crc32(data[off : off + 8]) != head_crc:
            raise CorruptionError(path, off, "WAL record header checksum mismatch")  # BUG: zeros are a torn tail
        end = off + HEADER_BYTES + length
        if end > n:
            break
        payload = data[off + HEADER_BYTES : end]
        if zlib.crc32(payload) != crc:
            raise CorruptionError(path, off, "WAL record payload checksum mismatch")
        out.append(payload)
        off = end
    return out, off
