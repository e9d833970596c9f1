"""Workloads: the logical clients of a run and what they record.

Theory of operation. A logical client is one asyncio task with its own
:class:`~kvstore.client.client.AsyncClient` (so its leader cache is its own, as
a real client's would be), issuing one operation at a time. Every operation is
recorded around the call: ``invoke``, then ``ok`` with what was observed,
``fail`` when the error is definite (``KVError.definite``: it certainly did not
happen), or ``info`` otherwise (a timeout, a lost connection, any unexpected
exception) — after which the client continues under a new process id, as the
history format requires.

Keys in the store are ``jl/<key>`` (:data:`STORE_PREFIX`); the history names them
``<key>``. Values are decimal integers, unique per key, so a read says which write
it saw.

- **register**: keys ``r0..``; per key several clients, some of them reads-only;
  the others mix read, write (a fresh value) and cas (expected: a value recently
  written to the key, or absent; new: a fresh value). Model:
  :class:`~jepsen_lite.models.RegisterModel`.
- **set** (unique-append): keys ``s0..`` hold comma-separated elements. A client
  adds a fresh element ``e`` by reading the value ``v`` and ``cas(v, v + ",e")``,
  trusting a refused cas to mean "not applied" and trying again with the new
  value; so a store that applies a retried cas twice, or refuses a cas it did
  apply, shows ``e`` twice in the final read, and a store that loses an
  acknowledged cas misses it. Checked by :mod:`jepsen_lite.sets`.
- **delete**: each client writes fresh keys ``d<client>.<i>`` (values padded to
  VALUE_PAD_BYTES, so the nodes' memtables fill and flush often), deletes each key
  DELETE_LAG of its writes later, and reads back recently deleted keys. Model:
  the register's, where ``delete`` makes a key absent. With a small ``[storage]``
  level shape a key's value has sunk to a deep LSM level before its tombstone is
  written, so a compaction that drops the tombstone too early brings the deleted
  value back: a read (or the final read, or the replicas' dumps) shows it.
- **mixed**: both at once, on keys ``r0..`` and ``s0..`` of the same shard, so the
  register's blind writes and the sets' compare-and-sets share one Raft log (a
  replica that applies a wrong entry in place of a set's cas diverges for good).

After the faults are healed and the clients stopped, :func:`final_reads` reads
each key once more (retrying a few times) under fresh processes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, TypeVar

from jepsen_lite.history import HistoryRecorder

from kvstore.client.client import AsyncClient, ClientOptions
from kvstore.client.cluster import ClusterMap
from kvstore.errors import KVError

STORE_PREFIX: Final = b"jl/"
WORKLOADS: Final = ("register", "set", "mixed", "delete")
THINK_S: Final = 0.02  # mean pause between a client's operations: keeps the history checkable, the cluster busy
T = TypeVar("T")
ADD_ATTEMPTS: Final = 20  # read + cas rounds one add may take before it gives up (contention)
# delete workload: a client deletes the key it wrote this many writes earlier. With ~12 clients and padded
# values that is a few hundred KiB of writes in between, i.e. several 64 KiB memtable flushes: the value is in
# an SSTable (and, with small level targets, compacted down) before its tombstone is written.
DELETE_LAG: Final = 20
VALUE_PAD_BYTES: Final = 512  # delete workload: bytes of padding after the value, so memtables fill quickly
READ_BACK: Final = 20  # delete workload: reads pick among this many most recently deleted keys


@dataclass
class WorkloadState:
    """Shared by the clients of a run: the stop flag and per-key value counters."""

    recorder: HistoryRecorder
    cluster: ClusterMap
    options: ClientOptions
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    next_value: dict[str, int] = field(default_factory=dict)
    written: dict[str, list[int]] = field(default_factory=dict)

    def fresh(self, key: str) -> int:
        """A value never used for ``key`` before."""
        v = self.next_value.get(key, 0) + 1
        self.next_value[key] = v
        return v

    def check_invariants(self) -> None:
        """Every value written to a key came from its counter."""
        from kvstore.invariants import invariant

        invariant(
            all(max(vs, default=0) <= self.next_value.get(k, 0) for k, vs in self.written.items()),
            "written values come from the counter",
        )


def store_key(key: str) -> bytes:
    """The store's key for a history key."""
    return STORE_PREFIX + key.encode()


def decode_int(raw: bytes | None) -> object:
    """A stored value as an int (None when absent; the raw text when it is not a number)."""
    if raw is None:
        return None
    text = raw.decode(errors="replace")
    return int(text) if text.isdigit() else text


def decode_elements(raw: bytes | None) -> list[object]:
    """A set's stored value as its list of elements, duplicates kept."""
    if not raw:
        return []
    return [int(e) if e.isdigit() else e for e in raw.decode(errors="replace").split(",") if e]


class _AnsweringClient(AsyncClient):
    """An AsyncClient that remembers which address gave its last answer (the history's ``node`` field).

    It hooks the client's one-request-to-one-node step (``_attempt``): the address of
    the attempt that returned is the node that answered. A definite error answered by a
    node also names it; a timeout names none.
    """

    last_address: str | None = None

    async def _attempt(
        self, address: str, send: Callable[[Any, float], Awaitable[T]], timeout: float, *, write: bool
    ) -> T:
        self.last_address = None
        try:
            resp = await super()._attempt(address, send, timeout, write=write)
        except KVError as exc:
            self.last_address = address if exc.definite else None
            raise
        self.last_address = address
        return resp


class LogicalClient:
    """One single-threaded client: records each call and renews its process id after ``info``."""

    def __init__(self, state: WorkloadState, *, rng: random.Random) -> None:
        self.state = state
        self.rng = rng
        self.process = state.recorder.new_process()
        self.client = _AnsweringClient(state.cluster, options=state.options, rng=random.Random(rng.getrandbits(64)))
        self._node_of = {r.address: r.id for shard in state.cluster.shards for r in shard.replicas}

    def answered_by(self) -> str | None:
        """The id of the node that answered the last call (None: no node did, e.g. a timeout)."""
        address = self.client.last_address
        return None if address is None else self._node_of.get(address, address)

    async def call(
        self, f: str, key: str, value: object, action: Callable[[], Awaitable[object]]
    ) -> tuple[str, object]:
        """Record ``invoke``, run ``action``, record its outcome; return (type, observed value)."""
        rec = self.state.recorder
        rec.invoke(self.process, f, key, value)
        self.client.last_address = None
        try:
            out = await action()
        except KVError as exc:
            kind = "fail" if exc.definite else "info"
            node = self.answered_by() if exc.definite else None
            rec.complete(self.process, kind, node=node, error=f"{type(exc).__name__}: {exc}"[:300])
        except Exception as exc:
            kind = "info"
            rec.complete(self.process, kind, error=f"{type(exc).__name__}: {exc}"[:300])
        else:
            rec.complete(self.process, "ok", out, node=self.answered_by())
            return "ok", out
        if kind == "info":
            self.process = rec.new_process()
        return kind, None

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, 2 * THINK_S))

    async def close(self) -> None:
        await self.client.close()


async def register_client(state: WorkloadState, key: str, *, reads_only: bool, rng: random.Random) -> None:
    """Read / write / cas one key until the stop flag is set."""
    lc = LogicalClient(state, rng=rng)
    skey = store_key(key)
    try:
        while not state.stop.is_set():
            roll = 0.0 if reads_only else rng.random()
            if roll < 0.5:
                await lc.call("read", key, None, partial(_read, lc.client, skey))
            elif roll < 0.8:
                v = state.fresh(key)
                state.written.setdefault(key, []).append(v)
                await lc.call("write", key, v, partial(_write, lc.client, skey, v))
            else:
                recent = state.written.get(key, [])[-3:]
                expected = rng.choice(recent) if recent else None
                new = state.fresh(key)
                state.written.setdefault(key, []).append(new)
                await lc.call("cas", key, [expected, new], partial(_cas, lc.client, skey, expected, new))
            await lc.think()
    finally:
        await lc.close()


async def _read(client: AsyncClient, skey: bytes) -> object:
    return decode_int(await client.get(skey))


async def _write(client: AsyncClient, skey: bytes, v: int) -> object:
    await client.put(skey, str(v).encode())
    return v


async def _cas(client: AsyncClient, skey: bytes, expected: int | None, new: int) -> object:
    result = await client.cas(skey, None if expected is None else str(expected).encode(), str(new).encode())
    return [expected, new] if result.swapped else False


async def delete_client(state: WorkloadState, client: int, *, rng: random.Random) -> None:
    """Write fresh keys, delete each DELETE_LAG writes later, read recently deleted keys, until stopped."""
    lc = LogicalClient(state, rng=rng)
    live: list[str] = []
    deleted: list[str] = []
    try:
        while not state.stop.is_set():
            key = f"d{client}.{len(live) + len(deleted)}"
            v = state.fresh(key)
            state.written.setdefault(key, []).append(v)
            live.append(key)
            await lc.call("write", key, v, partial(_write_padded, lc.client, store_key(key), v))
            if len(live) > DELETE_LAG:
                old = live.pop(0)
                deleted.append(old)
                await lc.call("delete", old, None, partial(_delete, lc.client, store_key(old)))
            if deleted:
                target = rng.choice(deleted[-READ_BACK:])
                await lc.call("read", target, None, partial(_read_padded, lc.client, store_key(target)))
            await lc.think()
    finally:
        await lc.close()


async def _write_padded(client: AsyncClient, skey: bytes, v: int) -> object:
    await client.put(skey, b"%d:" % v + b"." * VALUE_PAD_BYTES)
    return v


async def _delete(client: AsyncClient, skey: bytes) -> object:
    await client.delete(skey)
    return None


async def _read_padded(client: AsyncClient, skey: bytes) -> object:
    return decode_padded(await client.get(skey))


def decode_padded(raw: bytes | None) -> object:
    """A delete-workload value (``<int>:<padding>``) as its int; None when absent; the raw text if malformed."""
    if raw is None:
        return None
    head = raw.split(b":", 1)[0].decode(errors="replace")
    return int(head) if head.isdigit() else raw.decode(errors="replace")[:40]


async def set_client(state: WorkloadState, key: str, *, rng: random.Random) -> None:
    """Add fresh elements to one set until the stop flag is set."""
    lc = LogicalClient(state, rng=rng)
    skey = store_key(key)
    try:
        while not state.stop.is_set():
            element = state.fresh(key)
            await lc.call("add", key, element, partial(_append, lc.client, skey, element))
            await lc.think()
    finally:
        await lc.close()


async def _append(client: AsyncClient, skey: bytes, element: int) -> object:
    """Read-then-cas until the cas swaps; a refused cas is taken at its word (not applied)."""
    last: KVError | None = None
    for _ in range(ADD_ATTEMPTS):
        try:
            current = await client.get(skey)
        except KVError as exc:
            if not exc.definite:
                raise
            last = exc
            continue
        new = (current + b"," if current else b"") + str(element).encode()
        result = await client.cas(skey, current, new)
        if result.swapped:
            return element
    raise last or _GaveUp(f"gave up adding {element} after {ADD_ATTEMPTS} refused compare-and-sets")


class _GaveUp(KVError):
    """Every attempt of an add was refused (or definitely failed): it did not happen."""

    code = "GAVE_UP"
    definite = True


async def final_reads(state: WorkloadState, keys: list[str], *, attempts: int = 5) -> None:
    """Read every key once more (a set key ``s..`` whole), under a fresh process per key, retrying definite failures."""
    rng = random.Random(0)
    for key in keys:
        lc = LogicalClient(state, rng=rng)
        skey = store_key(key)
        try:
            for _ in range(attempts):
                if key.startswith("s"):
                    kind, _ = await lc.call("read-set", key, None, partial(_read_set, lc.client, skey))
                elif key.startswith("d"):
                    kind, _ = await lc.call("read", key, None, partial(_read_padded, lc.client, skey))
                else:
                    kind, _ = await lc.call("read", key, None, partial(_read, lc.client, skey))
                if kind == "ok":
                    break
                await asyncio.sleep(0.2)
        finally:
            await lc.close()


async def _read_set(client: AsyncClient, skey: bytes) -> object:
    return decode_elements(await client.get(skey))
