"""The KV service's Pipeline stream, in process: per-call errors, concurrency, limits, shutdown.

The handler is driven directly (an async iterator of request batches in, an async
generator of reply batches out), so these tests need no sockets and no processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from kvstore import errors, limits
from kvstore.server.service import KVService, PipelineStream, StandaloneBackend
from kvstore.trace import MemoryTracer
from kvstore.wire import kv_pb2


class Feed:
    """The client half of a stream: batches pushed by the test, then a half-close."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[kv_pb2.PipelineRequest | None] = asyncio.Queue()

    def send(self, *calls: kv_pb2.PipelineCall) -> None:
        self.queue.put_nowait(kv_pb2.PipelineRequest(calls=list(calls)))

    def half_close(self) -> None:
        self.queue.put_nowait(None)

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> kv_pb2.PipelineRequest:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        return item


class GatedBackend(StandaloneBackend):
    """Puts (and, if asked, gets) wait until the test opens the gate; counts calls that arrived."""

    def __init__(self, *, gate_gets: bool = False) -> None:
        super().__init__(node_id="n1", shard="s0")
        self.gate = asyncio.Event()
        self.gate_gets = gate_gets
        self.waiting = 0

    async def put(self, key: bytes, value: bytes, *, client_id: int, seq: int) -> bytes | None:
        self.waiting += 1
        await self.gate.wait()
        return await super().put(key, value, client_id=client_id, seq=seq)

    async def get(self, key: bytes, *, stale: bool) -> bytes | None:
        if key == b"boom":
            raise ZeroDivisionError("boom")
        if self.gate_gets:
            self.waiting += 1
            await self.gate.wait()
        return await super().get(key, stale=stale)


def make_service(backend: StandaloneBackend) -> tuple[KVService, MemoryTracer]:
    tracer = MemoryTracer()
    return KVService(backend, on_shutdown=lambda _g: None, tracer=tracer, clock=lambda: 0.0), tracer


def put(call_id: int, key: bytes, value: bytes = b"v") -> kv_pb2.PipelineCall:
    return kv_pb2.PipelineCall(id=call_id, put=kv_pb2.PutRequest(key=key, value=value))


def get(call_id: int, key: bytes) -> kv_pb2.PipelineCall:
    return kv_pb2.PipelineCall(id=call_id, get=kv_pb2.GetRequest(key=key))


async def collect(replies: AsyncIterator[kv_pb2.PipelineResponse], count: int) -> dict[int, kv_pb2.PipelineReply]:
    """Read reply batches until ``count`` replies arrived; return them by id."""
    out: dict[int, kv_pb2.PipelineReply] = {}
    while len(out) < count:
        batch = await anext(replies)
        assert batch.replies, "the node never sends an empty batch"
        out.update((r.id, r) for r in batch.replies)
    return out


async def open_with_running_calls(
    svc: KVService, backend: GatedBackend, *calls: kv_pb2.PipelineCall
) -> tuple[Feed, AsyncIterator[kv_pb2.PipelineResponse], asyncio.Future[kv_pb2.PipelineResponse]]:
    """Open a Pipeline stream, send ``calls`` as one batch, and return once all of them wait in the backend.

    Returns the feed, the reply stream and its first reply batch, still pending (awaiting the
    replies is what runs the handler).
    """
    feed = Feed()
    replies = svc.Pipeline(feed, None)  # type: ignore[arg-type]
    feed.send(*calls)
    first = asyncio.ensure_future(anext(replies))
    while backend.waiting < len(calls):
        await asyncio.sleep(0)
    return feed, replies, first


def test_one_bad_call_in_a_batch_gets_its_own_error_and_the_others_are_answered() -> None:
    """An oversized key, an empty call, a bad scan limit and a bug each get their own reply; the rest succeed."""
    backend = GatedBackend()
    backend.gate.set()
    svc, tracer = make_service(backend)

    async def run() -> None:
        feed = Feed()
        replies = svc.Pipeline(feed, None)  # type: ignore[arg-type]
        feed.send(
            put(1, b"good"),
            put(2, b"k" * (limits.MAX_KEY_BYTES + 1)),
            kv_pb2.PipelineCall(id=3),
            get(4, b"boom"),
            kv_pb2.PipelineCall(id=5, scan=kv_pb2.ScanRequest(limit=limits.MAX_SCAN_LIMIT + 1)),
            get(6, b"good"),
        )
        feed.half_close()
        got = await collect(replies, 6)
        assert [r async for r in replies] == [], "the stream ends after the last reply"
        assert not got[1].put.HasField("error")
        assert got[2].put.error.code == kv_pb2.KEY_TOO_LARGE and got[2].put.error.definite
        assert got[3].WhichOneof("response") == "error" and got[3].error.code == kv_pb2.INVALID_ARGUMENT
        assert got[4].get.error.code == kv_pb2.OUTCOME_UNKNOWN and not got[4].get.error.definite
        assert got[5].scan.error.code == kv_pb2.LIMIT_EXCEEDED
        assert got[6].get.found and got[6].get.value == b"v", "a call after the bad ones still ran"

    asyncio.run(run())
    assert any(e.event == "internal_error" for e in tracer.events), "the bug was traced"
    assert svc.in_flight == 0


def test_a_get_is_answered_while_an_earlier_put_still_waits() -> None:
    """Calls of one stream run concurrently: a get is not held behind a put stuck in the backend."""
    backend = GatedBackend()
    svc, _ = make_service(backend)

    async def run() -> None:
        feed = Feed()
        replies = svc.Pipeline(feed, None)  # type: ignore[arg-type]
        feed.send(put(1, b"a"), get(2, b"a"))
        first = await collect(replies, 1)
        assert list(first) == [2] and not first[2].get.found, "the get came back first"
        assert backend.waiting == 1, "the put really was waiting in the backend"
        backend.gate.set()
        assert list(await collect(replies, 1)) == [1]
        feed.half_close()
        assert [r async for r in replies] == []

    asyncio.run(run())


def test_calls_beyond_the_in_flight_limit_are_refused_definitely() -> None:
    """The limit+1st unanswered call of a stream is refused with UNAVAILABLE (definite); the others finish."""
    backend = GatedBackend(gate_gets=True)
    svc, _ = make_service(backend)
    n = limits.MAX_PIPELINE_CALLS_IN_FLIGHT

    async def run() -> None:
        feed = Feed()
        stream_replies = svc.Pipeline(feed, None)  # type: ignore[arg-type]
        feed.send(*(get(i, b"k") for i in range(n + 1)))
        refused = await collect(stream_replies, 1)
        assert list(refused) == [n]
        assert refused[n].get.error.code == kv_pb2.UNAVAILABLE and refused[n].get.error.definite
        assert "limit" in refused[n].get.error.message
        assert backend.waiting == n, "exactly the limit of calls were running"
        backend.gate.set()
        rest = await collect(stream_replies, n)
        assert sorted(rest) == list(range(n)) and all(not r.get.HasField("error") for r in rest.values())
        feed.half_close()
        assert [r async for r in stream_replies] == []

    asyncio.run(run())


def test_shutdown_finishes_accepted_pipeline_calls_and_refuses_new_ones() -> None:
    """After shutdown begins, an accepted put still gets its answer; a new call gets SHUTTING_DOWN."""
    backend = GatedBackend()
    svc, _ = make_service(backend)

    async def run() -> None:
        feed, replies, first = await open_with_running_calls(svc, backend, put(1, b"accepted"))
        svc.begin_shutdown(5.0)
        feed.send(put(2, b"late"))
        late = {r.id: r for r in (await first).replies}
        assert late[2].put.error.code == kv_pb2.SHUTTING_DOWN and late[2].put.error.definite
        backend.gate.set()
        done = await collect(replies, 1)
        assert not done[1].put.HasField("error")
        feed.half_close()
        assert [r async for r in replies] == []

    asyncio.run(run())
    assert backend.store.get(b"accepted") == b"v" and backend.store.get(b"late") is None


def test_end_pipelines_ends_an_open_stream_once_its_accepted_calls_are_answered() -> None:
    """A stopping node ends streams the client keeps open, but only after answering what it accepted."""
    backend = GatedBackend()
    svc, _ = make_service(backend)

    async def run() -> None:
        # The feed is never half-closed, like a client's pipeline.
        _, replies, first = await open_with_running_calls(svc, backend, put(1, b"accepted"))
        svc.begin_shutdown(5.0)
        svc.end_pipelines()
        assert not first.done(), "the accepted call holds the stream open"
        backend.gate.set()
        assert [r.id for r in (await first).replies] == [1]
        assert [r async for r in replies] == [], "then the stream ends by itself"
        assert svc._pipelines == set()

    asyncio.run(run())


def test_a_cancelled_stream_cancels_its_running_calls_and_leaves_no_task() -> None:
    """When the client goes away mid-call, the handler's calls are cancelled and nothing is left running."""
    backend = GatedBackend()
    svc, _ = make_service(backend)

    async def run() -> None:
        _, replies, waiter = await open_with_running_calls(svc, backend, put(1, b"a"), put(2, b"b"))
        waiter.cancel()  # what gRPC does when the client disconnects
        await asyncio.gather(waiter, return_exceptions=True)
        await replies.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}, "no call task outlived the stream"
        assert svc.in_flight == 0

    asyncio.run(run())


def test_pipeline_stream_invariants_hold_while_calls_run() -> None:
    """check_invariants holds with calls waiting, and the stream drains to zero in flight."""
    backend = GatedBackend()
    svc, _ = make_service(backend)

    async def run() -> None:
        stream = PipelineStream(svc)
        for i in range(5):
            stream.start(put(i, b"k%d" % i))
        while backend.waiting < 5:
            await asyncio.sleep(0)
        stream.check_invariants()
        assert stream.in_flight == 5
        backend.gate.set()
        while stream.in_flight:
            await asyncio.sleep(0)
        stream.check_invariants()
        assert sorted(r.id for r in stream.done) == list(range(5))

    asyncio.run(run())
    assert errors.Unavailable("x").definite
