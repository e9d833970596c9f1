"""The peer transport: Raft messages between the nodes of a shard, over gRPC.

Theory of operation. The Raft core speaks in one-way messages (a request
now, the matching response later, as a separate message). gRPC speaks in
calls with replies. The transport maps one onto the other:

* **Outgoing requests** (AppendEntries, RequestVote, TimeoutNow,
  InstallSnapshot) go into a bounded queue per peer. A sender task per peer
  takes them in order and starts one RPC each, with up to
  ``MAX_INFLIGHT_APPENDS`` calls in flight per peer (pipelining). When a call
  returns, its reply (a response message) is delivered to the local core.
* **Incoming requests** are handed to the local core; the RPC handler then
  waits (briefly) in a *reply slot* for the response message the core emits
  to that peer, and returns it as the call's reply. Responses carry everything
  the receiver needs (term, match index, conflict hints), so any waiting call
  from that peer may carry any response of the right kind. A response with no
  call waiting is dropped, and a call whose response never comes fails:
  Raft treats both as a lost message and retries.
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
    same snapshot (a leader retrying) cannot mix their files.
    """
    partial = f"{directory}.partial-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    shutil.rmtree(partial, ignore_errors=True)
    unpack_archive(data, partial)
    shutil.rmtree(directory, ignore_errors=True)
    os.rename(partial, directory)


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
        self._queues: dict[str, asyncio.Queue[Message]] = {}
        self._senders: list[asyncio.Task[None]] = []
        self._inflight: dict[str, asyncio.Semaphore] = {}
        self._slots: dict[tuple[str, str], collections.deque[asyncio.Future[Message]]] = collections.defaultdict(
            collections.deque
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sent = 0
        self.queue_full_drops = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Create channels, queues and one sender task per peer (call inside the event loop)."""
        for peer, address in self.peers.items():
            self._channels[peer] = grpc.aio.insecure_channel(address, options=GRPC_OPTIONS)
            self._stubs[peer] = raft_pb2_grpc.RaftStub(self._channels[peer])  # an async stub on an aio channel
            self._queues[peer] = asyncio.Queue(maxsize=limits.MAX_PEER_QUEUE_MESSAGES)
            self._inflight[peer] = asyncio.Semaphore(limits.MAX_INFLIGHT_APPENDS)
            self._senders.append(asyncio.get_running_loop().create_task(self._sender(peer)))

    async def close(self) -> None:
        """Stop sending, fail waiting calls, close channels."""
        for t in [*self._senders, *self._tasks]:
            t.cancel()
        await asyncio.gather(*self._senders, *self._tasks, return_exceptions=True)
        for slots in self._slots.values():
            for fut in slots:
                if not fut.done():
                    fut.cancel()
        for ch in self._channels.values():
            await ch.close(None)

    # ------------------------------------------------------------ outgoing

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for its peer, or hand a response to the call waiting for it."""
        if isinstance(msg, (AppendEntriesResponse, RequestVoteResponse, InstallSnapshotResponse)):
            self._reply(msg)
            return
        queue = self._queues.get(msg.to)
        if queue is None:
            return  # not a peer we know (a removed member): nothing to do
        try:
            queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.queue_full_drops += 1  # Raft will resend; never block the node loop

    def _reply(self, msg: AppendEntriesResponse | RequestVoteResponse | InstallSnapshotResponse) -> None:
        slots = self._slots.get((msg.to, _kind(msg)))
        while slots:
            fut = slots.popleft()
            if not fut.done():
                fut.set_result(msg)
                return

    async def _sender(self, peer: str) -> None:
        queue = self._queues[peer]
        sem = self._inflight[peer]
        while True:
            msg = await queue.get()
            if not self.faults.passes(peer):
                continue
            await sem.acquire()
            task = asyncio.get_running_loop().create_task(self._call(peer, msg))
            self._tasks.add(task)
            task.add_done_callback(self._call_done(sem))

    def _call_done(self, sem: asyncio.Semaphore) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            sem.release()

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
