# ruff: noqa  (a patch fragment: names come from the file it patches)
"""The durable log's scan reports zero bytes after the last record (blocks allocated but never written before a crash) as corruption."""

FILE = "kvstore/server/raft_log.py"
CAUGHT_BY = ['test_zero_filled_tail_is_ignored']


def scan_records(data: bytes, path: str, *, max_body_bytes: int = MAX_LOG_RECORD_BODY_BYTES) -> ScanResult:
    """Decode every complete, checksum-verified record of a file, from offset 0."""
    records: list[RawRecord] = []
    off = 0
    n = len(data)
    while off < n:
        if n - off < HEADER_BYTES:
            break  # torn: the writer died inside a header
        header_crc, length, record_type, body_crc = _HEADER.unpack_from(data, off)
        if zlib.crc32(data[off + 4 : off + HEADER_BYTES]) != header_crc:
            # BUG: a tail of zeros is a torn write, not damage
            raise CorruptionError(path, off, "record header checksum mismatch")
        if length > max_body_bytes:
            raise CorruptionError(path, off, f"record length {length} is over the limit of {max_body_bytes}")
        end = off + HEADER_BYTES + length
        if end > n:
            break  # torn: the body was cut short
        body = data[off + HEADER_BYTES : end]
        if zlib.crc32(body) != body_crc:
            raise CorruptionError(path, off, "record body checksum mismatch")
        records.append(RawRecord(record_type, body, off, end))
        off = end
    return ScanResult(tuple(records), off)
