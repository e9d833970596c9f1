"""kvstore.lsm — an LSM-tree storage engine written from scratch.

An embedded, ordered, durable map of bytes to bytes: memtable + write-ahead log, SSTables
with bloom filters and a block cache, leveled compaction in a background thread, and a
manifest of version edits. It knows nothing of the network or of Raft.

    from kvstore.lsm import Engine, WriteBatch

    with Engine.open("data/db") as db:
        db.put(b"k", b"v")
        db.write(WriteBatch().put(b"a", b"1").delete(b"k"))
        assert db.get(b"a") == b"1"
        for key, value in db.scan(b"a", b"z", reverse=True, limit=10):
            ...

Start reading at :mod:`kvstore.lsm.engine` (theory of operation and threading model); the
on-disk formats are in ``FORMAT.md`` next to this file.
"""

from kvstore.lsm.engine import Engine, EngineOptions, EngineStats, LevelStats, WriteBatch

__all__ = ["Engine", "EngineOptions", "EngineStats", "LevelStats", "WriteBatch"]
