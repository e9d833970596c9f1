"""Memtable and write-ahead log: ordering, size bound, record framing, torn tail vs corruption."""

from __future__ import annotations

import random
import threading

import pytest

from kvstore.errors import CorruptionError, StorageError
from kvstore.fs import SimFileSystem
from kvstore.lsm.memtable import MISSING, Memtable
from kvstore.lsm.wal import HEADER_BYTES, WalWriter, decode_batch, encode_batch, encode_record, read_records


def test_memtable_keeps_newest_value_and_tombstones(seed: int) -> None:
    """Later puts win, deletes are tombstones (None), absent keys are MISSING; keys come sorted."""
    rng = random.Random(seed)
    mem = Memtable(capacity_bytes=1 << 20)
    model: dict[bytes, bytes | None] = {}
    for _ in range(2000):
        k = b"%d" % rng.randrange(300)
        v = None if rng.random() < 0.3 else rng.randbytes(5)
        mem.put(k, v)
        model[k] = v
        if rng.random() < 0.05:
            assert mem.sorted_keys() == sorted(model)
    mem.check_invariants()
    assert mem.sorted_keys() == sorted(model)
    assert all(mem.get(k) == v for k, v in model.items())
    assert mem.get(b"absent") is MISSING


def test_memtable_sorted_keys_snapshot_is_stable() -> None:
    """A key list handed out earlier is not changed by later inserts."""
    mem = Memtable(capacity_bytes=1 << 20)
    mem.put(b"b", b"1")
    snap = mem.sorted_keys()
    mem.put(b"a", b"2")
    assert snap == [b"b"] and mem.sorted_keys() == [b"a", b"b"]


def test_memtable_reports_full_at_capacity() -> None:
    """is_full turns true once the size estimate reaches the capacity, and a frozen memtable refuses writes."""
    mem = Memtable(capacity_bytes=1000)
    while not mem.is_full():
        mem.put(b"k%d" % len(mem), b"x" * 50)
    assert 1000 <= mem.approximate_bytes < 1000 + 200
    mem.freeze()
    with pytest.raises(AssertionError):
        mem.put(b"z", b"z")


def test_wal_records_round_trip() -> None:
    """Every framed record is read back whole and in order."""
    payloads = [b"", b"a", bytes(range(256)) * 40]
    data = b"".join(encode_record(p) for p in payloads)
    assert read_records(data, "w") == (payloads, len(data))


def test_wal_truncated_tail_is_ignored() -> None:
    """A record cut anywhere (header or payload) at the end of the file is dropped silently."""
    good = encode_record(b"first") + encode_record(b"second")
    last = encode_record(b"third record")
    for cut in range(1, len(last)):
        payloads, end = read_records(good + last[:cut], "w")
        assert payloads == [b"first", b"second"] and end == len(good)


def test_wal_zero_filled_tail_is_ignored() -> None:
    """Zero bytes after the last record (preallocated space) end the log silently."""
    good = encode_record(b"first")
    assert read_records(good + b"\0" * 100, "w") == ([b"first"], len(good))


@pytest.mark.parametrize("where", ["payload", "length", "header_crc"])
def test_wal_damage_in_the_middle_is_corruption(where: str) -> None:
    """A flipped bit in a complete record followed by more data raises CorruptionError with file and offset."""
    first = encode_record(b"first")
    second = encode_record(b"second payload")
    data = bytearray(first + second + encode_record(b"third"))
    pos = {"payload": len(first) + HEADER_BYTES + 3, "length": len(first) + 4, "header_crc": len(first) + 9}[where]
    data[pos] ^= 0x10
    with pytest.raises(CorruptionError) as e:
        read_records(bytes(data), "wal-file")
    assert e.value.path == "wal-file" and e.value.offset == len(first)


def test_wal_bit_flip_in_last_complete_record_is_corruption() -> None:
    """Damage to the payload of the final, complete record is reported, not mistaken for a torn write."""
    data = bytearray(encode_record(b"only record"))
    data[-1] ^= 1
    with pytest.raises(CorruptionError):
        read_records(bytes(data), "w")


def test_batch_codec_round_trip(seed: int) -> None:
    """Batches with values, empty values and tombstones decode to what was encoded."""
    rng = random.Random(seed)
    keys = [rng.randbytes(rng.randrange(1, 20)) for _ in range(50)]
    values = [None if rng.random() < 0.3 else rng.randbytes(rng.randrange(0, 30)) for _ in keys]
    assert decode_batch(encode_batch(keys, values), "w", 0) == (keys, values)


def test_batch_with_inconsistent_lengths_is_corruption() -> None:
    """A checksummed but malformed batch payload is refused, not half-applied."""
    payload = encode_batch([b"k"], [b"value"])
    with pytest.raises(CorruptionError):
        decode_batch(payload[:-1], "w", 0)


def test_wal_group_commit_one_fsync_covers_earlier_records(sim_fs: SimFileSystem) -> None:
    """A writer whose record was covered by another writer's fsync returns without a second fsync."""
    sim_fs.make_dirs("/d")
    wal = WalWriter(sim_fs.open_write("/d/w.log"))
    ends = [wal.add(b"record %d" % i) for i in range(3)]
    assert sim_fs.durable_size("/d/w.log") == 0
    wal.sync_to(ends[2])
    assert wal.sync_count == 1 and sim_fs.durable_size("/d/w.log") == ends[2]
    wal.sync_to(ends[0])
    wal.sync_to(ends[1])
    assert wal.sync_count == 1


def test_wal_concurrent_writers_are_all_durable(sim_fs: SimFileSystem) -> None:
    """Writers in many threads each return only once their own record is durable."""
    sim_fs.make_dirs("/d")
    wal = WalWriter(sim_fs.open_write("/d/w.log"))
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        for j in range(50):
            with lock:
                end = wal.add(b"%d-%d" % (i, j))
            wal.sync_to(end)
            assert wal.synced_offset >= end

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal.check_invariants()
    assert sim_fs.durable_size("/d/w.log") == wal.end_offset
    payloads, _ = read_records(sim_fs.read_file("/d/w.log"), "w")
    assert len(payloads) == 400


class _DiskFullAfter:
    """A WritableFile that accepts ``room`` bytes, then writes part of the next chunk and fails (a full disk)."""

    def __init__(self, room: int) -> None:
        self.path = "/full.log"
        self.data = bytearray()
        self.room = room
        self.refusals = 0

    def write(self, data: bytes) -> None:
        if len(self.data) + len(data) > self.room:
            self.data += data[: self.room - len(self.data)]  # a short write: part of a record lands
            self.refusals += 1
            raise StorageError("no space left on device")
        self.data += data

    def sync(self) -> None:
        pass

    def size(self) -> int:
        return len(self.data)

    def close(self) -> None:
        pass


def test_wal_writer_fails_stop_after_a_short_write_and_never_appends_after_the_torn_record() -> None:
    """After a failed write the WAL refuses adds, syncs and the final flush, so its torn record stays its tail."""
    f = _DiskFullAfter(room=100)
    wal = WalWriter(f)
    end = wal.add(b"a" * 40)
    wal.sync_to(end)
    end = wal.add(b"b" * 80)
    with pytest.raises(StorageError):
        wal.sync_to(end)
    assert f.refusals == 1 and len(f.data) == 100  # the fault happened: a torn second record
    torn = bytes(f.data)
    with pytest.raises(StorageError):
        wal.add(b"c")
    with pytest.raises(StorageError):
        wal.sync_to(end)
    wal.close(sync=True)
    assert bytes(f.data) == torn
    records, _ = read_records(torn, f.path)  # recovery: the torn tail is dropped silently
    assert records == [b"a" * 40]
