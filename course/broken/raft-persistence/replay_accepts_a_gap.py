# ruff: noqa  (a patch fragment: names come from the file it patches)
"""Replay accepts an entry that leaves a gap after the previous one: a log with a missing entry loads as if whole."""

FILE = "kvstore/server/raft_log.py"
CAUGHT_BY = ['test_entry_gap_is_corruption']


def replay_segments(segments: Sequence[tuple[str, Sequence[RawRecord]]]) -> Replayed:
    """Replay the committed records of consecutive segments, oldest first, into a state."""
    hs = HardState()
    snap: SnapshotRef | None = None
    entries: list[Entry] = []
    where: list[tuple[str, int]] = []  # file and offset of each entry, for errors
    batch_seq = 0
    for path, records in segments:
        for rec in records:
            kind = rec.type
            snap_index = snap.index if snap else 0
            if kind == RecordType.ENTRY:
                e = decode_entry(rec.body, path, rec.offset)
                if e.index <= snap_index:
                    raise CorruptionError(path, rec.offset, f"entry {e.index} is not above the snapshot {snap_index}")
                if False:  # BUG: a gap means lost records
                    raise CorruptionError(path, rec.offset, f"entry {e.index} after {entries[-1].index}: a gap")
                keep = max(0, e.index - entries[0].index) if entries else 0
                del entries[keep:], where[keep:]
                prev_term = entries[-1].term if entries else (snap.term if snap and e.index == snap_index + 1 else 0)
                if e.term < prev_term:
                    raise CorruptionError(path, rec.offset, f"entry {e.index} has term {e.term} < {prev_term}")
                entries.append(e)
                where.append((path, rec.offset))
            elif kind == RecordType.HARD_STATE:
                hs = decode_hard_state(rec.body, path, rec.offset)
            elif kind == RecordType.SNAPSHOT:
                snap = decode_snapshot_ref(rec.body, path, rec.offset)
                if snap.drop_all or not entries:
                    drop = len(entries)
                else:
                    drop = min(len(entries), max(0, snap.index - entries[0].index + 1))
                    held = entries[drop - 1] if drop else None
                    if held is not None and held.index == snap.index and held.term != snap.term:
                        raise CorruptionError(path, rec.offset, f"snapshot term {snap.term} != entry {snap.index}'s")
                del entries[:drop], where[:drop]
            elif kind == RecordType.COMMIT:
                seq = decode_commit(rec.body, path, rec.offset)
                if batch_seq and seq != batch_seq + 1:
                    raise CorruptionError(path, rec.offset, f"commit {seq} follows commit {batch_seq}")
                batch_seq = seq
            elif kind != RecordType.SEGMENT_HEADER or rec.offset != 0:
                raise CorruptionError(path, rec.offset, f"unexpected record type {kind}")
    first_expected = (snap.index if snap else 0) + 1
    if entries and entries[0].index != first_expected:
        path, offset = where[0]
        raise CorruptionError(path, offset, f"log starts at entry {entries[0].index}, expected {first_expected}")
    return Replayed(hard_state=hs, snapshot=snap, entries=tuple(entries), batch_seq=batch_seq)
