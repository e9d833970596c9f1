"""The gRPC ``KV`` service: request validation, error mapping, graceful refusal.

Theory of operation. :class:`KVService` is a thin shell: it checks every
request against the named limits, refuses new work once shutdown has begun,
forwards the operation to a :class:`KVBackend`, and turns any
:class:`~kvstore.errors.KVError` into the response's ``error`` field. It never
lets another exception reach gRPC as a bare ``UNKNOWN`` status: an unexpected
exception is a bug, so it is logged as a trace event and answered with an
indeterminate error (the operation may have happened).

The backend is the only thing that changes as the project grows: today the
standalone :class:`StandaloneBackend` over the temporary in-memory store;
later the Raft-replicated state machine over the LSM engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message

from kvstore import errors, limits
from kvstore.invariants import invariant
from kvstore.server.memory_store import TemporaryMemoryStore
from kvstore.server.sessions import SessionTable
from kvstore.trace import NULL_TRACER, TraceEvent, Tracer
from kvstore.types import CasResult, NodeStatus
from kvstore.wire import kv_pb2, kv_pb2_grpc
from kvstore.wire.convert import error_to_proto

# The servicer context of one call (generic in request and response types).
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

R = TypeVar("R")
M = TypeVar("M", bound=Message)


class KVBackend(Protocol):
    """What the KV service needs from the node behind it.

    Contract: each method either returns its result or raises a KVError whose
    ``definite`` flag is honest. Keys and values have already been checked
    against the limits. Writes receive the client's session so a retry can be
    answered from the session table instead of being applied twice.
    """

    async def put(self, key: bytes, value: bytes, *, client_id: int, seq: int) -> bytes | None:
        """Store value; return the previous value or None."""
        ...

    async def get(self, key: bytes, *, stale: bool) -> bytes | None:
        """The value, or None if absent."""
        ...

    async def delete(self, key: bytes, *, client_id: int, seq: int) -> bool:
        """Remove key; return whether it existed."""
        ...

    async def cas(self, key: bytes, expected: bytes | None, value: bytes, *, client_id: int, seq: int) -> CasResult:
        """Compare-and-set; ``expected=None`` means "must be absent"."""
        ...

    async def scan(
        self, start: bytes | None, end: bytes | None, *, reverse: bool, limit: int, stale: bool
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs in range order."""
        ...

    def status(self) -> NodeStatus:
        """A snapshot of the node's state."""
        ...


class StandaloneBackend:
    """A single unreplicated node over :class:`TemporaryMemoryStore` (temporary).

    Writes go through a :class:`SessionTable`, so a retried write is answered
    with its original result, as the replicated node will do.
    """

    def __init__(self, *, node_id: str, shard: str) -> None:
        self.store = TemporaryMemoryStore()
        self.sessions = SessionTable()
        self.node_id = node_id
        self.shard = shard

    def _once(self, client_id: int, seq: int, apply: Callable[[], R]) -> R:
        done, result = self.sessions.lookup(client_id, seq)
        if done:
            return result  # type: ignore[no-any-return]
        result = apply()
        self.sessions.record(client_id, seq, result)
        return result

    async def put(self, key: bytes, value: bytes, *, client_id: int, seq: int) -> bytes | None:
        """Store value; return the previous value."""
        return self._once(client_id, seq, lambda: self.store.put(key, value))

    async def get(self, key: bytes, *, stale: bool) -> bytes | None:
        """Read the value (one process, so every read is current)."""
        return self.store.get(key)

    async def delete(self, key: bytes, *, client_id: int, seq: int) -> bool:
        """Remove key."""
        return self._once(client_id, seq, lambda: self.store.delete(key))

    async def cas(self, key: bytes, expected: bytes | None, value: bytes, *, client_id: int, seq: int) -> CasResult:
        """Compare-and-set."""
        return self._once(client_id, seq, lambda: self.store.cas(key, expected, value))

    async def scan(
        self, start: bytes | None, end: bytes | None, *, reverse: bool, limit: int, stale: bool
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs."""
        return list(self.store.scan(start, end, reverse=reverse, limit=limit))

    def status(self) -> NodeStatus:
        """Standalone: no Raft state."""
        return NodeStatus(
            node_id=self.node_id, shard=self.shard, role="standalone", keys=len(self.store), engine="temporary-memory"
        )


class KVService(kv_pb2_grpc.KVServicer):
    """gRPC servicer for the ``KV`` service over any :class:`KVBackend`."""

    def __init__(
        self,
        backend: KVBackend,
        *,
        on_shutdown: Callable[[float], None],
        tracer: Tracer = NULL_TRACER,
        clock: Callable[[], float] | None = None,
        fault_injector: Callable[[kv_pb2.InjectFaultsRequest], int] | None = None,
    ) -> None:
        self.backend = backend
        self.fault_injector = fault_injector
        self.shutting_down = False
        self.in_flight = 0
        self._pipelines: set[PipelineStream] = set()
        self._on_shutdown = on_shutdown
        self._tracer = tracer
        self._clock = clock or (lambda: asyncio.get_running_loop().time())

    async def _serve(self, op: str, reply: type[M], call: Callable[[], Awaitable[R]], respond: Callable[[R], M]) -> M:
        """Run one request: refuse if shutting down, map errors, count in-flight work.

        ``reply`` is the response message class; on error the response is
        ``reply(error=...)`` with every other field left at its default.
        """
        if self.shutting_down:
            return _error_reply(reply, errors.ShuttingDown("node is shutting down; not accepting new requests"))
        self.in_flight += 1
        try:
            return respond(await call())
        except errors.KVError as exc:
            return _error_reply(reply, exc)
        except Exception as exc:  # a bug: report it, do not crash the server
            self._trace("internal_error", op=op, error=repr(exc))
            bug = errors.OutcomeUnknown(f"internal error in {op}: {type(exc).__name__}: {exc}")
            return _error_reply(reply, bug)
        finally:
            self.in_flight -= 1

    def _trace(self, event: str, **fields: object) -> None:
        status = self.backend.status()
        self._tracer.emit(TraceEvent(self._clock(), status.node_id, status.term, status.role, event, dict(fields)))

    # ------------------------------------------------------------ data operations
    # One context-free function per operation, shared by the unary RPCs and the
    # Pipeline stream, so both paths validate, refuse and map errors identically.

    async def serve_put(self, request: kv_pb2.PutRequest) -> kv_pb2.PutResponse:
        """Validate and store; reply with the previous value."""

        async def call() -> bytes | None:
            limits.check_key(request.key)
            limits.check_value(request.value)
            s = request.session
            return await self.backend.put(request.key, request.value, client_id=s.client_id, seq=s.seq)

        def respond(prev: bytes | None) -> kv_pb2.PutResponse:
            return kv_pb2.PutResponse(had_previous=prev is not None, previous=prev or b"")

        return await self._serve("put", kv_pb2.PutResponse, call, respond)

    async def serve_get(self, request: kv_pb2.GetRequest) -> kv_pb2.GetResponse:
        """Validate and read."""

        async def call() -> bytes | None:
            limits.check_key(request.key)
            return await self.backend.get(request.key, stale=request.stale)

        def respond(value: bytes | None) -> kv_pb2.GetResponse:
            return kv_pb2.GetResponse(found=value is not None, value=value or b"")

        return await self._serve("get", kv_pb2.GetResponse, call, respond)

    async def serve_delete(self, request: kv_pb2.DeleteRequest) -> kv_pb2.DeleteResponse:
        """Validate and delete."""

        async def call() -> bool:
            limits.check_key(request.key)
            s = request.session
            return await self.backend.delete(request.key, client_id=s.client_id, seq=s.seq)

        def respond(existed: bool) -> kv_pb2.DeleteResponse:
            return kv_pb2.DeleteResponse(existed=existed)

        return await self._serve("delete", kv_pb2.DeleteResponse, call, respond)

    async def serve_compare_and_set(self, request: kv_pb2.CompareAndSetRequest) -> kv_pb2.CompareAndSetResponse:
        """Validate and compare-and-set."""

        async def call() -> CasResult:
            limits.check_key(request.key)
            limits.check_value(request.value)
            limits.check_value(request.expected)
            expected = None if request.expect_absent else request.expected
            s = request.session
            return await self.backend.cas(request.key, expected, request.value, client_id=s.client_id, seq=s.seq)

        def respond(r: CasResult) -> kv_pb2.CompareAndSetResponse:
            return kv_pb2.CompareAndSetResponse(
                swapped=r.swapped, had_current=r.current is not None, current=r.current or b""
            )

        return await self._serve("cas", kv_pb2.CompareAndSetResponse, call, respond)

    async def serve_scan(self, request: kv_pb2.ScanRequest) -> kv_pb2.ScanResponse:
        """Validate bounds and limit; reply with at most MAX_SCAN_REPLY_BYTES of pairs."""

        async def call() -> kv_pb2.ScanResponse:
            for bound in (request.start, request.end):
                if bound:
                    limits.check_key(bound)
            limit = request.limit or limits.MAX_SCAN_LIMIT
            if limit > limits.MAX_SCAN_LIMIT:
                raise errors.LimitExceeded("scan limit", limit, limits.MAX_SCAN_LIMIT, "pairs")
            pairs = await self.backend.scan(
                request.start or None,
                request.end or None,
                reverse=request.reverse,
                limit=limit + 1,
                stale=request.stale,
            )
            return _scan_reply(pairs, limit)

        return await self._serve("scan", kv_pb2.ScanResponse, call, lambda reply: reply)

    # ------------------------------------------------------------ unary RPCs

    async def Put(self, request: kv_pb2.PutRequest, context: Context) -> kv_pb2.PutResponse:
        """See :meth:`serve_put`."""
        return await self.serve_put(request)

    async def Get(self, request: kv_pb2.GetRequest, context: Context) -> kv_pb2.GetResponse:
        """See :meth:`serve_get`."""
        return await self.serve_get(request)

    async def Delete(self, request: kv_pb2.DeleteRequest, context: Context) -> kv_pb2.DeleteResponse:
        """See :meth:`serve_delete`."""
        return await self.serve_delete(request)

    async def CompareAndSet(
        self,
        request: kv_pb2.CompareAndSetRequest,
        context: Context,
    ) -> kv_pb2.CompareAndSetResponse:
        """See :meth:`serve_compare_and_set`."""
        return await self.serve_compare_and_set(request)

    async def Scan(self, request: kv_pb2.ScanRequest, context: Context) -> kv_pb2.ScanResponse:
        """See :meth:`serve_scan`."""
        return await self.serve_scan(request)

    # ------------------------------------------------------------ pipeline

    async def Pipeline(
        self, request_iterator: AsyncIterator[kv_pb2.PipelineRequest], context: Context
    ) -> AsyncIterator[kv_pb2.PipelineResponse]:
        """Serve one client pipeline: run its calls concurrently, send replies in batches.

        Every call goes through the same ``serve_*`` function as its unary RPC.
        Replies go out in completion order: everything finished since the
        previous message is one message (no timers). The stream ends once the
        client has half-closed it (or :meth:`end_pipelines` was called) and
        every accepted call has been answered; if the stream is cancelled
        (client gone), its running calls are cancelled, as gRPC cancels a unary
        handler whose client went away.
        """
        stream = PipelineStream(self)
        self._pipelines.add(stream)
        reader = asyncio.create_task(stream.read(request_iterator))
        try:
            async for response in stream.replies():
                yield response
        finally:
            self._pipelines.discard(stream)
            await stream.cancel(reader)

    def end_pipelines(self) -> None:
        """Make every open Pipeline stream end as soon as its accepted calls are answered.

        For a node that is stopping: call it after :meth:`begin_shutdown` and
        before stopping the gRPC server, whose grace period would otherwise be
        spent waiting for streams that clients keep open. A call that reaches a
        stream after it ended is not read; its client sees the stream end with
        the call unanswered (for a write: outcome unknown, as for a unary call
        cut off by a stopping server).
        """
        for stream in self._pipelines:
            stream.end()

    def pipeline_operation(self, kind: str) -> Callable[[Any], Awaitable[Message]]:
        """The ``serve_*`` function for a PipelineCall's ``request`` field name."""
        ops: dict[str, Callable[[Any], Awaitable[Message]]] = {
            "put": self.serve_put,
            "get": self.serve_get,
            "delete": self.serve_delete,
            "compare_and_set": self.serve_compare_and_set,
            "scan": self.serve_scan,
        }
        return ops[kind]

    async def Status(self, request: kv_pb2.StatusRequest, context: Context) -> kv_pb2.StatusResponse:
        """Report the backend's status (answered even while shutting down)."""
        s = self.backend.status()
        return kv_pb2.StatusResponse(
            node_id=s.node_id,
            shard=s.shard,
            role=s.role,
            term=s.term,
            leader_id=s.leader_id,
            commit_index=s.commit_index,
            applied_index=s.applied_index,
            log_bytes=s.log_bytes,
            keys=s.keys,
            disk_bytes=s.disk_bytes,
            level_files=s.level_files,
            engine=s.engine,
        )

    async def Shutdown(
        self,
        request: kv_pb2.ShutdownRequest,
        context: Context,
    ) -> kv_pb2.ShutdownResponse:
        """Begin a graceful shutdown; the reply goes out before the server stops."""
        grace = request.grace_seconds if request.grace_seconds > 0 else 5.0
        self.begin_shutdown(grace)
        return kv_pb2.ShutdownResponse()

    async def InjectFaults(self, request: kv_pb2.InjectFaultsRequest, context: Context) -> kv_pb2.InjectFaultsResponse:
        """Testing only: set the peer transport's faults; refused unless the config allows it."""
        if self.fault_injector is None:
            refusal = errors.InvalidArgument(
                "fault injection is disabled on this node; set [testing] allow_fault_injection = true"
            )
            return _error_reply(kv_pb2.InjectFaultsResponse, refusal)
        if not 0.0 <= request.drop_rate < 1.0:
            return _error_reply(kv_pb2.InjectFaultsResponse, errors.InvalidArgument("drop_rate must be in [0, 1)"))
        if request.tick_scale and not 0.1 <= request.tick_scale <= 10.0:
            refusal = errors.InvalidArgument("tick_scale must be 0 (no skew) or between 0.1 and 10")
            return _error_reply(kv_pb2.InjectFaultsResponse, refusal)
        dropped = self.fault_injector(request)
        self._trace(
            "faults_injected",
            isolate_from=list(request.isolate_from),
            drop_rate=request.drop_rate,
            delay_ms=request.delay_ms,
            tick_scale=request.tick_scale or 1.0,
        )
        return kv_pb2.InjectFaultsResponse(dropped_messages=dropped)

    def begin_shutdown(self, grace_seconds: float) -> None:
        """Refuse new requests from now on and ask the node to stop (idempotent)."""
        if not self.shutting_down:
            self.shutting_down = True
            self._trace("shutdown_requested", grace_seconds=grace_seconds, in_flight=self.in_flight)
            self._on_shutdown(grace_seconds)


# Response class of each PipelineCall ``request`` field (the reply's field of the same name).
PIPELINE_RESPONSE_TYPES: dict[str, type[Message]] = {
    "put": kv_pb2.PutResponse,
    "get": kv_pb2.GetResponse,
    "delete": kv_pb2.DeleteResponse,
    "compare_and_set": kv_pb2.CompareAndSetResponse,
    "scan": kv_pb2.ScanResponse,
}

# A reply batch is sent once it holds this many bytes. Every single reply is
# below MAX_SCAN_REPLY_BYTES plus a little framing (8 MiB + ~0.1 MiB), so a
# batch stays below MAX_MESSAGE_BYTES (16 MiB) whatever it holds.
_BATCH_FLUSH_BYTES = limits.MAX_MESSAGE_BYTES // 2


class PipelineStream:
    """The node's state for one Pipeline stream: its running calls and its finished replies.

    Call rules: :meth:`read` runs as one task, :meth:`replies` is iterated by
    the stream's handler (the writer), :meth:`cancel` is called once at the end.

    Invariants: ``0 <= in_flight <= MAX_PIPELINE_CALLS_IN_FLIGHT``; every
    accepted call produces exactly one reply, appended to ``done``; the writer
    finishes only after reading has ended and ``in_flight == 0`` and ``done``
    is empty (or ``ending`` is set instead of reading having ended).
    """

    def __init__(self, service: KVService) -> None:
        self.service = service
        self.in_flight = 0
        self.done: list[kv_pb2.PipelineReply] = []
        self.reading = True
        self.ending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()

    def check_invariants(self) -> None:
        """Check the class invariants (tests call this)."""
        invariant(0 <= self.in_flight <= limits.MAX_PIPELINE_CALLS_IN_FLIGHT, "in-flight calls within the limit")
        invariant(len(self._tasks) >= self.in_flight, "every in-flight call has a task")

    async def read(self, requests: AsyncIterator[kv_pb2.PipelineRequest]) -> None:
        """Start every call of every incoming batch, until the client half-closes."""
        try:
            async for batch in requests:
                for call in batch.calls:
                    self.start(call)
        finally:
            self.reading = False
            self._wakeup.set()

    def end(self) -> None:
        """Finish the stream once the calls accepted so far are answered (see KVService.end_pipelines)."""
        self.ending = True
        self._wakeup.set()

    def start(self, call: kv_pb2.PipelineCall) -> None:
        """Run one call in its own task, or answer it at once (malformed, over the limit)."""
        kind = call.WhichOneof("request")
        if kind is None:
            refusal = errors.InvalidArgument("pipeline call has no request (put, get, delete, compare_and_set, scan)")
            self.finish(kv_pb2.PipelineReply(id=call.id, error=error_to_proto(refusal)))
        elif self.in_flight >= limits.MAX_PIPELINE_CALLS_IN_FLIGHT:
            overload = errors.Unavailable(
                f"too many calls in flight on this pipeline (limit {limits.MAX_PIPELINE_CALLS_IN_FLIGHT}); retry later"
            )
            response = _error_reply(PIPELINE_RESPONSE_TYPES[kind], overload)
            self.finish(_pipeline_reply(call.id, kind, response))
        else:
            self.in_flight += 1
            task = asyncio.create_task(self._run(call.id, kind, getattr(call, kind)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, call_id: int, kind: str, request: Message) -> None:
        try:
            response = await self.service.pipeline_operation(kind)(request)
            reply = _pipeline_reply(call_id, kind, response)
        except Exception as exc:  # a bug past serve_*'s own net: answer as the unary path would
            self.service._trace("internal_error", op=f"pipeline {kind}", error=repr(exc))
            bug = errors.OutcomeUnknown(f"internal error in pipeline {kind}: {type(exc).__name__}: {exc}")
            reply = kv_pb2.PipelineReply(id=call_id, error=error_to_proto(bug))
        finally:
            self.in_flight -= 1
        self.finish(reply)

    def finish(self, reply: kv_pb2.PipelineReply) -> None:
        """Queue one reply for the writer."""
        self.done.append(reply)
        self._wakeup.set()

    async def replies(self) -> AsyncIterator[kv_pb2.PipelineResponse]:
        """Batches of finished replies, each everything finished since the previous one."""
        while (self.reading and not self.ending) or self.in_flight or self.done:
            if not self.done:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self.done = self.done, []
            for chunk in _split_replies(batch):
                yield kv_pb2.PipelineResponse(replies=chunk)

    async def cancel(self, reader: asyncio.Task[None]) -> None:
        """Stop reading and cancel the calls still running (the stream is over)."""
        tasks = [reader, *self._tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _pipeline_reply(call_id: int, kind: str, response: Message) -> kv_pb2.PipelineReply:
    """The PipelineReply answering call ``call_id`` of kind ``kind`` with ``response``."""
    reply = kv_pb2.PipelineReply(id=call_id)
    getattr(reply, kind).CopyFrom(response)
    return reply


def _split_replies(batch: list[kv_pb2.PipelineReply]) -> list[list[kv_pb2.PipelineReply]]:
    """Cut a batch into messages of about _BATCH_FLUSH_BYTES (one chunk in the common case)."""
    if len(batch) <= 8 and not any(r.HasField("scan") for r in batch):
        return [batch]  # other replies are below 1.1 MiB each: 8 of them fit in any message
    chunks: list[list[kv_pb2.PipelineReply]] = [[]]
    size = 0
    for reply in batch:
        if size >= _BATCH_FLUSH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(reply)
        size += reply.ByteSize()
    return chunks


def _scan_reply(pairs: list[tuple[bytes, bytes]], limit: int) -> kv_pb2.ScanResponse:
    """Build a reply of at most ``limit`` pairs and MAX_SCAN_REPLY_BYTES bytes."""
    reply = kv_pb2.ScanResponse()
    size = 0
    for i, (k, v) in enumerate(pairs):
        if i >= limit or (i > 0 and size + len(k) + len(v) > limits.MAX_SCAN_REPLY_BYTES):
            reply.more = True
            break
        reply.pairs.add(key=k, value=v)
        size += len(k) + len(v)
    return reply


def _error_reply(reply: type[M], exc: errors.KVError) -> M:
    """A response of type ``reply`` carrying only ``exc`` in its ``error`` field."""
    return reply(error=error_to_proto(exc))
