# ruff: noqa  (a patch fragment: names come from the file it patches)
"""The durable log's scan treats a record cut short at the end of the last segment (a crash mid-write) as corruption: the node never restarts."""

FILE = "kvstore/server/raft_log.py"
CAUGHT_BY = ['test_a_torn_record_at_the_end_is_dropped_but_damage_before_it_is_corruption', 'test_torn_last_record_is_ignored_and_truncated']


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
            if data.count(0, off) == n - off:
                break  # zero-filled tail: blocks allocated but never written
            raise CorruptionError(path, off, "record header checksum mismatch")
        if length > max_body_bytes:
            raise CorruptionError(path, off, f"record length {length} is over the limit of {max_body_bytes}")
        end = off + HEADER_BYTES + length
        if end > n:
            raise CorruptionError(path, off, "record body cut short")  # BUG: a torn tail is a normal crash
        body = data[off + HEADER_BYTES : end]
        if zlib.crc32(body) != body_crc:
            raise CorruptionError(path, off, "record body checksum mismatch")
        records.append(RawRecord(record_type, body, off, end))
        off = end
    return ScanResult(tuple(records), off)
