"""The client end of the KV service's ``Pipeline`` stream: many calls, one stream per node.

Theory of operation. A unary gRPC call costs both ends several hundred
microseconds of CPU (a new HTTP/2 stream, headers, status, a task per call on
the server); a message on an open stream costs a fraction of that. So the
client opens one bidirectional stream per node address, lazily, and sends
every data call over it:

* :meth:`Pipeline.call` gives the call an id, registers a future under that id,
  appends the call to the queue and wakes the **sender**;
* one **sender** task writes everything queued as one ``PipelineRequest``
  message; calls that arrive while a write is in progress go out together in
  the next one (batching without timers: the batch is whatever accumulated
  while the previous write was busy);
* one **receiver** task reads ``PipelineResponse`` messages and resolves each
  reply's future by id (replies come in completion order).

**Failures keep the unary meaning.** A call fails with a
:class:`PipelineRpcError` (a ``grpc.RpcError`` with ``code()`` and
``details()``), so the client classifies it exactly as it classifies a unary
failure: a stream that could not be opened carries gRPC's "failed to connect"
status (nothing was sent: definite); a stream that broke with the call sent
carries the stream's status (a write's outcome is unknown); a call still
queued when the stream broke, or that found no free slot within its timeout
(below), was never sent (definite, :data:`NOT_SENT`); a call sent and not
answered within its timeout fails with ``DEADLINE_EXCEEDED``. A
broken pipeline stays broken: the client opens a new one on its next call.

**Bounds.** At most ``MAX_PIPELINE_CALLS_IN_FLIGHT`` calls are unanswered at
once (the node's own limit); a call beyond waits for a slot within its
timeout. A request message holds at most about ``MAX_MESSAGE_BYTES / 2`` of
calls plus one, which is below ``MAX_MESSAGE_BYTES`` since one call is at most
about 2 MiB.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import grpc
from google.protobuf.message import Message

from kvstore import errors, limits
from kvstore.invariants import invariant
from kvstore.wire import kv_pb2, kv_pb2_grpc

# Words in the details of a call that was never written (its pipeline broke
# first, or had no free slot); the client treats it like a connection failure (definite).
NOT_SENT = "the call was not sent"

# A request message is written once it holds this many bytes (see the module docstring).
_BATCH_FLUSH_BYTES = limits.MAX_MESSAGE_BYTES // 2


class PipelineRpcError(grpc.RpcError):
    """A pipelined call's failure, shaped like a gRPC status (``code()``, ``details()``)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        """The gRPC status code of the failure."""
        return self._code

    def details(self) -> str:
        """The failure's description."""
        return self._details


class Pipeline:
    """One pipeline stream to one node (see the module docstring).

    Call rules: use from one event loop; :meth:`call` until :attr:`broken`,
    then drop it and make a new one; :meth:`close` once at the end.

    Invariants: every id in ``_pending`` has an unresolved future or is about
    to be removed by its caller; queued calls are a subset of pending ones;
    ``broken`` never goes back to False.
    """

    def __init__(self, channel: grpc.aio.Channel, address: str) -> None:
        self.address = address
        self.broken = False
        self._stub = kv_pb2_grpc.KVStub(channel)
        self._stream: Any = None  # grpc.aio.StreamStreamCall once opened
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[kv_pb2.PipelineReply]] = {}
        self._queue: list[tuple[int, str, Message]] = []
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(limits.MAX_PIPELINE_CALLS_IN_FLIGHT)
        self._tasks: list[asyncio.Task[None]] = []
        self.messages_sent = 0  # request messages written, for tests and benchmarks

    def check_invariants(self) -> None:
        """Check the class invariants (tests call this)."""
        invariant(len(self._pending) <= limits.MAX_PIPELINE_CALLS_IN_FLIGHT, "pending calls within the limit")
        invariant(all(i in self._pending for i, _, _ in self._queue), "every queued call is pending")
        invariant(not self.broken or not self._queue, "a broken pipeline holds no queued calls")

    async def call(self, kind: str, request: Message, timeout: float) -> kv_pb2.PipelineReply:
        """Send one call (``kind`` is its PipelineCall field name) and wait for its reply.

        Raises:
            PipelineRpcError: the stream failed, or no reply came within ``timeout`` seconds.
            ClosedError: the pipeline was closed meanwhile.
        """
        loop = asyncio.get_running_loop()
        if self.broken:
            raise PipelineRpcError(grpc.StatusCode.UNAVAILABLE, f"pipeline to {self.address} is closed: {NOT_SENT}")
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout)
            except TimeoutError:
                full = f"pipeline to {self.address} had no free slot in time: {NOT_SENT}"
                raise PipelineRpcError(grpc.StatusCode.UNAVAILABLE, full) from None
        else:
            await self._slots.acquire()  # free: returns at once
        call_id = next(self._ids)
        future: asyncio.Future[kv_pb2.PipelineReply] = loop.create_future()
        self._pending[call_id] = future
        self._queue.append((call_id, kind, request))
        self._open()
        self._wakeup.set()
        expiry = loop.call_later(timeout, self._expire, call_id)
        try:
            return await future
        finally:
            expiry.cancel()
            self._pending.pop(call_id, None)
            self._slots.release()

    def _open(self) -> None:
        if self._stream is None:
            self._stream = self._stub.Pipeline()  # type: ignore[call-arg]  # no iterator: write()/read()
            self._tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._receive_loop())]

    def _expire(self, call_id: int) -> None:
        future = self._pending.pop(call_id, None)
        if future is not None and not future.done():
            future.set_exception(PipelineRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))

    async def _send_loop(self) -> None:
        """Write everything queued as one message; repeat (ends when the stream fails)."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                message = self._take_batch()
                if not message.calls:
                    continue  # every call taken had timed out meanwhile
                try:
                    await self._stream.write(message)
                except (grpc.RpcError, asyncio.InvalidStateError):
                    return  # the receiver sees the stream's status and fails the calls
                self.messages_sent += 1

    def _take_batch(self) -> kv_pb2.PipelineRequest:
        """Move queued calls (still pending ones) into one message of about _BATCH_FLUSH_BYTES at most."""
        message = kv_pb2.PipelineRequest()
        size = 0
        taken = 0
        for call_id, kind, request in self._queue:
            taken += 1
            if call_id not in self._pending:
                continue  # timed out or cancelled before it was sent
            getattr(message.calls.add(id=call_id), kind).CopyFrom(request)
            size += request.ByteSize()
            if size >= _BATCH_FLUSH_BYTES:
                break
        del self._queue[:taken]
        return message

    async def _receive_loop(self) -> None:
        """Resolve each reply's future by id; on the stream's end, fail every call left."""
        failure: PipelineRpcError
        try:
            while True:
                response = await self._stream.read()
                if response is grpc.aio.EOF:  # type: ignore[attr-defined]
                    failure = PipelineRpcError(grpc.StatusCode.UNAVAILABLE, f"pipeline closed by {self.address}")
                    break
                for reply in response.replies:
                    future = self._pending.get(reply.id)
                    if future is not None and not future.done():
                        future.set_result(reply)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            failure = PipelineRpcError(code, (exc.details() if hasattr(exc, "details") else str(exc)) or "")
        except Exception as exc:  # not expected from grpc; still fail the calls rather than strand them
            failure = PipelineRpcError(grpc.StatusCode.UNKNOWN, f"pipeline to {self.address} failed: {exc!r}")
        self._break(failure)

    def _break(self, failure: BaseException) -> None:
        """Mark the pipeline broken; fail sent calls with ``failure`` and unsent ones as not sent."""
        self.broken = True
        unsent = {call_id for call_id, _, _ in self._queue}
        self._queue.clear()
        for call_id, future in list(self._pending.items()):
            if future.done():
                continue
            if call_id in unsent and isinstance(failure, PipelineRpcError):
                detail = f"pipeline to {self.address} closed: {NOT_SENT} ({failure.details()})"
                future.set_exception(PipelineRpcError(grpc.StatusCode.UNAVAILABLE, detail))
            else:
                future.set_exception(failure)
        if self._stream is not None:
            self._stream.cancel()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def close(self) -> None:
        """Fail every unanswered call with ClosedError, cancel the stream, and wait for both tasks."""
        if not self.broken:
            self._break(errors.ClosedError("client is closed"))
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)


class PipelineStub:
    """The data methods of ``kv_pb2_grpc.KVStub``, sent over a :class:`Pipeline`.

    Each method returns the response the unary RPC would return (a KV error
    in its ``error`` field) or raises :class:`PipelineRpcError` as the unary
    RPC would raise ``grpc.RpcError``.
    """

    def __init__(self, pipeline: Pipeline, *, default_timeout_s: float) -> None:
        self.pipeline = pipeline
        self._default_timeout_s = default_timeout_s

    async def _send(self, kind: str, request: Message, timeout: float | None, reply_type: type[Any]) -> Any:
        reply = await self.pipeline.call(kind, request, self._default_timeout_s if timeout is None else timeout)
        which = reply.WhichOneof("response")
        if which == kind:
            return getattr(reply, kind)
        if which == "error":
            return reply_type(error=reply.error)
        raise PipelineRpcError(grpc.StatusCode.INTERNAL, f"a {which} reply to a {kind} call")

    async def Put(self, request: kv_pb2.PutRequest, timeout: float | None = None) -> kv_pb2.PutResponse:
        """As ``KVStub.Put``."""
        return await self._send("put", request, timeout, kv_pb2.PutResponse)  # type: ignore[no-any-return]

    async def Get(self, request: kv_pb2.GetRequest, timeout: float | None = None) -> kv_pb2.GetResponse:
        """As ``KVStub.Get``."""
        return await self._send("get", request, timeout, kv_pb2.GetResponse)  # type: ignore[no-any-return]

    async def Delete(self, request: kv_pb2.DeleteRequest, timeout: float | None = None) -> kv_pb2.DeleteResponse:
        """As ``KVStub.Delete``."""
        return await self._send("delete", request, timeout, kv_pb2.DeleteResponse)  # type: ignore[no-any-return]

    async def CompareAndSet(
        self, request: kv_pb2.CompareAndSetRequest, timeout: float | None = None
    ) -> kv_pb2.CompareAndSetResponse:
        """As ``KVStub.CompareAndSet``."""
        reply_type = kv_pb2.CompareAndSetResponse
        return await self._send("compare_and_set", request, timeout, reply_type)  # type: ignore[no-any-return]

    async def Scan(self, request: kv_pb2.ScanRequest, timeout: float | None = None) -> kv_pb2.ScanResponse:
        """As ``KVStub.Scan``."""
        return await self._send("scan", request, timeout, kv_pb2.ScanResponse)  # type: ignore[no-any-return]
