"""Adapters giving every benchmarked store the same small interface.

Each adapter is created on an empty directory and offers: ``put_batch(pairs)``,
``put(key, value)``, ``get(key)``, ``scan_count()``, ``compact()``, ``idle()`` (wait for
background work, where the store has an API for it) and ``close()``. Keys and values arrive as
bytes; stores that only take text (soonerdb, yellowdb) get the hex form of keys (which sorts
the same) and values decoded as latin-1 (soonerdb) — noted in the report.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any


class KvstoreStore:
    """Our engine, WAL on but not fsynced (sync="never"), as the issue's "sync off"."""

    name = "kvstore.lsm"
    note = "sync=never (WAL written, not fsynced); 8 MiB block cache; 4 MiB memtable"

    def __init__(self, path: str, **options: Any) -> None:
        from kvstore.lsm import Engine

        self.db = Engine.open(path, sync="never", **options)

    def put_batch(self, pairs: list[tuple[bytes, bytes]]) -> None:
        from kvstore.lsm import WriteBatch

        batch = WriteBatch()
        for k, v in pairs:
            batch.put(k, v)
        self.db.write(batch)

    def put(self, key: bytes, value: bytes) -> None:
        self.db.put(key, value)

    def get(self, key: bytes) -> bytes | None:
        return self.db.get(key)

    def scan_count(self) -> int:
        return sum(1 for _ in self.db.scan())

    def compact(self) -> None:
        self.db.compact()

    def idle(self) -> None:
        self.db.wait_idle()

    def extra(self) -> dict[str, Any]:
        s = self.db.stats()
        return {
            "write_amplification": s.write_amplification,
            "write_amplification_without_wal": (s.flush_bytes_written + s.compaction_bytes_written)
            / max(1, s.user_bytes_written),
            "read_amplification": s.read_amplification,
            "bloom_false_positive_rate": s.bloom_false_positive_rate,
            "table_bytes": s.table_bytes,
            "levels": [lv.files for lv in s.levels],
            "stalls": s.stalls,
            "stall_seconds": s.stall_seconds,
        }

    def close(self) -> None:
        self.db.close()


class SqliteStore:
    """sqlite3: WAL journal, synchronous=NORMAL, WITHOUT ROWID table, batches in transactions."""

    name = "sqlite3"
    note = "WAL, synchronous=NORMAL, WITHOUT ROWID, default page cache"

    def __init__(self, path: str) -> None:
        import os

        os.makedirs(path, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(path, "db.sqlite"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")

    def put_batch(self, pairs: list[tuple[bytes, bytes]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", pairs)
        self.db.execute("COMMIT")

    def put(self, key: bytes, value: bytes) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def get(self, key: bytes) -> bytes | None:
        row = self.db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def scan_count(self) -> int:
        return sum(1 for _ in self.db.execute("SELECT k, v FROM kv ORDER BY k"))

    def compact(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def idle(self) -> None:
        pass

    def extra(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.db.close()


class LevelDBStore:
    """LevelDB through plyvel (default options: 4 MiB write buffer, 8 MiB block cache, no bloom)."""

    name = "leveldb (plyvel)"
    note = "plyvel defaults, sync=False"

    def __init__(self, path: str) -> None:
        import plyvel

        self.db = plyvel.DB(path, create_if_missing=True)

    def put_batch(self, pairs: list[tuple[bytes, bytes]]) -> None:
        with self.db.write_batch() as wb:
            for k, v in pairs:
                wb.put(k, v)

    def put(self, key: bytes, value: bytes) -> None:
        self.db.put(key, value)

    def get(self, key: bytes) -> bytes | None:
        return self.db.get(key)  # type: ignore[no-any-return]

    def scan_count(self) -> int:
        return sum(1 for _ in self.db.iterator())

    def compact(self) -> None:
        self.db.compact_range()

    def idle(self) -> None:
        pass

    def extra(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.db.close()


class RocksDBStore:
    """RocksDB through rocksdict (raw bytes mode, default options)."""

    name = "rocksdb (rocksdict)"
    note = "rocksdict raw mode, defaults"

    def __init__(self, path: str) -> None:
        from rocksdict import AccessType, Options, Rdict

        opts = Options(raw_mode=True)
        self.db = Rdict(path, opts, access_type=AccessType.read_write())

    def put_batch(self, pairs: list[tuple[bytes, bytes]]) -> None:
        from rocksdict import WriteBatch

        wb = WriteBatch(raw_mode=True)
        for k, v in pairs:
            wb.put(k, v)
        self.db.write(wb)

    def put(self, key: bytes, value: bytes) -> None:
        self.db[key] = value

    def get(self, key: bytes) -> bytes | None:
        return self.db.get(key)  # type: ignore[no-any-return]

    def scan_count(self) -> int:
        return sum(1 for _ in self.db.items())

    def compact(self) -> None:
        self.db.compact_range(None, None)

    def idle(self) -> None:
        pass

    def extra(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.db.close()


class SoonerStore:
    """soonerdb (pure Python): text keys and values only, no batch API (a batch is a loop of sets)."""

    name = "soonerdb"
    note = "text only: hex keys, latin-1 values; no batches"

    def __init__(self, path: str) -> None:
        from soonerdb import SoonerDB

        self.db = SoonerDB(path)

    def put_batch(self, pairs: list[tuple[bytes, bytes]]) -> None:
        for k, v in pairs:
            self.db.set(k.hex(), v.decode("latin-1"))

    def put(self, key: bytes, value: bytes) -> None:
        self.db.set(key.hex(), value.decode("latin-1"))

    def get(self, key: bytes) -> bytes | None:
        v = self.db.get(key.hex(), None)
        return None if v is None else v.encode("latin-1")

    def scan_count(self) -> int:
        return sum(1 for _ in self.db.items())

    def compact(self) -> None:
        self.db._merge_sstables()

    def idle(self) -> None:
        pass

    def extra(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.db._merge_daemon.kill()


class YellowStore:
    """yellowdb (pure Python): text keys, bytes values, Batch API, large default cache."""

    name = "yellowdb"
    note = "text keys (hex); defaults"

    def __init__(self, path: str) -> None:
        from yellowdb import YellowDB

        self.db = YellowDB(data_directory=path)

    def put_batch(self, pairs: list[tuple[bytes, bytes]]) -> None:
        from yellowdb import Batch

        b = Batch(self.db)
        for k, v in pairs:
            b.put(k.hex(), v)
        b.commit()

    def put(self, key: bytes, value: bytes) -> None:
        self.db.set(key.hex(), value)

    def get(self, key: bytes) -> bytes | None:
        return self.db.get(key.hex())  # type: ignore[no-any-return]

    def scan_count(self) -> int:
        return sum(1 for _ in self.db.scan())

    def compact(self) -> None:
        self.db.compact()

    def idle(self) -> None:
        pass

    def extra(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.db.close()


STORES: dict[str, Callable[[str], Any]] = {
    "kvstore": KvstoreStore,
    "sqlite3": SqliteStore,
    "leveldb": LevelDBStore,
    "rocksdb": RocksDBStore,
    "soonerdb": SoonerStore,
    "yellowdb": YellowStore,
}
# Which pip package provides each peer (None: standard library or this project).
PEER_PACKAGES = {"leveldb": "plyvel", "rocksdb": "rocksdict", "soonerdb": "soonerdb", "yellowdb": "yellowdb"}
