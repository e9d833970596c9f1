"""The replicated KV state machine: committed Raft commands applied to the LSM engine.

Theory of operation. Every replica applies the same committed commands in the
same order, so every replica's engine holds the same data (Raft's state
machine safety). A command is a msgpack list, one of::

    ["put", key, value, client_id, seq]
    ["del", key, client_id, seq]
    ["cas", key, expected_or_None, new, client_id, seq]

and its result is what the client gets back (the previous value; whether the
key existed; whether the swap happened and the value before).

**Exactly once.** A command carries the client's session ``(client_id, seq)``.
Before applying it, :meth:`KVStateMachine.apply` asks the session table
whether that command was already applied; if so it returns the remembered
result and changes nothing. So a client may retry a write as often as it
likes (re-sending the same pair) and it takes effect once.

**Durability without a second fsync.** The Raft log is the write-ahead log.
Each applied command is written to the engine in *one* atomic batch together
with the new applied index and the session record, with the engine's own WAL
not fsynced (``sync="never"``); :meth:`KVStateMachine.apply_batch` puts a whole
run of commands (everything one Ready cycle commits) in one such batch, which
costs one engine write instead of one per command, and writes a client's
session list once per run instead of once per command (the batch keeps the
last put of a key). After a crash the engine holds some prefix of the applied
commands, *consistently* (data, applied index and sessions from the same
batch), and the node replays the Raft log from ``applied_index + 1``.

Engine key space (one byte of namespace in front of every key)::

    b"d" + user_key                        user data
    b"m" + b"applied"                      applied index, 8 bytes big-endian
    b"s" + client_id(8) + seq(8)           msgpack result of that command
    b"c" + client_id(8)                    msgpack [last_index_touched, [seq, ...]]

The session table in memory mirrors the ``s``/``c`` keys; eviction of the
least recently active client (by log index, so every replica evicts the same
one) deletes its keys in the same batch.

**Snapshots** are engine checkpoints (hard links to immutable SSTables, so
they are cheap): the data, the applied index and the sessions travel together.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from kvstore import errors
from kvstore.invariants import invariant
from kvstore.limits import MAX_BATCH_BYTES, MAX_BATCH_OPS, MAX_CLIENT_SESSIONS, SESSION_WINDOW_COMMANDS
from kvstore.lsm import Engine, WriteBatch
from kvstore.raft.messages import Entry, EntryType
from kvstore.types import CasResult

DATA = b"d"
APPLIED_KEY = b"mapplied"
SESSION = b"s"
CLIENT = b"c"
_U64 = struct.Struct(">Q")

# A retried put answers with the value it replaced; values above this size are
# not kept in the session record (the retry then learns that the write was
# applied, but not the old value: OutcomeUnknown explains which).
MAX_REMEMBERED_VALUE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded client command."""

    op: str
    key: bytes
    value: bytes | None = None
    expected: bytes | None = None
    client_id: int = 0
    seq: int = 0


def encode_command(cmd: Command) -> bytes:
    """The bytes proposed to Raft for ``cmd``."""
    if cmd.op == "put":
        body: list[Any] = ["put", cmd.key, cmd.value]
    elif cmd.op == "del":
        body = ["del", cmd.key]
    elif cmd.op == "cas":
        body = ["cas", cmd.key, cmd.expected, cmd.value]
    else:
        raise errors.InvalidArgument(f"unknown command {cmd.op!r}")
    packed: bytes = msgpack.packb([*body, cmd.client_id, cmd.seq], use_bin_type=True)
    return packed


def decode_command(data: bytes) -> Command:
    """Parse a command; raise InvalidArgument (never another exception) if malformed."""
    try:
        parts = msgpack.unpackb(data, raw=False, strict_map_key=True)
        op = parts[0]
        if op == "put":
            _, key, value, cid, seq = parts
            return Command("put", key, value, None, cid, seq)
        if op == "del":
            _, key, cid, seq = parts
            return Command("del", key, None, None, cid, seq)
        if op == "cas":
            _, key, expected, value, cid, seq = parts
            return Command("cas", key, value, expected, cid, seq)
    except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
        raise errors.InvalidArgument(f"malformed command: {exc}") from None
    raise errors.InvalidArgument(f"unknown command {op!r}")


class _StagedBatch(WriteBatch):
    """A WriteBatch that remembers what it stages, so later commands of a run can read it back."""

    __slots__ = ("nbytes", "staged")

    def __init__(self) -> None:
        super().__init__()
        self.staged: dict[bytes, bytes | None] = {}
        self.nbytes = 0

    def put(self, key: bytes, value: bytes) -> WriteBatch:
        """Stage a put (and remember it)."""
        super().put(key, value)
        self.staged[key] = value
        self.nbytes += len(key) + len(value)
        return self

    def delete(self, key: bytes) -> WriteBatch:
        """Stage a delete (and remember it)."""
        super().delete(key)
        self.staged[key] = None
        self.nbytes += len(key)
        return self


# A run of commands applied as one engine write (apply_batch) stays well inside
# the engine's batch limits: one command stages at most its value, a remembered
# previous value and a few small records, plus, when it evicts another client's
# session, one delete per command of that client's window.
_RUN_MAX_OPS = MAX_BATCH_OPS - 2 * SESSION_WINDOW_COMMANDS - 16
_RUN_MAX_BYTES = MAX_BATCH_BYTES // 2
_COMMAND_MAX_EXTRA_BYTES = MAX_REMEMBERED_VALUE_BYTES + 64 * 1024


def _session_key(client_id: int, seq: int) -> bytes:
    return SESSION + _U64.pack(client_id) + _U64.pack(seq)


def _client_key(client_id: int) -> bytes:
    return CLIENT + _U64.pack(client_id)


class KVStateMachine:
    """Applies committed commands to an :class:`~kvstore.lsm.Engine` (see the module docstring).

    Not thread-safe for writers: the node's apply thread is the only caller of
    ``apply``/``restore``/``checkpoint``. Readers (``get``/``scan``) may run
    concurrently (the engine's readers take no lock).
    """

    def __init__(self, engine: Engine, *, path: str, engine_options: dict[str, Any]) -> None:
        self.engine = engine
        self.path = path
        self.engine_options = engine_options
        self.applied_index = 0
        # client_id -> (last_index_touched, OrderedDict(seq -> result)), LRU by last index
        self._clients: OrderedDict[int, tuple[int, OrderedDict[int, Any]]] = OrderedDict()
        self.max_clients = MAX_CLIENT_SESSIONS
        self.window = SESSION_WINDOW_COMMANDS
        self.dedup = True  # False only for the planted bug "no-dedup" (kvstore/server/planted.py)
        self._load()

    @classmethod
    def open(cls, path: str, **engine_options: Any) -> KVStateMachine:
        """Open (creating) the engine at ``path`` and load the applied index and sessions."""
        options = {"sync": "never", **engine_options}
        recover_engine_dir(path)
        return cls(Engine.open(path, **options), path=path, engine_options=options)

    def close(self) -> None:
        """Close the engine (its WAL is synced on close)."""
        self.engine.close()

    # ------------------------------------------------------------------ reads

    def get(self, key: bytes) -> bytes | None:
        """The value under a user key."""
        return self.engine.get(DATA + key)

    def scan(self, start: bytes | None, end: bytes | None, *, reverse: bool, limit: int) -> list[tuple[bytes, bytes]]:
        """User pairs in ``[start, end)``, at most ``limit``."""
        lo = DATA + (start or b"")
        hi = DATA + end if end else b"e"  # b"e" is the first key after every b"d..." key
        return [(k[1:], v) for k, v in self.engine.scan(lo, hi, reverse=reverse, limit=limit)]

    def key_count_estimate(self) -> int:
        """Number of user keys (exact: a scan; cheap enough for status on small stores)."""
        return sum(1 for _ in self.engine.scan(DATA, b"e", limit=1_000_000))

    # ------------------------------------------------------------------ apply

    def apply(self, entry: Entry) -> object:
        """Apply one committed entry; return the command's result (None for NOOP/config).

        The engine write (data, session record, applied index) is one atomic batch.
        """
        return self.apply_batch([entry])[0]

    def apply_batch(self, entries: Sequence[Entry]) -> list[object]:
        """Apply committed entries in index order; return their results, in order.

        Same results and same final state as :meth:`apply` on each entry, but
        the engine sees one atomic write (data, session records, the last
        applied index) per run of entries, instead of one per entry: a
        command reads the writes of the commands before it in the run through
        :meth:`current_value`. A run is cut before it could exceed the
        engine's batch limits.

        Complexity: one engine write per run (~500 commands or ~2 MiB).
        """
        results: list[object] = []
        batch = _StagedBatch()
        for entry in entries:
            invariant(entry.index == self.applied_index + 1, "entries are applied once, in index order")
            if len(batch) >= _RUN_MAX_OPS or batch.nbytes + len(entry.data) + _COMMAND_MAX_EXTRA_BYTES > _RUN_MAX_BYTES:
                self._write_run(batch)
                batch = _StagedBatch()
            result: object = None
            if entry.type == EntryType.NORMAL:
                result = self._apply_command(entry, batch)
            self.applied_index = entry.index
            results.append(result)
        if entries:
            self._write_run(batch)
        return results

    def _write_run(self, batch: WriteBatch) -> None:
        """Write a run of applied commands together with the applied index (no fsync: Raft's log is the WAL)."""
        batch.put(APPLIED_KEY, _U64.pack(self.applied_index))
        self.engine.write(batch, sync=False)

    def current_value(self, key: bytes, batch: WriteBatch) -> bytes | None:
        """The value of user key ``key`` now: as staged in ``batch`` by an earlier command
        of the same run (see :meth:`apply_batch`), else as stored in the engine."""
        data_key = DATA + key
        if isinstance(batch, _StagedBatch) and data_key in batch.staged:
            return batch.staged[data_key]
        return self.engine.get(data_key)

    def _apply_command(self, entry: Entry, batch: WriteBatch) -> object:
        """Apply a NORMAL entry into ``batch``: de-duplicate, execute, remember the result."""
        # BEGIN SOLUTION kv-state-machine
        try:
            cmd = decode_command(entry.data)
        except errors.InvalidArgument as exc:
            return exc  # a malformed command changes nothing, on every replica alike
        done, remembered = self.lookup_session(cmd.client_id, cmd.seq)
        if done:
            return remembered
        result = self._execute(cmd, batch)
        self._record_session(cmd.client_id, cmd.seq, result, entry.index, batch)
        return result
        # END SOLUTION

    def _execute(self, cmd: Command, batch: WriteBatch) -> object:
        """Run one command against the current state, adding its writes to ``batch``.

        Read the key's current value with ``self.current_value(cmd.key, batch)``
        (not from the engine directly: an earlier command of the same batch may
        have written it). Results: put -> the previous value (or None); del ->
        whether the key existed (delete only if it did); cas -> ``CasResult(swapped,
        previous)``, writing only when the current value equals ``cmd.expected``
        (None meaning "absent"). User keys live under the ``DATA`` prefix.
        """
        # BEGIN SOLUTION kv-state-machine
        current = self.current_value(cmd.key, batch)
        if cmd.op == "put":
            invariant(cmd.value is not None, "a put carries a value")
            batch.put(DATA + cmd.key, cmd.value or b"")
            return current
        if cmd.op == "del":
            if current is not None:
                batch.delete(DATA + cmd.key)
            return current is not None
        if current == cmd.expected:
            batch.put(DATA + cmd.key, cmd.value or b"")
            return CasResult(True, current)
        return CasResult(False, current)
        # END SOLUTION

    # ------------------------------------------------------------------ sessions

    def lookup_session(self, client_id: int, seq: int) -> tuple[bool, object]:
        """``(True, result)`` if command ``seq`` of ``client_id`` was applied, else ``(False, None)``.

        A remembered result that was too large to keep comes back as an
        :class:`~kvstore.errors.OutcomeUnknown` *value* (the command was
        applied; the old value is not known). A command older than the
        client's window comes back the same way.
        """
        # BEGIN SOLUTION kv-state-machine
        if client_id == 0 or not self.dedup:
            return False, None
        entry = self._clients.get(client_id)
        if entry is None:
            return False, None
        window = entry[1]
        if seq in window:
            return True, _revive(window[seq])
        if len(window) >= self.window and seq < next(iter(window)):
            return True, errors.OutcomeUnknown(f"command {seq} is older than the session window")
        return False, None
        # END SOLUTION

    def _record_session(self, client_id: int, seq: int, result: object, index: int, batch: WriteBatch) -> None:
        """Remember ``result`` for (client, seq) in memory and in ``batch``; evict as needed."""
        # BEGIN SOLUTION kv-state-machine
        if client_id == 0:
            return
        entry = self._clients.pop(client_id, None)
        window: OrderedDict[int, Any] = entry[1] if entry else OrderedDict()
        if entry is None and len(self._clients) >= self.max_clients:
            old_id, (_, old_window) = self._clients.popitem(last=False)  # least recently active
            for old_seq in old_window:
                batch.delete(_session_key(old_id, old_seq))
            batch.delete(_client_key(old_id))
        stored = _freeze(result)
        window[seq] = stored
        batch.put(_session_key(client_id, seq), msgpack.packb(stored, use_bin_type=True))
        while len(window) > self.window:
            dropped, _ = window.popitem(last=False)
            batch.delete(_session_key(client_id, dropped))
        self._clients[client_id] = (index, window)
        batch.put(_client_key(client_id), msgpack.packb([index, list(window)], use_bin_type=True))
        # END SOLUTION

    def session_count(self) -> int:
        """Number of clients with a session."""
        return len(self._clients)

    # ------------------------------------------------------------------ load, snapshot, restore

    def _load(self) -> None:
        """Read the applied index and the session table back from the engine."""
        raw = self.engine.get(APPLIED_KEY)
        self.applied_index = _U64.unpack(raw)[0] if raw else 0
        clients: list[tuple[int, int, OrderedDict[int, Any]]] = []
        for key, value in self.engine.scan(CLIENT, b"d"):
            client_id = _U64.unpack(key[1:9])[0]
            last_index, seqs = msgpack.unpackb(value, raw=False)
            window: OrderedDict[int, Any] = OrderedDict()
            for s in seqs:
                stored = self.engine.get(_session_key(client_id, s))
                if stored is None:
                    raise errors.CorruptionError(self.path, -1, f"session record {client_id}/{s} is missing")
                window[s] = msgpack.unpackb(stored, raw=False)
            clients.append((last_index, client_id, window))
        self._clients = OrderedDict((cid, (idx, w)) for idx, cid, w in sorted(clients, key=lambda t: (t[0], t[1])))

    def checkpoint(self, dest_dir: str) -> None:
        """A consistent copy of everything applied so far (call between applies)."""
        self.engine.checkpoint(dest_dir)

    def restore_from(self, checkpoint_dir: str) -> None:
        """Replace the whole state with a checkpoint (a snapshot received from the leader).

        Crash-safe in three steps, each recoverable by :func:`recover_engine_dir`:
        (1) link the checkpoint into ``PATH.incoming`` and fsync it; (2) rename
        ``PATH`` to ``PATH.old`` and ``PATH.incoming`` to ``PATH``, fsync the
        parent; (3) remove ``PATH.old``. A crash during (1) leaves the old state
        in place; after (2) the new state is in place.
        """
        self.engine.close()
        incoming, aside = self.path + ".incoming", self.path + ".old"
        shutil.rmtree(incoming, ignore_errors=True)
        shutil.copytree(checkpoint_dir, incoming, copy_function=_link_or_copy)
        _fsync_dir(incoming)
        parent = os.path.dirname(os.path.abspath(self.path))
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(self.path, aside)
        os.rename(incoming, self.path)
        _fsync_dir(parent)
        shutil.rmtree(aside, ignore_errors=True)
        self.engine = Engine.open(self.path, **self.engine_options)
        self._load()

    def check_invariants(self) -> None:
        """Sessions bounded; windows non-empty and bounded."""
        invariant(len(self._clients) <= self.max_clients, "session table bounded")
        for _, window in self._clients.values():
            invariant(0 < len(window) <= self.window, "session windows bounded")


def recover_engine_dir(path: str) -> None:
    """Finish or undo a :meth:`KVStateMachine.restore_from` that a crash interrupted.

    * ``PATH`` missing, ``PATH.incoming`` present: the crash fell between the two
      renames, after the new state was complete: finish the switch.
    * ``PATH`` missing, only ``PATH.old`` present: undo the first rename.
    * Leftover ``PATH.incoming`` (incomplete copy) or ``PATH.old``: remove it.
    """
    incoming, aside = path + ".incoming", path + ".old"
    if not os.path.exists(path):
        if os.path.exists(incoming) and os.path.exists(aside):
            os.rename(incoming, path)
        elif os.path.exists(aside):
            os.rename(aside, path)
        if os.path.exists(path):
            _fsync_dir(os.path.dirname(os.path.abspath(path)))
    shutil.rmtree(incoming, ignore_errors=True)
    shutil.rmtree(aside, ignore_errors=True)


def _freeze(result: object) -> object:
    """A msgpack-able form of a command result."""
    if isinstance(result, CasResult):
        return ["cas", result.swapped, _remembered(result.current)]
    if isinstance(result, bool):
        return ["del", result]
    if result is None or isinstance(result, bytes):
        return ["put", _remembered(result)]
    return ["err", str(result)]


def _remembered(value: bytes | None) -> object:
    if value is not None and len(value) > MAX_REMEMBERED_VALUE_BYTES:
        return ["too-large", len(value)]
    return value


def _revive(stored: Any) -> object:
    """The result a retried command gets back (see :func:`_freeze`)."""
    kind = stored[0]
    values = stored[1:]
    if any(isinstance(v, list) for v in values):
        return errors.OutcomeUnknown("the write was applied, but the value it replaced was too large to remember")
    if kind == "cas":
        return CasResult(bool(values[0]), values[1])
    if kind == "del":
        return bool(values[0])
    if kind == "put":
        return values[0]
    return errors.InvalidArgument(str(values[0]))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
