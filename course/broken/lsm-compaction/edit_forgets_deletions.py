# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A manifest encoder that leaves out deleted files: after a restart, compacted-away tables are live again."""

FILE = "kvstore/lsm/manifest.py"
CAUGHT_BY = ['test_version_edits_round_trip_through_the_manifest_encoding']


def encode_edit(edit: VersionEdit) -> bytes:
    """Serialize an edit as a sequence of tagged fields (u8 tag, little-endian integers)."""
    out: list[bytes] = []
    if edit.log_number is not None:
        out += [bytes([TAG_LOG_NUMBER]), _U64.pack(edit.log_number)]
    if edit.next_file_number is not None:
        out += [bytes([TAG_NEXT_FILE_NUMBER]), _U64.pack(edit.next_file_number)]
    # BUG: the deleted files are not written
    for level, f in edit.added:
        out.append(bytes([TAG_ADDED_FILE]))
        out.append(_ADDED.pack(level, f.number, f.size_bytes, f.entries, f.tombstones, len(f.smallest), len(f.largest)))
        out += [f.smallest, f.largest]
    return b"".join(out)
