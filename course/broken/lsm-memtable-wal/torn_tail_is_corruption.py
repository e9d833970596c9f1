# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A WAL reader that treats a torn last record (the writer died mid-append) as corruption: the store never reopens."""

FILE = "kvstore/lsm/wal.py"
CAUGHT_BY = ['test_wal_truncated_tail_is_ignored', 'test_a_crash_that_tears_the_last_wal_write_recovers_every_acknowledged_write']


def read_records(data: bytes, path: str) -> tuple[list[bytes], int]:
    """Decode every complete record of a log file's contents."""
    out: list[bytes] = []
    off = 0
    n = len(data)
    while off < n:
        if n - off < HEADER_BYTES:
            raise CorruptionError(path, off, "WAL record header cut short")  # BUG: a torn tail is normal
        crc, length, head_crc = HEADER.unpack_from(data, off)
        if zlib.crc32(data[off : off + 8]) != head_crc:
            if not data[off:].strip(b"\0"):
                break
            raise CorruptionError(path, off, "WAL record header checksum mismatch")
        end = off + HEADER_BYTES + length
        if end > n:
            raise CorruptionError(path, off, "WAL record payload cut short")  # BUG: same
        payload = data[off + HEADER_BYTES : end]
        if zlib.crc32(payload) != crc:
            raise CorruptionError(path, off, "WAL record payload checksum mismatch")
        out.append(payload)
        off = end
    return out, off
