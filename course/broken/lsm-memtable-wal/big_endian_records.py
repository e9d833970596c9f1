# ruff: noqa  (a patch fragment: names come from the file it patches)
"""WAL records framed big-endian: self-consistent, but not the documented format (other tools cannot read the log)."""

FILE = "kvstore/lsm/wal.py"
CAUGHT_BY = ['test_wal_records_follow_the_documented_layout_byte_for_byte']


def encode_record(payload: bytes) -> bytes:
    """Frame ``payload`` as one WAL record: ``crc32(payload) | len | crc32(crc|len) | payload``."""
    head = struct.pack(">II", zlib.crc32(payload), len(payload))  # BUG: the format is little-endian
    return head + struct.pack(">I", zlib.crc32(head)) + payload


def read_records(data: bytes, path: str) -> tuple[list[bytes], int]:
    """Decode every complete record of a log file's contents."""
    out: list[bytes] = []
    off = 0
    n = len(data)
    while off < n:
        if n - off < HEADER_BYTES:
            break
        crc, length, head_crc = struct.unpack_from(">III", data, off)  # BUG: big-endian
        if zlib.crc32(data[off : off + 8]) != head_crc:
            if not data[off:].strip(b"\0"):
                break
            raise CorruptionError(path, off, "WAL record header checksum mismatch")
        end = off + HEADER_BYTES + length
        if end > n:
            break
        payload = data[off + HEADER_BYTES : end]
        if zlib.crc32(payload) != crc:
            raise CorruptionError(path, off, "WAL record payload checksum mismatch")
        out.append(payload)
        off = end
    return out, off
