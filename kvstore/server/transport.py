"""The peer transport: Raft messages between the nodes of a shard, over gRPC.

Theory of operation. The Raft core speaks in one-way messages (a request
now, the matching response later, as a separate message). gRPC speaks in
calls with replies. The transport maps one onto the other:

* **One stream per peer.** Every Raft message to a peer, request or
  response, goes into a bounded queue for that peer. A sender task per peer
  keeps one long-lived client stream (``Raft.Stream``) open and writes
  everything queued since its last write as one :class:`MessageBatch`; while
  a write is in progress the queue fills, so batches grow with load. Before
  writing, consecutive AppendEntries that continue each other are merged into
  one (see :func:`coalesce`), so the follower appends, fsyncs and answers
  once for the lot. The receiver hands each message of a batch to its core;
  the core's responses travel back on the receiver's own stream to the
  sender. So the transport is one-way, like the Raft core's messages, and a
  lost message is only ever a lost message: a broken stream is reopened with
  backoff (``STREAM_BACKOFF_*``) and what was queued meanwhile is dropped,
  which Raft treats as message loss and retries. Measured on loopback
  (2-core machine, grpc.aio + uvloop): a unary call costs ~550 us of CPU
  (both ends) per message, a stream write ~110 us, less per message when a
  write carries several.
* **Unary calls** (AppendEntries, RequestVote, TimeoutNow) are still served,
  for tools and tests that want a reply per call: the handler hands the
  request to the core and waits (briefly) in a *reply slot* for the response
  the core emits to that peer. A response goes to a waiting slot if there is
  one, else onto the stream.
* **Snapshots** stream as chunks of ``SNAPSHOT_CHUNK_BYTES`` with a CRC-32 per
  chunk. The payload is an *archive* of the snapshot's files::

      archive := file*
      file    := name_len:u16be name:utf8 size:u64be bytes[size]

* **Faults.** Every message crosses :class:`FaultSeam` in both directions, so a
  test or the fault harness can cut this node off from chosen peers, drop a
  fraction of messages, or delay them; it counts what it dropped, so a test
  can prove the fault happened. Refused unless the config allows it.

Nothing here blocks the event loop, and every queue and wait is bounded.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import shutil
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from kvstore import limits
from kvstore.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Configuration,
    Entry,
    EntryType,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)
from kvstore.trace import NULL_TRACER, TraceEvent, Tracer
from kvstore.wire import GRPC_MESSAGE_OPTIONS, raft_pb2, raft_pb2_grpc

GRPC_OPTIONS = GRPC_MESSAGE_OPTIONS

Deliver = Callable[[Message], None]

# After a peer's stream breaks, wait this long before reopening it, doubling
# up to the maximum while it keeps failing: a dead peer costs a few attempts a
# second, and a restarted one is reached again within half a second (well
# inside an election timeout).
STREAM_BACKOFF_MIN_S = 0.02
STREAM_BACKOFF_MAX_S = 0.5

# ---------------------------------------------------------------------------
# Conversions between the core's dataclasses and the wire messages.
# ---------------------------------------------------------------------------


def entry_to_proto(e: Entry) -> raft_pb2.Entry:
    """One log entry on the wire."""
    return raft_pb2.Entry(term=e.term, index=e.index, type=int(e.type), data=e.data)  # type: ignore[arg-type]


def entry_from_proto(e: raft_pb2.Entry) -> Entry:
    """One log entry off the wire (unknown entry types are refused)."""
    return Entry(e.term, e.index, EntryType(e.type), e.data)


def append_to_proto(m: AppendEntries) -> raft_pb2.AppendEntriesRequest:
    """AppendEntries request."""
    return raft_pb2.AppendEntriesRequest(
        term=m.term,
        leader_id=m.leader_id,
        to=m.to,
        prev_log_index=m.prev_log_index,
        prev_log_term=m.prev_log_term,
        entries=[entry_to_proto(e) for e in m.entries],
        leader_commit=m.leader_commit,
        read_context=m.read_context,
    )


def append_from_proto(p: raft_pb2.AppendEntriesRequest) -> AppendEntries:
    """AppendEntries request."""
    return AppendEntries(
        term=p.term,
        leader_id=p.leader_id,
        to=p.to,
        prev_log_index=p.prev_log_index,
        prev_log_term=p.prev_log_term,
        entries=tuple(entry_from_proto(e) for e in p.entries),
        leader_commit=p.leader_commit,
        read_context=p.read_context,
    )


def append_response_to_proto(m: AppendEntriesResponse) -> raft_pb2.AppendEntriesResponse:
    """AppendEntries reply."""
    return raft_pb2.AppendEntriesResponse(
        term=m.term,
        success=m.success,
        match_index=m.match_index,
        conflict_term=m.conflict_term,
        conflict_index=m.conflict_index,
        read_context=m.read_context,
        **{"from": m.from_},
    )


def append_response_from_proto(p: raft_pb2.AppendEntriesResponse, to: str) -> AppendEntriesResponse:
    """AppendEntries reply, addressed to ``to`` (the caller)."""
    return AppendEntriesResponse(
        term=p.term,
        from_=getattr(p, "from"),
        to=to,
        success=p.success,
        match_index=p.match_index,
        conflict_term=p.conflict_term,
        conflict_index=p.conflict_index,
        read_context=p.read_context,
    )


def vote_to_proto(m: RequestVote) -> raft_pb2.RequestVoteRequest:
    """RequestVote request."""
    return raft_pb2.RequestVoteRequest(
        term=m.term,
        candidate_id=m.candidate_id,
        to=m.to,
        last_log_index=m.last_log_index,
        last_log_term=m.last_log_term,
        pre_vote=m.pre_vote,
        transfer=m.transfer,
    )


def vote_from_proto(p: raft_pb2.RequestVoteRequest) -> RequestVote:
    """RequestVote request."""
    return RequestVote(p.term, p.candidate_id, p.to, p.last_log_index, p.last_log_term, p.pre_vote, p.transfer)


def vote_response_to_proto(m: RequestVoteResponse) -> raft_pb2.RequestVoteResponse:
    """RequestVote reply."""
    return raft_pb2.RequestVoteResponse(term=m.term, granted=m.granted, pre_vote=m.pre_vote, **{"from": m.from_})


def vote_response_from_proto(p: raft_pb2.RequestVoteResponse, to: str) -> RequestVoteResponse:
    """RequestVote reply, addressed to ``to``."""
    return RequestVoteResponse(p.term, getattr(p, "from"), to, p.granted, p.pre_vote)


def coalesce(msgs: list[Message], *, max_bytes: int = limits.MAX_APPEND_BYTES) -> list[Message]:
    """Merge consecutive AppendEntries that continue each other into one; keep everything else.

    Two appends merge when they are of the same term, leader and receiver,
    both carry entries and no read context, and the second starts right after
    the first's last entry (its ``prev_log_index``/``prev_log_term`` name that
    entry). The merged append is what the leader would have sent had the
    entries been proposed together: the first's ``prev``, all the entries,
    the higher ``leader_commit``. Entries beyond ``max_bytes`` start a new
    append. Order is otherwise preserved.

    Complexity: O(total entries).
    """
    out: list[Message] = []
    pending: list[Entry] = []  # entries of out[-1] when it is a mergeable append
    size = 0
    for m in msgs:
        last = out[-1] if out else None
        if (
            pending
            and isinstance(m, AppendEntries)
            and isinstance(last, AppendEntries)
            and m.entries
            and not m.read_context
            and m.term == last.term
            and m.to == last.to
            and m.leader_id == last.leader_id
            and m.prev_log_index == pending[-1].index
            and m.prev_log_term == pending[-1].term
        ):
            extra = sum(len(e.data) for e in m.entries)
            if size + extra <= max_bytes:
                pending.extend(m.entries)
                size += extra
                out[-1] = AppendEntries(
                    last.term, last.leader_id, last.to, last.prev_log_index, last.prev_log_term,
                    tuple(pending), max(last.leader_commit, m.leader_commit),
                )  # fmt: skip
                continue
        out.append(m)
        if isinstance(m, AppendEntries) and m.entries and not m.read_context:
            pending = list(m.entries)
            size = sum(len(e.data) for e in m.entries)
        else:
            pending = []
    return out


def fill_batch(batch: raft_pb2.MessageBatch, msgs: list[Message]) -> list[Message]:
    """Add every message that has a stream form to ``batch``; return the others (snapshots).

    Fields are set in place (no intermediate message objects to copy).
    """
    rest: list[Message] = []
    for m in msgs:
        if isinstance(m, AppendEntries):
            a = batch.messages.add().append
            a.term, a.leader_id, a.to = m.term, m.leader_id, m.to
            a.prev_log_index, a.prev_log_term, a.leader_commit = m.prev_log_index, m.prev_log_term, m.leader_commit
            if m.read_context:
                a.read_context = m.read_context
            add = a.entries.add
            for e in m.entries:
                add(term=e.term, index=e.index, type=e.type.value, data=e.data)
        elif isinstance(m, AppendEntriesResponse):
            r = batch.messages.add().append_response
            r.term, r.success, r.match_index = m.term, m.success, m.match_index
            r.conflict_term, r.conflict_index = m.conflict_term, m.conflict_index
            if m.read_context:
                r.read_context = m.read_context
            setattr(r, "from", m.from_)
        elif isinstance(m, RequestVote):
            batch.messages.add().vote.CopyFrom(vote_to_proto(m))
        elif isinstance(m, RequestVoteResponse):
            batch.messages.add().vote_response.CopyFrom(vote_response_to_proto(m))
        elif isinstance(m, TimeoutNow):
            t = batch.messages.add().timeout_now
            t.term, t.leader_id, t.to = m.term, m.leader_id, m.to
        else:
            rest.append(m)
    return rest


def batch_messages(batch: raft_pb2.MessageBatch) -> tuple[list[Message], int]:
    """The messages of a received batch, in order, and how many were malformed (skipped).

    Responses are addressed to ``batch.to`` (they carry no receiver on the wire).
    """
    out: list[Message] = []
    bad = 0
    to = batch.to
    for rm in batch.messages:
        kind = rm.WhichOneof("body")
        try:
            if kind == "append":
                out.append(append_from_proto(rm.append))
            elif kind == "append_response":
                out.append(append_response_from_proto(rm.append_response, to))
            elif kind == "vote":
                out.append(vote_from_proto(rm.vote))
            elif kind == "vote_response":
                out.append(vote_response_from_proto(rm.vote_response, to))
            elif kind == "timeout_now":
                t = rm.timeout_now
                out.append(TimeoutNow(t.term, t.leader_id, t.to))
            else:
                bad += 1
        except ValueError:  # an unknown entry type
            bad += 1
    return out, bad


# ---------------------------------------------------------------------------
# Snapshot archives.
# ---------------------------------------------------------------------------

_NAME_LEN = struct.Struct(">H")
_SIZE = struct.Struct(">Q")


def archive_chunks(directory: str, *, chunk_bytes: int = limits.SNAPSHOT_CHUNK_BYTES) -> Iterator[bytes]:
    """The archive of every file in ``directory`` (sorted by name), cut into chunks."""
    buf = bytearray()
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        raw = name.encode()
        buf += _NAME_LEN.pack(len(raw)) + raw + _SIZE.pack(os.path.getsize(path))
        with open(path, "rb") as fh:
            while block := fh.read(chunk_bytes):
                buf += block
                while len(buf) >= chunk_bytes:
                    yield bytes(buf[:chunk_bytes])
                    del buf[:chunk_bytes]
    yield bytes(buf)


def unpack_archive(data: bytes, directory: str) -> list[str]:
    """Write the files of an archive into ``directory`` (fsynced); return their names.

    Raises:
        ValueError: the archive is malformed (truncated, bad name).
    """
    os.makedirs(directory, exist_ok=True)
    names: list[str] = []
    pos = 0
    while pos < len(data):
        if pos + _NAME_LEN.size > len(data):
            raise ValueError("truncated archive header")
        (name_len,) = _NAME_LEN.unpack_from(data, pos)
        pos += _NAME_LEN.size
        if pos + name_len + _SIZE.size > len(data):
            raise ValueError("archive ends inside a file header")
        name = data[pos : pos + name_len].decode("utf-8", errors="replace")
        pos += name_len
        if not name or "/" in name or name in (".", "..") or "\ufffd" in name:
            raise ValueError(f"bad file name in archive: {name!r}")
        (size,) = _SIZE.unpack_from(data, pos)
        pos += _SIZE.size
        if pos + size > len(data):
            raise ValueError(f"archive ends inside {name}")
        with open(os.path.join(directory, name), "wb") as fh:
            fh.write(data[pos : pos + size])
            fh.flush()
            os.fsync(fh.fileno())
        pos += size
        names.append(name)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return names


def _unpack_into(data: bytes, directory: str) -> None:
    """Unpack beside ``directory``, then rename into place, so a half-received snapshot is never used.

    Each stream unpacks into its own partial folder, so two deliveries of the
    same snapshot (a leader retrying) cannot mix their files. A folder already in
    place is a complete earlier delivery of the same snapshot (the name is its index
    and term, which fix its contents), and the node loop may be installing from it
    right now: it is kept, never replaced. (Replacing it here once pulled the files
    from under an install, which then found an empty engine: a jepsen-lite run with
    pause and power loss, where a paused follower's first delivery timed out and the
    leader sent the snapshot again.)
    """
    if os.path.isdir(directory):
        return
    partial = f"{directory}.partial-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    shutil.rmtree(partial, ignore_errors=True)
    unpack_archive(data, partial)
    try:
        os.rename(partial, directory)
    except OSError:
        if not os.path.isdir(directory):
            raise
        shutil.rmtree(partial, ignore_errors=True)  # a concurrent delivery finished first; theirs is whole


# ---------------------------------------------------------------------------
# The fault seam.
# ---------------------------------------------------------------------------


@dataclass
class FaultSeam:
    """What the transport drops or delays (testing only; see the module docstring)."""

    isolate_from: set[str] = field(default_factory=set)
    drop_rate: float = 0.0
    delay_ms: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    dropped: int = 0

    def passes(self, peer: str) -> bool:
        """Whether a message to or from ``peer`` gets through (counts the ones that do not)."""
        if peer in self.isolate_from or (self.drop_rate > 0 and self.rng.random() < self.drop_rate):
            self.dropped += 1
            return False
        return True


# ---------------------------------------------------------------------------
# The transport.
# ---------------------------------------------------------------------------


class PeerTransport:
    """Sends this node's Raft messages to its peers and receives theirs (see the module docstring).

    Args:
        node_id: this node.
        peers: peer id -> "host:port".
        deliver: hands a received message to the local core (must not block).
        snapshot_dir: resolves a snapshot's data (a token) to the folder of its files.
        reply_timeout_s: how long an incoming call waits for the core's response.
    """

    def __init__(
        self,
        node_id: str,
        peers: dict[str, str],
        *,
        deliver: Deliver,
        snapshot_dir: Callable[[bytes], str],
        reply_timeout_s: float,
        request_timeout_s: float,
        tracer: Tracer = NULL_TRACER,
    ) -> None:
        self.node_id = node_id
        self.peers = dict(peers)
        self.deliver = deliver
        self.snapshot_dir = snapshot_dir
        self.reply_timeout_s = reply_timeout_s
        self.request_timeout_s = request_timeout_s
        self.faults = FaultSeam()
        self._tracer = tracer
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, raft_pb2_grpc.RaftAsyncStub] = {}
        self._queues: dict[str, asyncio.Queue[tuple[float, Message]]] = {}
        self._streams: dict[str, grpc.aio.StreamUnaryCall[raft_pb2.MessageBatch, raft_pb2.StreamSummary]] = {}
        self._senders: list[asyncio.Task[None]] = []
        self._calls_in_flight: dict[str, int] = collections.Counter()
        self._slots: dict[tuple[str, str], collections.deque[asyncio.Future[Message]]] = collections.defaultdict(
            collections.deque
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sent = 0
        self.queue_full_drops = 0
        self.stream_failures = 0
        self.malformed_received = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Create channels, queues and one sender task per peer (call inside the event loop)."""
        for peer, address in self.peers.items():
            self._channels[peer] = grpc.aio.insecure_channel(address, options=GRPC_OPTIONS)
            self._stubs[peer] = raft_pb2_grpc.RaftStub(self._channels[peer])  # an async stub on an aio channel
            self._queues[peer] = asyncio.Queue(maxsize=limits.MAX_PEER_QUEUE_MESSAGES)
            self._senders.append(asyncio.get_running_loop().create_task(self._sender(peer)))

    async def close(self) -> None:
        """Stop sending, end the streams, fail waiting calls, close channels."""
        for t in [*self._senders, *self._tasks]:
            t.cancel()
        await asyncio.gather(*self._senders, *self._tasks, return_exceptions=True)
        for call in self._streams.values():
            call.cancel()
        self._streams.clear()
        for slots in self._slots.values():
            for fut in slots:
                if not fut.done():
                    fut.cancel()
        for ch in self._channels.values():
            await ch.close(None)

    # ------------------------------------------------------------ outgoing

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for its peer's stream, or hand a response to the unary call waiting for it."""
        if isinstance(msg, InstallSnapshotResponse):
            self._reply(msg)
            return
        if isinstance(msg, (AppendEntriesResponse, RequestVoteResponse)) and self._reply(msg):
            return
        queue = self._queues.get(msg.to)
        if queue is None:
            return  # not a peer we know (a removed member): nothing to do
        try:
            queue.put_nowait((time.monotonic(), msg))
        except asyncio.QueueFull:
            self.queue_full_drops += 1  # Raft will resend; never block the node loop

    def _reply(self, msg: AppendEntriesResponse | RequestVoteResponse | InstallSnapshotResponse) -> bool:
        """Answer a unary call waiting for ``msg``; return whether one was waiting."""
        slots = self._slots.get((msg.to, _kind(msg)))
        while slots:
            fut = slots.popleft()
            if not fut.done():
                fut.set_result(msg)
                return True
        return False

    async def _sender(self, peer: str) -> None:
        """Write everything queued for ``peer`` as one batch on its stream; reopen a broken stream."""
        queue = self._queues[peer]
        backoff = STREAM_BACKOFF_MIN_S
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            if self.faults.delay_ms:
                wait = items[-1][0] + self.faults.delay_ms / 1000 - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                msgs = coalesce([m for _, m in items if self.faults.passes(peer)])
                batch = raft_pb2.MessageBatch(to=peer)
                setattr(batch, "from", self.node_id)
                for m in fill_batch(batch, msgs):  # snapshots: a call of their own
                    self._start_call(peer, m)
                if batch.messages:
                    await self._write(peer, batch)
                backoff = STREAM_BACKOFF_MIN_S
            except Exception as exc:  # a broken stream (or a bug) loses messages, never the sender task
                self.stream_failures += 1
                if not isinstance(exc, (grpc.RpcError, asyncio.InvalidStateError)):
                    self.trace("peer_send_failed", peer=peer, error=repr(exc))
                call = self._streams.pop(peer, None)
                if call is not None:
                    call.cancel()
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, STREAM_BACKOFF_MAX_S)
                while not queue.empty():  # queued while the peer was unreachable: lost, Raft resends
                    queue.get_nowait()

    async def _write(self, peer: str, batch: raft_pb2.MessageBatch) -> None:
        call = self._streams.get(peer)
        if call is None:
            call = self._stubs[peer].Stream(None)  # written to with call.write
            self._streams[peer] = call
        await call.write(batch)
        self.sent += len(batch.messages)

    def _start_call(self, peer: str, msg: Message) -> None:
        """Send ``msg`` as a unary (or snapshot) call of its own, in the background."""
        if self._calls_in_flight[peer] >= limits.MAX_INFLIGHT_APPENDS:
            self.queue_full_drops += 1  # lost: Raft resends
            return
        self._calls_in_flight[peer] += 1
        task = asyncio.get_running_loop().create_task(self._call(peer, msg))
        self._tasks.add(task)
        task.add_done_callback(self._call_done(peer))

    def _call_done(self, peer: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._calls_in_flight[peer] -= 1

        return done

    async def _call(self, peer: str, msg: Message) -> None:
        """One RPC; deliver its reply; treat any failure as a lost message."""
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        stub = self._stubs[peer]
        reply: Message | None = None
        try:
            if isinstance(msg, AppendEntries):
                r = await stub.AppendEntries(append_to_proto(msg), timeout=self.request_timeout_s)
                reply = append_response_from_proto(r, self.node_id)
            elif isinstance(msg, RequestVote):
                rv = await stub.RequestVote(vote_to_proto(msg), timeout=self.request_timeout_s)
                reply = vote_response_from_proto(rv, self.node_id)
            elif isinstance(msg, TimeoutNow):
                req = raft_pb2.TimeoutNowRequest(term=msg.term, leader_id=msg.leader_id, to=msg.to)
                await stub.TimeoutNow(req, timeout=self.request_timeout_s)
            elif isinstance(msg, InstallSnapshot):
                rs = await stub.InstallSnapshot(self._snapshot_chunks(msg), timeout=max(60.0, self.request_timeout_s))
                reply = InstallSnapshotResponse(rs.term, getattr(rs, "from"), self.node_id, rs.success)
            self.sent += 1
        except grpc.RpcError:
            return  # lost: Raft retries (heartbeats, probes, elections)
        if reply is not None and self.faults.passes(peer):
            self.deliver(reply)

    async def _snapshot_chunks(self, msg: InstallSnapshot) -> AsyncIterator[raft_pb2.InstallSnapshotChunk]:
        meta = msg.snapshot.meta
        directory = self.snapshot_dir(msg.snapshot.data)
        offset = 0
        chunks = archive_chunks(directory)
        while True:
            data = await asyncio.get_running_loop().run_in_executor(None, next, chunks, None)
            if data is None:
                break
            yield raft_pb2.InstallSnapshotChunk(
                term=msg.term,
                leader_id=msg.leader_id,
                last_included_index=meta.index,
                last_included_term=meta.term,
                configuration=meta.configuration.encode() + b"\n" + msg.snapshot.data,
                offset=offset,
                data=data,
                checksum=zlib.crc32(data),
                done=False,
                to=msg.to,
            )
            offset += len(data)
        yield raft_pb2.InstallSnapshotChunk(
            term=msg.term, leader_id=msg.leader_id, to=msg.to, offset=offset, done=True,
            last_included_index=meta.index, last_included_term=meta.term,
            configuration=meta.configuration.encode() + b"\n" + msg.snapshot.data,
        )  # fmt: skip

    # ------------------------------------------------------------ incoming

    async def receive(self, msg: Message, kind: str | None) -> Message | None:
        """Hand ``msg`` from a peer to the core; if ``kind``, wait for the core's response."""
        peer = _sender_of(msg)
        if not self.faults.passes(peer):
            return None
        fut: asyncio.Future[Message] | None = None
        if kind is not None:
            fut = asyncio.get_running_loop().create_future()
            self._slots[(peer, kind)].append(fut)
        self.deliver(msg)
        if fut is None:
            return None
        try:
            return await asyncio.wait_for(fut, self.reply_timeout_s)
        except TimeoutError:
            return None

    def receive_batch(self, batch: raft_pb2.MessageBatch) -> int:
        """Hand every message of a stream batch to the core (through the fault seam); return how many."""
        msgs, bad = batch_messages(batch)
        self.malformed_received += bad
        faults, deliver = self.faults, self.deliver
        for m in msgs:
            if faults.passes(_sender_of(m)):
                deliver(m)
        return len(msgs)

    def trace(self, event: str, **fields: object) -> None:
        """Emit a transport trace event."""
        self._tracer.emit(TraceEvent(0.0, self.node_id, 0, "", event, dict(fields)))


def _kind(msg: Message) -> str:
    if isinstance(msg, (AppendEntries, AppendEntriesResponse)):
        return "append"
    if isinstance(msg, (RequestVote, RequestVoteResponse)):
        return "vote"
    return "snapshot"


def _sender_of(msg: Message) -> str:
    if isinstance(msg, (AppendEntries, InstallSnapshot, TimeoutNow)):
        return msg.leader_id
    if isinstance(msg, RequestVote):
        return msg.candidate_id
    return msg.from_


class RaftService(raft_pb2_grpc.RaftServicer):
    """The gRPC ``Raft`` service of one node: decode, hand to the transport, encode the reply."""

    def __init__(self, transport: PeerTransport, *, incoming_snapshot_dir: Callable[[int, int], str]) -> None:
        self.transport = transport
        self.incoming_snapshot_dir = incoming_snapshot_dir

    async def AppendEntries(
        self, request: raft_pb2.AppendEntriesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> raft_pb2.AppendEntriesResponse:
        """Deliver; reply with the core's response or fail the call (a lost message)."""
        try:
            msg = append_from_proto(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed AppendEntries: {exc}")
        reply = await self.transport.receive(msg, "append")
        if not isinstance(reply, AppendEntriesResponse):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no response (dropped)")
        return append_response_to_proto(reply)

    async def Stream(
        self, request_iterator: AsyncIterator[raft_pb2.MessageBatch], context: grpc.aio.ServicerContext[Any, Any]
    ) -> raft_pb2.StreamSummary:
        """Deliver every message of every batch until the sender ends the stream."""
        received = 0
        async for batch in request_iterator:
            received += self.transport.receive_batch(batch)
        return raft_pb2.StreamSummary(received=received)

    async def RequestVote(
        self, request: raft_pb2.RequestVoteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> raft_pb2.RequestVoteResponse:
        """Deliver; reply with the core's vote (or fail the call if it stays silent)."""
        reply = await self.transport.receive(vote_from_proto(request), "vote")
        if not isinstance(reply, RequestVoteResponse):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no response (ignored or dropped)")
        return vote_response_to_proto(reply)

    async def TimeoutNow(
        self, request: raft_pb2.TimeoutNowRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> raft_pb2.TimeoutNowResponse:
        """Deliver; TimeoutNow has no response message."""
        await self.transport.receive(TimeoutNow(request.term, request.leader_id, request.to), None)
        return raft_pb2.TimeoutNowResponse(term=request.term)

    async def InstallSnapshot(
        self,
        request_iterator: AsyncIterator[raft_pb2.InstallSnapshotChunk],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> raft_pb2.InstallSnapshotResponse:
        """Receive every chunk (checksums verified), unpack, then deliver the snapshot."""
        parts: list[bytes] = []
        first: raft_pb2.InstallSnapshotChunk | None = None
        size = 0
        finished = False
        async for chunk in request_iterator:
            first = first or chunk
            if chunk.done:
                finished = chunk.offset == size  # the last chunk says how many bytes came before it
                break
            if zlib.crc32(chunk.data) != chunk.checksum or chunk.offset != size:
                await context.abort(grpc.StatusCode.DATA_LOSS, f"snapshot chunk at {chunk.offset} is damaged")
            parts.append(chunk.data)
            size += len(chunk.data)
        if first is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty snapshot stream")
        if not finished:  # the sender stopped early (its files vanished, it crashed): never install a part
            await context.abort(grpc.StatusCode.DATA_LOSS, f"snapshot stream ended after {size} bytes, incomplete")
        config_raw, _, token = first.configuration.partition(b"\n")
        directory = self.incoming_snapshot_dir(first.last_included_index, first.last_included_term)
        try:
            await asyncio.get_running_loop().run_in_executor(None, _unpack_into, b"".join(parts), directory)
        except (ValueError, OSError) as exc:
            await context.abort(grpc.StatusCode.DATA_LOSS, f"snapshot archive unusable: {exc}")
        meta = SnapshotMeta(first.last_included_index, first.last_included_term, Configuration.decode(config_raw))
        msg = InstallSnapshot(first.term, first.leader_id, first.to, Snapshot(meta, token))
        reply = await self.transport.receive(msg, "snapshot")
        if not isinstance(reply, InstallSnapshotResponse):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no response (dropped)")
        return raft_pb2.InstallSnapshotResponse(term=reply.term, success=reply.success, **{"from": reply.from_})
