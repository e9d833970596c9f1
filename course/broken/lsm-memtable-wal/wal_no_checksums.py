# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A WAL reader that never checks payload checksums: a flipped bit is replayed as data."""

FILE = "kvstore/lsm/wal.py"
CAUGHT_BY = ['test_wal_damage_in_the_middle_is_corruption', 'test_a_flipped_bit_in_any_complete_record_is_reported_as_corruption', 'test_wal_bit_flip_in_last_complete_record_is_corruption']


def read_records(data: bytes, path: str) -> tuple[list[bytes], int]:
    """Decode every complete record of a log file's contents.

    Args:
        data: the whole file.
        path: the file's name, for errors.
    Returns:
        (payloads in order, offset where the valid records end). The offset is
        ``len(data)`` unless the file ends in a torn tail.
    Raises:
        CorruptionError: a header or payload checksum fails anywhere except in a torn tail
            (a tail that is too short for its header or length, or all zero bytes).
    """
    out: list[bytes] = []
    off = 0
    n = len(data)
    while off < n:
        if n - off < HEADER_BYTES:
            break  # torn: the writer died inside a header
        crc, length, head_crc = HEADER.unpack_from(data, off)
        if zlib.crc32(data[off : off + 8]) != head_crc:
            if not data[off:].strip(b"\0"):
                break  # zero-filled tail (preallocated or never-written blocks)
            raise CorruptionError(path, off, "WAL record header checksum mismatch")
        end = off + HEADER_BYTES + length
        if end > n:
            break  # torn: the payload was cut short
        payload = data[off + HEADER_BYTES : end]
        out.append(payload)
        off = end
    return out, off
