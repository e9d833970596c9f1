"""The node runtime: one Raft core driven by asyncio, in front of the KV state machine.

Theory of operation. One task, the *node loop*, owns the :class:`RaftCore`.
Everything that wants the core — ticks from a timer, messages from peers,
proposals and reads from clients — goes through a bounded inbox; the loop
takes a batch of inputs, feeds them to the core, and then runs one **Ready
cycle**::

    rd = core.ready()
    a leader sends rd.messages now (its appends go out before its own fsync)
    persist rd (entries, hard state) and fsync ONCE  -- in a worker thread, only if
                                                       entries or term/vote changed
    meanwhile: apply rd.committed_entries, in order  -- inline: durable already
               answer the clients whose proposals were applied
    wait for the fsync; a follower sends rd.messages now
    release reads whose ReadIndex is now applied
    core.advance(rd)

(A Ready with a snapshot persists, installs and applies in worker threads.)
While a worker thread fsyncs, the node loop is parked, but the inbox keeps
filling; the next cycle takes everything that arrived at once, so many
client writes share one fsync (group commit) without any timer. Only an
fsync leaves the event loop: a thread hand-off costs more than an engine
write without fsync (measured: ~23 us per applied command). When the node
is *quiet* (one client write waiting on a leader, a one-entry append on a
follower) there is nothing to batch with, and the fsync runs on the loop
itself; a follower then sends its acknowledgement before applying
(:meth:`RaftNode._fsync_on_loop`).

**Proposals.** A client write becomes a command, proposed at index *i* in
term *t*. When index *i* is applied, the entry there either is ours (same
term: answer with its result) or is another leader's (our command was
overwritten and will never apply: a definite failure the client retries).

**Reads** use ReadIndex: the core confirms leadership with one heartbeat
round shared by every read that arrived meanwhile, then the read is served
once the state machine has applied the confirmed index.

**Snapshots.** When the log grows past ``snapshot_threshold_entries`` applied
entries, the state machine is checkpointed (hard links to immutable SSTables),
the core compacts its log, and the durable log drops the covered segments.
A lagging follower receives the checkpoint as a stream of chunks.

**Shutdown** stops taking inputs, lets accepted proposals finish for the
grace period, then closes the transport, the log and the engine.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from kvstore import errors, limits
from kvstore.config import NodeConfig
from kvstore.fs import FileSystem, OSFileSystem
from kvstore.invariants import InvariantViolation, invariant_failed
from kvstore.raft.core import RaftConfig, RaftCore, ReadState, Ready, Role
from kvstore.raft.messages import HardState, Message
from kvstore.raft.storage import LogStorage
from kvstore.server.planted import core_class, plant_engine_bug
from kvstore.server.power_loss import JournalingFileSystem
from kvstore.server.state_machine import Command, KVStateMachine, decode_command, encode_command
from kvstore.server.transport import PeerTransport
from kvstore.trace import NULL_TRACER, TraceEvent, Tracer
from kvstore.types import CasResult, NodeStatus

# How many inbox items the loop feeds to the core before running a Ready cycle:
# large enough to batch a burst of proposals into one fsync, small enough that
# ticks and peer messages are not starved.
MAX_INPUTS_PER_CYCLE = 512

# When a Ready's fsync runs on the event loop instead of in a worker thread
# (see RaftNode._fsync_on_loop): at most this many client writes waiting on a
# leader, and at most this many entries to persist (leader or follower).
QUIET_WAITING_WRITES = 1
QUIET_APPEND_ENTRIES = 1


class NodeLogStorage(LogStorage, Protocol):
    """The durable Raft log as the node uses it: LogStorage plus size and close."""

    def log_bytes(self) -> int:
        """Bytes of log on disk."""
        ...

    def close(self) -> None:
        """Release files."""
        ...


def _durable_log(directory: str, fs: FileSystem) -> NodeLogStorage:
    from kvstore.server.raft_log import DurableRaftLog

    return DurableRaftLog.open(directory, fs=fs)


class _NoSyncStorage:
    """Planted bug ack-before-fsync: every call passes through except ``sync``, which does nothing."""

    def __init__(self, inner: NodeLogStorage) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def sync(self) -> None:
        """Deliberately not durable."""


@dataclass
class _Proposal:
    term: int
    future: asyncio.Future[object]


class RaftNode:
    """One replica: the node loop, the durable log, the state machine and the transport."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        tracer: Tracer = NULL_TRACER,
        storage_factory: Callable[[str], NodeLogStorage] | None = None,
    ) -> None:
        self.config = config
        self.fs: FileSystem = OSFileSystem()
        if config.testing.power_loss_journal:
            self.fs = JournalingFileSystem(OSFileSystem(), config.node.data_dir)
        self.planted_bug = config.testing.planted_bug
        plant_engine_bug(self.planted_bug)
        self._storage_factory = storage_factory or (lambda d: _durable_log(d, self.fs))
        self.id = config.node.id
        self.tracer = tracer
        self.addresses = {p.id: p.address for p in config.peers} | {self.id: config.node.listen}
        data = config.node.data_dir
        self.raft_dir = os.path.join(data, "raft")
        self.engine_dir = os.path.join(data, "engine")
        self.snapshots_dir = os.path.join(data, "snapshots")
        self.storage: NodeLogStorage | None = None
        self.sm: KVStateMachine | None = None
        self.core: RaftCore | None = None
        self.transport = PeerTransport(
            self.id,
            {p.id: p.address for p in config.peers},
            deliver=self.deliver,
            snapshot_dir=self.snapshot_path,
            reply_timeout_s=config.raft.election_timeout_ticks * config.raft.tick_ms / 1000,
            request_timeout_s=max(1.0, 4 * config.raft.election_timeout_ticks * config.raft.tick_ms / 1000),
            tracer=tracer,
        )
        self._inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(maxsize=limits.MAX_PENDING_PROPOSALS)
        self._proposals: dict[int, _Proposal] = {}
        self._reads: dict[bytes, asyncio.Future[None]] = {}
        self._confirmed_reads: list[tuple[ReadState, asyncio.Future[None]]] = []
        self._read_seq = 0
        self._durable_hard_state = HardState()
        self.tick_scale = 1.0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.failure: BaseException | None = None
        self.stopped = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open storage and state machine, build the core, start the loop, ticker and transport."""
        loop = asyncio.get_running_loop()
        os.makedirs(self.snapshots_dir, exist_ok=True)
        storage = await loop.run_in_executor(None, self._storage_factory, self.raft_dir)
        if self.planted_bug == "ack-before-fsync":
            storage = _NoSyncStorage(storage)
        self.storage = storage
        restore = await loop.run_in_executor(None, storage.load)
        engine_options = self.config.storage.engine_options()  # [storage] level shape (jepsen: small levels)
        self.sm = await loop.run_in_executor(
            None, lambda: KVStateMachine.open(self.engine_dir, fs=self.fs, **engine_options)
        )
        self.sm.dedup = self.planted_bug != "no-dedup"
        if restore.snapshot is not None and self.sm.applied_index < restore.snapshot.meta.index:
            await loop.run_in_executor(None, self.sm.restore_from, self.snapshot_path(restore.snapshot.data))
        from dataclasses import replace

        # The engine may have applied entries past the durable commit index (the commit
        # index alone is not fsynced; see persist_ready_lazily). Entries are durable
        # before they are applied, and only committed entries are applied, so what
        # the engine applied is known committed.
        hs = restore.hard_state
        if self.sm.applied_index > hs.commit_index:
            hs = replace(hs, commit_index=self.sm.applied_index)
        restore = replace(restore, applied_index=self.sm.applied_index, hard_state=hs)
        self._durable_hard_state = restore.hard_state
        rc = self.config.raft
        self.core = core_class(self.planted_bug)(
            self.id,
            peers=[self.id, *(p.id for p in self.config.peers)],
            rng=random.Random(int.from_bytes(os.urandom(8), "big")),
            config=RaftConfig(
                election_timeout_ticks=rc.election_timeout_ticks,
                heartbeat_interval_ticks=rc.heartbeat_ticks,
                pre_vote=rc.pre_vote,
                check_quorum=rc.check_quorum,
            ),
            restore=restore,
            tracer=self.tracer,
            clock=time.time,
        )
        self.transport.start()
        self._tasks = [loop.create_task(self._node_loop()), loop.create_task(self._ticker())]

    async def stop(self, grace_s: float) -> None:
        """Refuse new work, let accepted proposals finish (up to ``grace_s``), then close everything."""
        self._stopping = True
        deadline = asyncio.get_running_loop().time() + grace_s
        while self._proposals and asyncio.get_running_loop().time() < deadline and self.failure is None:
            await asyncio.sleep(0.01)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for p in self._proposals.values():
            if not p.future.done():
                p.future.set_exception(errors.OutcomeUnknown("the node shut down before the write was known"))
        for f in self._reads.values():
            if not f.done():
                f.set_exception(errors.ShuttingDown("the node shut down"))
        await self.transport.close()
        loop = asyncio.get_running_loop()
        if self.storage is not None:
            await loop.run_in_executor(None, self.storage.close)
        if self.sm is not None:
            await loop.run_in_executor(None, self.sm.close)
        if isinstance(self.fs, JournalingFileSystem):
            self.fs.close()
        self.stopped.set()

    # ------------------------------------------------------------------ inputs

    def deliver(self, msg: Message) -> None:
        """A message from a peer (called by the transport)."""
        self._offer(("msg", msg))

    def _offer(self, item: tuple[Any, ...]) -> bool:
        if self._stopping:
            return False
        try:
            self._inbox.put_nowait(item)
            return True
        except asyncio.QueueFull:
            return False

    async def propose(self, cmd: Command, *, timeout_s: float | None = None) -> object:
        """Replicate and apply one command; return its result.

        Raises:
            NotLeaderError: with the leader's *address* as hint.
            Unavailable / ShuttingDown: refused (definite).
            OutcomeUnknown: leadership was lost and it is not known whether it applied.
            TimeoutError: no outcome within ``timeout_s`` (the command may still apply).
        """
        self._check_serving()
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if not self._offer(("propose", encode_command(cmd), fut)):
            raise errors.Unavailable("node is overloaded: too many pending requests")
        result = await _bounded(fut, timeout_s)
        if isinstance(result, errors.KVError):
            raise result
        return result

    async def linearizable_read(self, *, timeout_s: float | None = None) -> None:
        """Return once a read may be served linearizably from the local state machine (ReadIndex).

        Raises:
            NotLeaderError, Unavailable, ShuttingDown: as for :meth:`propose`.
            TimeoutError: leadership was not confirmed within ``timeout_s``.
        """
        self._check_serving()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._read_seq += 1
        if not self._offer(("read", self._read_seq.to_bytes(8, "big"), fut)):
            raise errors.Unavailable("node is overloaded: too many pending requests")
        await _bounded(fut, timeout_s)

    def _check_serving(self) -> None:
        if self.failure is not None:
            raise errors.Unavailable(f"node has failed: {self.failure}")
        if self._stopping:
            raise errors.ShuttingDown("node is shutting down; not accepting new requests")

    def _not_leader(self) -> errors.NotLeaderError:
        leader = self.core.leader_id if self.core else None
        return errors.NotLeaderError(self.addresses.get(leader or "", ""))

    # ------------------------------------------------------------------ the loop

    async def _ticker(self) -> None:
        while True:
            # tick_scale is the clock-skew seam (InjectFaults, testing only): > 1 slows this node's clock.
            await asyncio.sleep(self.config.raft.tick_ms / 1000 * self.tick_scale)
            self._offer(("tick",))

    async def _node_loop(self) -> None:
        try:
            while True:
                item = await self._inbox.get()
                self._handle(item)
                for _ in range(MAX_INPUTS_PER_CYCLE):
                    if self._inbox.empty():
                        break
                    self._handle(self._inbox.get_nowait())
                core, _, _ = self._parts()
                while core.has_ready():
                    await self._ready_cycle(core.ready())
                await self._maybe_snapshot()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # storage failure or a broken invariant: stop serving, loudly
            self.failure = exc
            self._trace("node_failed", error=repr(exc))
            self._fail_waiters(errors.OutcomeUnknown(f"node failed: {exc}"))
            self.stopped.set()
            raise

    def _parts(self) -> tuple[RaftCore, KVStateMachine, NodeLogStorage]:
        """The core, state machine and log; only valid after :meth:`start`."""
        core, sm, storage = self.core, self.sm, self.storage
        if core is None or sm is None or storage is None:
            invariant_failed("the node loop runs only after start() built the core, state machine and log")
        return core, sm, storage

    def _handle(self, item: tuple[Any, ...]) -> None:
        core, _, _ = self._parts()
        kind = item[0]
        if kind == "tick":
            core.tick()
        elif kind == "msg":
            try:
                core.step(item[1])
            except InvariantViolation:
                raise
            except Exception as exc:  # a malformed message from a peer must not crash the node
                self._trace("bad_peer_message", error=repr(exc))
        elif kind == "propose":
            _, data, fut = item
            if fut.done():
                return  # the client gave up (timeout) while this waited in the inbox
            try:
                index = core.propose(data)
            except errors.NotLeaderError:
                fut.set_exception(self._not_leader())
            except errors.KVError as exc:
                fut.set_exception(exc)
            else:
                if self.planted_bug == "ack-before-commit":
                    fut.set_result(self._optimistic_result(data))
                    return
                self._proposals[index] = _Proposal(core.term, fut)
        elif kind == "read":
            _, ctx, fut = item
            if fut.done():
                return
            try:
                core.read_index(ctx)
            except errors.NotLeaderError:
                fut.set_exception(self._not_leader())
            else:
                self._reads[ctx] = fut

    def _optimistic_result(self, data: bytes) -> object:
        """Planted bug ack-before-commit: answer from local state as if the command had applied."""
        _, sm, _ = self._parts()
        cmd = decode_command(data)
        current = sm.get(cmd.key)
        if cmd.op == "put":
            return current
        if cmd.op == "del":
            return current is not None
        return CasResult(current == cmd.expected, current)

    async def _ready_cycle(self, rd: Ready) -> None:
        """Persist, send, apply and answer one Ready; then ``advance``.

        Only a Ready that must be *fsynced* (new entries, a new term or vote)
        waits for the disk; everything else is done inline: a
        commit-index-only hard state is written without an fsync, and
        applying is an engine write without an fsync (the Raft log is the
        write-ahead log). A Ready that must be fsynced takes one of two paths:

        * **busy** (many client writes waiting on the leader, or a large
          append on a follower): the fsync runs in a worker thread while the
          loop applies the committed entries (already durable: ready() only
          hands out entries up to the stable index), answers their clients,
          and keeps reading requests, which the next cycle takes all at once;
        * **quiet** (see :meth:`_fsync_on_loop`): the fsync runs on the loop,
          after the leader's appends or before the follower's
          acknowledgement have gone out, then the entries are applied.

        A snapshot takes the slow path (:meth:`_snapshot_cycle`).
        """
        core, sm, storage = self._parts()
        if rd.snapshot is not None:
            await self._snapshot_cycle(rd)
            return
        # A leader may send its appends before its own fsync (Raft paper §10.2.1): it
        # counts itself towards a commit only after advance(), i.e. once durable. Every
        # other message (votes, acknowledgements) must wait for the fsync.
        early = core.role == Role.LEADER
        if early:
            for m in rd.messages:
                self.transport.send(m)
        durable = self._durable_hard_state
        if needs_fsync(rd, durable) and self._fsync_on_loop(rd, leader=early):
            if early:
                await asyncio.sleep(0)  # the peer senders write the appends before the loop blocks in fsync
            self._durable_hard_state = persist_ready_lazily(storage, rd, durable)
            if not early:
                for m in rd.messages:
                    self.transport.send(m)
                await asyncio.sleep(0)  # the acknowledgement goes out first: a follower's apply answers no one
            self._answer(rd, sm.apply_batch(rd.committed_entries))
            self._finish_cycle(rd)
            return
        syncing: asyncio.Future[HardState] | None = None
        if needs_fsync(rd, durable):
            syncing = asyncio.get_running_loop().run_in_executor(None, persist_ready_lazily, storage, rd, durable)
        elif rd.hard_state is not None:
            self._durable_hard_state = persist_ready_lazily(storage, rd, durable)  # a write, no fsync
        results = sm.apply_batch(rd.committed_entries)
        self._answer(rd, results)
        if syncing is not None:
            self._durable_hard_state = await syncing
        if not early:
            for m in rd.messages:
                self.transport.send(m)
        self._finish_cycle(rd)

    def _fsync_on_loop(self, rd: Ready, *, leader: bool) -> bool:
        """Whether this Ready's fsync should run on the event loop rather than in a worker thread.

        On the loop when the node is quiet: the Ready persists at most
        ``QUIET_APPEND_ENTRIES`` entries and, on a leader, at most
        ``QUIET_WAITING_WRITES`` client writes are waiting. Then
        nothing would arrive meanwhile to batch with, and the hand-off to a
        thread and back, plus the thread's contention for the interpreter
        lock, costs more than the loop saves by waiting elsewhere (measured at
        one client: p50 -15 to -25 %, server CPU per put -20 %). Under load a
        blocked loop stops reading requests and the cycles shrink (measured
        at 64 clients: CPU per put doubled), hence the thread.
        """
        if len(rd.entries) > QUIET_APPEND_ENTRIES:
            return False
        return not leader or len(self._proposals) <= QUIET_WAITING_WRITES

    async def _snapshot_cycle(self, rd: Ready) -> None:
        """A Ready carrying a snapshot: persist (fsync), send, install, apply, in a worker thread."""
        core, sm, storage = self._parts()
        loop = asyncio.get_running_loop()
        snap = rd.snapshot
        if snap is None:
            invariant_failed("_snapshot_cycle handles a Ready with a snapshot")
        snapshot_dir = self.snapshot_path(snap.data)
        early = core.role == Role.LEADER
        if early:
            for m in rd.messages:
                self.transport.send(m)
        durable = self._durable_hard_state

        def persist() -> None:
            self._durable_hard_state = persist_ready_lazily(storage, rd, durable)

        def install_and_apply() -> list[object]:
            sm.restore_from(snapshot_dir)
            if sm.applied_index != snap.meta.index:
                raise errors.CorruptionError(
                    snapshot_dir, -1, f"snapshot says index {snap.meta.index} but its data is at {sm.applied_index}"
                )
            return sm.apply_batch(rd.committed_entries)

        await loop.run_in_executor(None, persist)
        if not early:
            for m in rd.messages:
                self.transport.send(m)
        results = await loop.run_in_executor(None, install_and_apply)
        self._answer(rd, results)
        self._finish_cycle(rd)

    def _answer(self, rd: Ready, results: list[object]) -> None:
        """Answer the clients whose proposals were applied (or overwritten by another leader)."""
        for entry, result in zip(rd.committed_entries, results, strict=True):
            waiter = self._proposals.pop(entry.index, None)
            if waiter is None or waiter.future.done():
                continue
            if waiter.term == entry.term:
                waiter.future.set_result(result)
            else:
                waiter.future.set_exception(
                    errors.Unavailable("leadership changed before the write committed; it was not applied")
                )

    def _finish_cycle(self, rd: Ready) -> None:
        """Route confirmed and rejected reads, release the servable ones, ``advance``."""
        core, sm, _ = self._parts()
        for rs in rd.read_states:
            fut = self._reads.pop(rs.context, None)
            if fut is not None:
                self._confirmed_reads.append((rs, fut))
        for ctx in rd.rejected_reads:
            fut = self._reads.pop(ctx, None)
            if fut is not None and not fut.done():
                fut.set_exception(self._not_leader())
        self._release_reads(sm.applied_index)
        core.advance(rd)
        if core.role != Role.LEADER:
            self._fail_reads_on_step_down()

    def _release_reads(self, applied: int) -> None:
        still: list[tuple[ReadState, asyncio.Future[None]]] = []
        for rs, fut in self._confirmed_reads:
            if rs.index <= applied:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((rs, fut))
        self._confirmed_reads = still

    def _fail_reads_on_step_down(self) -> None:
        for _, fut in self._confirmed_reads:
            if not fut.done():
                fut.set_exception(self._not_leader())
        self._confirmed_reads = []

    def _fail_waiters(self, exc: errors.KVError) -> None:
        while not self._inbox.empty():  # requests that were still queued
            item = self._inbox.get_nowait()
            if item[0] in ("propose", "read") and not item[-1].done():
                item[-1].set_exception(exc)
        for p in self._proposals.values():
            if not p.future.done():
                p.future.set_exception(exc)
        for f in self._reads.values():
            if not f.done():
                f.set_exception(exc)

    # ------------------------------------------------------------------ snapshots

    def snapshot_path(self, token: bytes) -> str:
        """The folder holding the files of the snapshot named by ``token``."""
        name = token.decode("ascii", errors="replace")
        if not name or "/" in name or name.startswith("."):
            raise errors.CorruptionError(self.snapshots_dir, -1, f"bad snapshot token {token!r}")
        return os.path.join(self.snapshots_dir, name)

    def incoming_snapshot_path(self, index: int, term: int) -> str:
        """Where a snapshot received from the leader is unpacked."""
        return self.snapshot_path(_token(index, term))

    async def _maybe_snapshot(self) -> None:
        core, sm, storage = self._parts()
        threshold = self.config.raft.snapshot_threshold_entries
        applied = core.log.applied_index
        if applied - core.log.snapshot_index < threshold or core.has_ready():
            return
        term = core.log.term(applied)
        if term is None:
            return
        token = _token(applied, term)
        path = self.snapshot_path(token)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _fresh_checkpoint, sm, path)
        snap = core.compact(index=applied, data=token)

        def persist() -> None:
            storage.save_snapshot(snap)
            storage.sync()

        await loop.run_in_executor(None, persist)
        await loop.run_in_executor(None, _prune_snapshots, self.snapshots_dir, token.decode())
        self._trace("snapshot_taken", index=applied, term=term)

    # ------------------------------------------------------------------ status

    def status_fields(self) -> dict[str, Any]:
        """Role, term, leader, indexes and sizes for the Status RPC."""
        core, sm, storage = self.core, self.sm, self.storage
        if core is None or sm is None or storage is None:
            return {"role": "starting"}
        stats = sm.engine.stats()
        return {
            "role": core.role.value,
            "term": core.term,
            "leader_id": core.leader_id or "",
            "commit_index": core.commit_index,
            "applied_index": sm.applied_index,
            "log_bytes": storage.log_bytes(),
            "keys": sm.key_count_estimate(),
            "disk_bytes": _folder_bytes(self.engine_dir),
            "level_files": [lv.files for lv in stats.levels],
            "engine": "lsm",
        }

    def _trace(self, event: str, **fields: Any) -> None:
        core = self.core
        self.tracer.emit(
            TraceEvent(time.time(), self.id, core.term if core else 0, core.role.value if core else "", event, fields)
        )


T = TypeVar("T")


async def _bounded(fut: asyncio.Future[T], timeout_s: float | None) -> T:
    """Await ``fut``, failing it with TimeoutError after ``timeout_s``.

    Cheaper than ``asyncio.wait_for`` (which wraps the wait in a new task, one
    per request): one timer handle, cancelled when the future is done.
    """
    if timeout_s is None:
        return await fut
    handle = asyncio.get_running_loop().call_later(timeout_s, _expire, fut)
    try:
        return await fut
    finally:
        handle.cancel()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


def needs_fsync(rd: Ready, durable: HardState) -> bool:
    """Whether persisting ``rd`` needs an fsync: new entries, a snapshot, or a new term or vote.

    ``durable`` is the hard state last made durable. A higher commit index
    alone does not (see :func:`persist_ready_lazily`).
    """
    hs = rd.hard_state
    term_or_vote_changed = hs is not None and (hs.term, hs.voted_for) != (durable.term, durable.voted_for)
    return rd.snapshot is not None or bool(rd.entries) or term_or_vote_changed


def persist_ready_lazily(storage: LogStorage, rd: Ready, durable: HardState) -> HardState:
    """Persist ``rd`` like :func:`kvstore.raft.storage.persist_ready`, but skip the fsync when
    the only change is a higher commit index; return the hard state now known durable.

    The commit index need not survive a crash (a restarted node learns it again
    from the leader, and never acts on it before), so etcd's rule applies: an
    fsync is needed for entries, a snapshot, or a new term or vote. The
    unsynced hard-state record becomes durable with the next fsync.
    """
    if rd.snapshot is not None:
        storage.save_snapshot(rd.snapshot)
    if rd.entries:
        storage.append(rd.entries)
    hs = rd.hard_state
    if hs is not None:
        storage.set_hard_state(hs)
    if needs_fsync(rd, durable):
        storage.sync()
        return hs if hs is not None else durable
    return durable


def _folder_bytes(folder: str) -> int:
    """Bytes of the regular files directly in ``folder`` (the engine's tables, WAL and manifest)."""
    try:
        return sum(e.stat().st_size for e in os.scandir(folder) if e.is_file())
    except OSError:
        return 0


def _token(index: int, term: int) -> bytes:
    return f"snap-{index:020d}-{term}".encode()


def _fresh_checkpoint(sm: KVStateMachine, path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    sm.checkpoint(path)


def _prune_snapshots(directory: str, keep: str) -> None:
    """Remove the snapshot folders older than ``keep``.

    Names sort by index (``snap-<index:020d>-<term>``), so "older" is "sorts
    before". A newer folder is a snapshot received from the leader that the
    node loop has not installed yet, and a ``.partial`` one a download in
    progress: both are left alone.
    """
    for name in os.listdir(directory):
        if name.startswith("snap-") and ".partial" not in name and name < keep:
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


class ReplicatedBackend:
    """The :class:`~kvstore.server.service.KVBackend` of a Raft node.

    Writes become commands proposed to Raft; reads confirm leadership with
    ReadIndex first (unless ``stale``). Every wait is bounded by
    ``request_timeout_s``; past it the outcome of a write is unknown.
    """

    def __init__(self, node: RaftNode, *, request_timeout_s: float = 10.0) -> None:
        self.node = node
        self.request_timeout_s = request_timeout_s

    async def _write(self, cmd: Command) -> object:
        try:
            return await self.node.propose(cmd, timeout_s=self.request_timeout_s)
        except TimeoutError:
            raise errors.OutcomeUnknown("the write did not commit in time; it may or may not have happened") from None

    async def _confirm_read(self, stale: bool) -> KVStateMachine:
        bug = self.node.planted_bug
        if bug == "stale-local-reads" and self.node.core is not None and self.node.core.role != Role.LEADER:
            raise self.node._not_leader()
        if not stale and bug not in ("stale-local-reads", "follower-reads"):
            try:
                await self.node.linearizable_read(timeout_s=self.request_timeout_s)
            except TimeoutError:
                raise errors.Unavailable("could not confirm leadership in time (no quorum?)") from None
        sm = self.node.sm
        if sm is None:
            raise errors.Unavailable("node is starting")
        return sm

    async def put(self, key: bytes, value: bytes, *, client_id: int, seq: int) -> bytes | None:
        """Replicate a put; return the previous value."""
        result = await self._write(Command("put", key, value, None, client_id, seq))
        return result if isinstance(result, bytes) else None

    async def get(self, key: bytes, *, stale: bool) -> bytes | None:
        """Read after ReadIndex (or locally if ``stale``)."""
        sm = await self._confirm_read(stale)
        return sm.get(key)

    async def delete(self, key: bytes, *, client_id: int, seq: int) -> bool:
        """Replicate a delete; return whether the key existed."""
        return bool(await self._write(Command("del", key, None, None, client_id, seq)))

    async def cas(self, key: bytes, expected: bytes | None, value: bytes, *, client_id: int, seq: int) -> CasResult:
        """Replicate a compare-and-set."""
        result = await self._write(Command("cas", key, value, expected, client_id, seq))
        if not isinstance(result, CasResult):
            raise errors.OutcomeUnknown(f"unexpected result {result!r}")
        return result

    async def scan(
        self, start: bytes | None, end: bytes | None, *, reverse: bool, limit: int, stale: bool
    ) -> list[tuple[bytes, bytes]]:
        """Read a range after ReadIndex (or locally if ``stale``)."""
        sm = await self._confirm_read(stale)
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: sm.scan(start, end, reverse=reverse, limit=limit)
        )

    def status(self) -> NodeStatus:
        """The node's Raft and storage figures."""
        cfg = self.node.config.node
        return NodeStatus(node_id=cfg.id, shard=cfg.shard, **self.node.status_fields())
