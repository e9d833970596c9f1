"""The durable Raft log: round trips, suffix replacement, snapshots, segments, group commit,
torn tails, corruption, validation, and a smoke test on the real file system."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pytest

from kvstore.errors import ClosedError, CorruptionError, InvalidArgument, LimitExceeded, StorageError
from kvstore.fs import OSFileSystem, SimFileSystem, SimulatedCrash
from kvstore.limits import MAX_MESSAGE_BYTES, MAX_NODE_ID_BYTES
from kvstore.raft.core import RestoreState
from kvstore.raft.messages import Configuration, Entry, EntryType, HardState, Snapshot, SnapshotMeta
from kvstore.raft.storage import persist_ready
from kvstore.server.raft_log import (
    HEADER_BYTES,
    DurableRaftLog,
    RecordType,
    encode_record,
    scan_records,
    segment_name,
    snapshot_name,
)
from kvstore.trace import MemoryTracer

D = "/raft"


def ents(first: int, last: int, term: int, tag: bytes = b"v") -> tuple[Entry, ...]:
    """Entries first..last of one term, with data naming index and tag."""
    return tuple(Entry(term=term, index=i, data=tag + b"%d" % i) for i in range(first, last + 1))


def reopen(
    fs: SimFileSystem, *, tear: bool = False, segment_bytes: int = 1 << 20
) -> tuple[DurableRaftLog, RestoreState]:
    """Power-cycle the simulated disk and open the log again."""
    fs.reboot(tear=tear)
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=segment_bytes)
    log.check_invariants()
    return log, log.load()


def segments(fs: SimFileSystem) -> list[str]:
    """Paths of the segment files, oldest first."""
    return [posixpath.join(D, n) for n in fs.list_dir(D) if n.startswith("seg-")]


def record_offsets(fs: SimFileSystem, path: str) -> list[tuple[int, int]]:
    """(type, offset) of every record of a file."""
    return [(r.type, r.offset) for r in scan_records(fs.read_file(path), path).records]


# --------------------------------------------------------------------------
# Round trips and the LogStorage contract.
# --------------------------------------------------------------------------


def test_fresh_log_loads_empty_state() -> None:
    """A new directory is created and loads as the empty restore state."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D + "/deeper", fs=fs)
    assert log.load() == RestoreState()
    assert (log.first_index(), log.last_index(), log.log_bytes()) == (1, 0, 0)


def test_synced_entries_and_hard_state_survive_a_crash() -> None:
    """Entries of every type and the hard state come back after a power loss once synced."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    batch = (
        Entry(1, 1, EntryType.NOOP),
        Entry(1, 2, EntryType.NORMAL, b"\x00put"),
        Entry(2, 3, EntryType.CONFIG_CHANGE, b"{}"),
    )
    log.append(batch)
    log.set_hard_state(HardState(term=2, voted_for="n2", commit_index=2))
    log.sync()
    _, rs = reopen(fs)
    assert rs == RestoreState(hard_state=HardState(2, "n2", 2), entries=batch)


def test_unsynced_batch_is_lost_whole() -> None:
    """Writes after the last sync vanish at a crash, the synced ones stay, and the loss is real."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 3, 1))
    log.sync()
    log.append(ents(4, 6, 1))
    log.set_hard_state(HardState(5, None, 3))
    log.sync()
    log.append(ents(7, 9, 5))
    log.set_hard_state(HardState(6, "n1", 0))
    log._flush()  # hand the batch to the OS so the crash has bytes to destroy
    report = fs.reboot()
    assert report.lost_bytes > 0
    log = DurableRaftLog.open(D, fs=fs)
    rs = log.load()
    assert rs.entries == ents(1, 6, 1) and rs.hard_state == HardState(5, None, 3)


def test_append_replaces_the_stored_suffix() -> None:
    """An append at an index already stored deletes that entry and all after it (a conflicting follower)."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 6, 1))
    log.sync()
    log.append(ents(4, 5, 2, b"new"))
    assert (log.last_index(), log.term(4), log.term(6)) == (5, 2, None)
    log.sync()
    _, rs = reopen(fs)
    assert rs.entries == ents(1, 3, 1) + ents(4, 5, 2, b"new")


def test_replaced_suffix_is_not_resurrected_after_later_syncs() -> None:
    """Entries deleted by a synced replacement never come back, however many segments later."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=150)
    log.append(ents(1, 10, 1))
    log.sync()
    log.append(ents(3, 3, 2, b"r"))
    log.sync()
    for i in range(4, 8):
        log.append(ents(i, i, 2, b"r"))
        log.sync()
    assert log.segment_count() > 2
    _, rs = reopen(fs, segment_bytes=150)
    assert rs.entries == ents(1, 2, 1) + ents(3, 7, 2, b"r")


def test_replacement_crashed_before_sync_keeps_the_old_suffix() -> None:
    """A crash after writing a replacement but before its sync leaves the old synced entries intact."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 8, 1))
    log.sync()
    log.append(ents(2, 2, 3, b"x"))
    log._flush()
    fs.schedule_crash(0)
    with pytest.raises(SimulatedCrash):
        log.sync()
    _, rs = reopen(fs, tear=True)
    assert rs.entries == ents(1, 8, 1)


def test_persist_ready_order_works_through_the_protocol() -> None:
    """persist_ready (snapshot, entries, hard state, one sync) stores a Ready as SimDisk would."""
    from kvstore.raft.core import Ready

    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    before = fs.sync_count
    persist_ready(log, Ready(entries=ents(1, 2, 1), hard_state=HardState(1, "n1", 0)))
    assert fs.sync_count - before == 2  # the new segment's directory entry, then the segment
    _, rs = reopen(fs)
    assert rs.entries == ents(1, 2, 1) and rs.hard_state == HardState(1, "n1", 0)


# --------------------------------------------------------------------------
# Group commit.
# --------------------------------------------------------------------------


def test_sync_fsyncs_each_written_file_exactly_once() -> None:
    """One sync after many writes to an existing segment costs exactly one fsync; an empty sync costs none."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 1, 1))
    log.sync()
    before = fs.sync_count
    for i in range(2, 66):
        log.append(ents(i, i, 1))
        log.set_hard_state(HardState(1, "n1", i - 1))
    log.sync()
    assert fs.sync_count - before == 1
    log.sync()
    assert fs.sync_count - before == 1


def test_snapshot_sync_fsyncs_file_then_directory_then_segment() -> None:
    """A batch with a snapshot fsyncs the snapshot file, the directory and the segment, once each."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 4, 1))
    log.sync()
    before = fs.sync_count
    log.save_snapshot(Snapshot(SnapshotMeta(2, 1), b"image"))
    log.append(ents(5, 5, 1))
    log.sync()
    assert fs.sync_count - before == 3


# --------------------------------------------------------------------------
# Snapshots and compaction.
# --------------------------------------------------------------------------


def test_snapshot_keeps_the_entries_after_a_matching_index() -> None:
    """A snapshot at an index the log holds with that term keeps the entries after it."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 6, 1))
    conf = Configuration(voters=frozenset({"n1", "n2", "n3"}), learners=frozenset({"n4"}))
    snap = Snapshot(SnapshotMeta(4, 1, conf), b"checkpoint-4")
    log.save_snapshot(snap)
    log.sync()
    assert (log.first_index(), log.last_index()) == (5, 6)
    _, rs = reopen(fs)
    assert rs.snapshot == snap and rs.entries == ents(5, 6, 1)


@pytest.mark.parametrize(("index", "term"), [(4, 9), (9, 2), (2, 1)])
def test_snapshot_that_does_not_match_the_log_drops_every_entry(index: int, term: int) -> None:
    """A snapshot whose index/term the log does not hold (wrong term, beyond the end) drops all entries."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 6, 2))
    log.sync()
    log.save_snapshot(Snapshot(SnapshotMeta(index, term), b""))
    log.sync()
    assert log.last_index() == index
    log2, rs = reopen(fs)
    assert rs.entries == () and rs.snapshot is not None and rs.snapshot.meta.index == index
    if index > 0:
        log2.append(ents(index + 1, index + 2, term))
        log2.sync()
        _, rs = reopen(fs)
        assert rs.entries == ents(index + 1, index + 2, term)


def test_large_snapshot_round_trips() -> None:
    """A snapshot of a few MiB is stored and read back byte for byte."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    data = bytes(range(256)) * (3 * 4096 + 7)
    log.save_snapshot(Snapshot(SnapshotMeta(10, 3), data))
    log.sync()
    _, rs = reopen(fs)
    assert rs.snapshot is not None and rs.snapshot.data == data


def test_segments_roll_over_and_covered_ones_are_deleted() -> None:
    """Segments roll at the size threshold; a snapshot deletes the wholly covered ones and old snapshot files."""
    fs = SimFileSystem()
    tracer = MemoryTracer()
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=300, tracer=tracer, node_id="n1", clock=lambda: 1.0)
    for i in range(1, 41):
        log.append(ents(i, i, 1, b"x" * 20))
        log.sync()
    many = len(segments(fs))
    assert many >= 5
    assert all(fs.file_size(p) < 300 + 120 for p in segments(fs))
    log.save_snapshot(Snapshot(SnapshotMeta(20, 1), b"s1"))
    log.sync()
    log.save_snapshot(Snapshot(SnapshotMeta(35, 1), b"s2"))
    log.sync()
    assert len(segments(fs)) < many
    assert [n for n in fs.list_dir(D) if n.startswith("snap-")] == [snapshot_name(2)]
    assert any(e.event == "raft_log_files_removed" for e in tracer.events)
    _, rs = reopen(fs, segment_bytes=300)
    assert rs.snapshot is not None and rs.snapshot.data == b"s2"
    assert rs.entries == ents(36, 40, 1, b"x" * 20)


def test_deleted_segments_that_come_back_after_a_crash_are_harmless() -> None:
    """Segments removed without a directory fsync reappear after a crash; recovery ignores and removes them."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=200)
    for i in range(1, 21):
        log.append(ents(i, i, 1, b"y" * 20))
        log.sync()
    log.save_snapshot(Snapshot(SnapshotMeta(15, 1), b"s"))
    log.sync()
    after_gc = len(segments(fs))
    report = fs.reboot()
    assert report.lost_entries > 0 and len(segments(fs)) > after_gc  # the removals were undone
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=200)
    rs = log.load()
    assert rs.entries == ents(16, 20, 1, b"y" * 20)
    assert len(segments(fs)) == after_gc


def test_log_bytes_counts_segment_bytes() -> None:
    """log_bytes is the total size of the segment files (for the status RPC and the snapshot threshold)."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=200)
    for i in range(1, 11):
        log.append(ents(i, i, 1))
        log.sync()
    assert log.log_bytes() == sum(fs.file_size(p) for p in segments(fs)) > 0


# --------------------------------------------------------------------------
# Torn tails.
# --------------------------------------------------------------------------


def _two_batches(fs: SimFileSystem) -> str:
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 3, 1))
    log.sync()
    log.append(ents(4, 6, 1))
    log.sync()
    log.close()
    return segments(fs)[-1]


@pytest.mark.parametrize("cut", [1, HEADER_BYTES - 1, HEADER_BYTES + 3])
def test_torn_last_record_is_ignored_and_truncated(cut: int) -> None:
    """A last batch cut inside a record (header or body) is dropped silently, and the file is cut back."""
    fs = SimFileSystem()
    path = _two_batches(fs)
    offsets = record_offsets(fs, path)
    last_batch_start = next(o for t, o in offsets if t == RecordType.COMMIT) + HEADER_BYTES + 8
    fs.truncate(path, last_batch_start + cut)
    log = DurableRaftLog.open(D, fs=fs)
    assert log.load().entries == ents(1, 3, 1)
    assert fs.file_size(path) == last_batch_start
    assert fs.durable_size(path) == last_batch_start  # the truncation itself was fsynced


@pytest.mark.parametrize("after_ops", [0, 1, 2])
def test_crash_during_recovery_repair_is_safe(after_ops: int) -> None:
    """A crash while recovery truncates a torn tail (before or after its fsync) recovers the same state next time."""
    fs = SimFileSystem()
    path = _two_batches(fs)
    fs.truncate(path, fs.file_size(path) - 4)
    f = fs.open_write(path, append=True)
    f.sync()
    fs.schedule_crash(after_ops)
    with pytest.raises(SimulatedCrash):
        DurableRaftLog.open(D, fs=fs).append(ents(4, 4, 2))
    assert fs.crashed
    _, rs = reopen(fs)
    assert rs.entries == ents(1, 3, 1)


def test_zero_filled_tail_is_ignored() -> None:
    """Zero bytes after the last record (allocated, never written) are a torn tail, not corruption."""
    fs = SimFileSystem()
    path = _two_batches(fs)
    size = fs.file_size(path)
    f = fs.open_write(path, append=True)
    f.write(bytes(100))
    f.sync()
    log = DurableRaftLog.open(D, fs=fs)
    assert log.load().entries == ents(1, 6, 1)
    assert fs.file_size(path) == size


def test_complete_records_without_commit_are_dropped() -> None:
    """Whole records of a batch whose COMMIT never landed (a torn sync) are not recovered."""
    fs = SimFileSystem()
    path = _two_batches(fs)
    commit_at = [o for t, o in record_offsets(fs, path) if t == RecordType.COMMIT][-1]
    fs.truncate(path, commit_at + 5)
    log = DurableRaftLog.open(D, fs=fs)
    assert log.load().entries == ents(1, 3, 1)


def test_new_segment_with_no_commit_is_removed() -> None:
    """A last segment whose first batch never committed is removed at recovery."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=10)
    log.append(ents(1, 2, 1))
    log.sync()
    log.append(ents(3, 4, 1))
    log._flush()
    fs.sync_dir(D)  # the new file's name is durable, its contents are not
    fs.reboot()
    assert len(segments(fs)) == 2 and fs.file_size(segments(fs)[-1]) == 0
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=10)
    assert log.load().entries == ents(1, 2, 1)
    assert len(segments(fs)) == 1


# --------------------------------------------------------------------------
# Corruption.
# --------------------------------------------------------------------------


def _flip_and_open(fs: SimFileSystem, path: str, byte: int) -> CorruptionError:
    fs.flip_bit(path, byte * 8 + 3)
    with pytest.raises(CorruptionError) as info:
        DurableRaftLog.open(D, fs=fs)
    return info.value


def test_flipped_bit_in_a_middle_record_is_corruption() -> None:
    """Damage to an entry record followed by valid records names the segment and the record's offset."""
    fs = SimFileSystem()
    path = _two_batches(fs)
    entry_offsets = [o for t, o in record_offsets(fs, path) if t == RecordType.ENTRY]
    err = _flip_and_open(fs, path, entry_offsets[1] + HEADER_BYTES + 4)
    assert (err.path, err.offset) == (path, entry_offsets[1])


def test_flipped_bit_in_the_last_record_is_corruption() -> None:
    """A complete last record that fails its checksum is damage, not a torn write (it may have been acknowledged)."""
    fs = SimFileSystem()
    path = _two_batches(fs)
    err = _flip_and_open(fs, path, fs.file_size(path) - 2)
    assert err.path == path


def test_flipped_bit_in_a_segment_header_is_corruption() -> None:
    """Damage to the segment header record is reported against that segment at offset 0."""
    fs = SimFileSystem()
    path = _two_batches(fs)
    err = _flip_and_open(fs, path, HEADER_BYTES + 2)
    assert (err.path, err.offset) == (path, 0)


def test_flipped_bit_in_the_hard_state_is_corruption() -> None:
    """Damage to a hard-state record is corruption naming its segment and offset."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 1, 1))
    log.set_hard_state(HardState(7, "n3", 1))
    log.sync()
    log.append(ents(2, 2, 7))
    log.sync()
    path = segments(fs)[0]
    hs_at = [o for t, o in record_offsets(fs, path) if t == RecordType.HARD_STATE][-1]
    err = _flip_and_open(fs, path, hs_at + HEADER_BYTES + 1)
    assert (err.path, err.offset) == (path, hs_at)


def test_flipped_bit_in_the_snapshot_file_is_corruption() -> None:
    """Damage anywhere in the current snapshot file is corruption naming that file."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.save_snapshot(Snapshot(SnapshotMeta(3, 1), b"engine-checkpoint-3"))
    log.sync()
    path = posixpath.join(D, snapshot_name(1))
    err = _flip_and_open(fs, path, fs.file_size(path) - 3)
    assert err.path == path


def test_missing_snapshot_file_is_corruption() -> None:
    """A committed snapshot record whose file is gone is corruption naming the missing file."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.save_snapshot(Snapshot(SnapshotMeta(3, 1), b"img"))
    log.sync()
    path = posixpath.join(D, snapshot_name(1))
    fs.remove(path)
    with pytest.raises(CorruptionError) as info:
        DurableRaftLog.open(D, fs=fs)
    assert info.value.path == path


def test_damage_in_a_segment_that_is_not_the_last_is_corruption() -> None:
    """A torn record in an older segment is corruption: it was synced before the next segment existed."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=10)
    for i in range(1, 4):
        log.append(ents(i, i, 1))
        log.sync()
    first = segments(fs)[0]
    fs.truncate(first, fs.file_size(first) - 3)
    with pytest.raises(CorruptionError) as info:
        DurableRaftLog.open(D, fs=fs)
    assert info.value.path == first


def test_missing_middle_segment_is_corruption() -> None:
    """A hole in the segment numbers is corruption naming the missing segment."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=10)
    for i in range(1, 5):
        log.append(ents(i, i, 1))
        log.sync()
    fs.remove(posixpath.join(D, segment_name(2)))
    with pytest.raises(CorruptionError) as info:
        DurableRaftLog.open(D, fs=fs)
    assert info.value.path == posixpath.join(D, segment_name(2))


def test_entry_gap_is_corruption() -> None:
    """A well-checksummed segment whose entries skip an index is corruption (contiguity is checked on read)."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 2, 1))
    log.sync()
    log.close()
    path = segments(fs)[0]
    from kvstore.server.raft_log import encode_commit, encode_entry

    f = fs.open_write(path, append=True)
    f.write(encode_record(RecordType.ENTRY, encode_entry(Entry(1, 4))))
    f.write(encode_record(RecordType.COMMIT, encode_commit(2)))
    f.sync()
    with pytest.raises(CorruptionError, match="gap"):
        DurableRaftLog.open(D, fs=fs)


def test_record_length_over_the_limit_is_corruption() -> None:
    """A header with a valid checksum but an absurd length is corruption, not a torn tail."""
    import struct
    import zlib

    tail = struct.pack("<IBI", MAX_MESSAGE_BYTES * 4, RecordType.ENTRY, 0)
    data = struct.pack("<I", zlib.crc32(tail)) + tail
    with pytest.raises(CorruptionError, match="over the limit"):
        scan_records(data, "x")


# --------------------------------------------------------------------------
# Validation and lifecycle.
# --------------------------------------------------------------------------


def test_bad_writes_are_refused_with_typed_errors() -> None:
    """Gaps, appends below the snapshot, decreasing terms, oversized data and ids are refused, writing nothing."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 3, 2))
    log.save_snapshot(Snapshot(SnapshotMeta(1, 2), b""))
    log.sync()
    bad: list[tuple[Entry, ...]] = [
        ents(5, 5, 2),  # gap
        ents(1, 1, 2),  # at the snapshot
        ents(3, 3, 1),  # term below the previous entry's
        (Entry(2, 4), Entry(2, 6)),  # not contiguous
        (Entry(0, 4),),  # term 0
    ]
    for batch in bad:
        with pytest.raises(InvalidArgument):
            log.append(batch)
    with pytest.raises(LimitExceeded):
        log.append((Entry(2, 4, data=bytes(MAX_MESSAGE_BYTES + 1)),))
    with pytest.raises(LimitExceeded):
        log.set_hard_state(HardState(1, "n" * (MAX_NODE_ID_BYTES + 1), 0))
    with pytest.raises(InvalidArgument):
        log.set_hard_state(HardState(-1, None, 0))
    with pytest.raises(InvalidArgument):
        log.save_snapshot(Snapshot(SnapshotMeta(-1, 0), b""))
    with pytest.raises(InvalidArgument):
        DurableRaftLog.open("/other", fs=fs, segment_bytes=0)
    assert fs.sync_count > 0 and not log._in_batch  # nothing was started by the refusals
    log.append(())  # an empty append is a no-op
    assert log.load().entries == ents(2, 3, 2)


def test_load_mid_batch_and_use_after_close_are_refused() -> None:
    """load() inside a batch is InvalidArgument; any call after close() is ClosedError; close drops the batch."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 1, 1))
    with pytest.raises(InvalidArgument):
        log.load()
    log.close()
    log.close()
    with pytest.raises(ClosedError):
        log.sync()
    assert DurableRaftLog.open(D, fs=fs).load() == RestoreState()


def test_load_after_writes_rereads_the_files() -> None:
    """A second load() (after syncs) reads the same state back from disk."""
    fs = SimFileSystem()
    log = DurableRaftLog.open(D, fs=fs, segment_bytes=120)
    for i in range(1, 8):
        log.append(ents(i, i, 1))
        log.sync()
    log.save_snapshot(Snapshot(SnapshotMeta(3, 1), b"s"))
    log.set_hard_state(HardState(1, "n1", 3))
    log.sync()
    assert log.load() == RestoreState(HardState(1, "n1", 3), Snapshot(SnapshotMeta(3, 1), b"s"), ents(4, 7, 1))


def test_failed_sync_fences_the_log() -> None:
    """After a StorageError in sync the log refuses further writes (the page cache cannot be trusted)."""

    class FailingFs(SimFileSystem):
        def sync_dir(self, path: str) -> None:
            raise StorageError("fsync dir: injected EIO")

    fs = FailingFs()
    log = DurableRaftLog.open(D, fs=fs)
    log.append(ents(1, 1, 1))
    with pytest.raises(StorageError, match="injected"):
        log.sync()
    with pytest.raises(StorageError, match="reopen"):
        log.append(ents(2, 2, 1))


def test_real_files_round_trip(tmp_path: Path) -> None:
    """On the real file system: write, roll segments, snapshot, close, reopen, and read the same state."""
    d = str(tmp_path / "raft")
    log = DurableRaftLog.open(d, fs=OSFileSystem(), segment_bytes=256)
    for i in range(1, 30):
        log.append(ents(i, i, 1 + i // 10))
        log.set_hard_state(HardState(1 + i // 10, "n1", i - 1))
        log.sync()
    log.save_snapshot(Snapshot(SnapshotMeta(12, 2), b"ckpt"))
    log.sync()
    log.close()
    rs = DurableRaftLog.open(d, segment_bytes=256).load()
    assert rs.hard_state == HardState(3, "n1", 28)
    assert rs.snapshot == Snapshot(SnapshotMeta(12, 2), b"ckpt")
    assert [e.index for e in rs.entries] == list(range(13, 30))
    assert sorted(p.name for p in (tmp_path / "raft").iterdir())[0].startswith("seg-")
