"""A stopping node lets gRPC's last call tasks finish instead of leaving them to the loop's shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from kvstore.server.launcher import free_port
from kvstore.server.node import _finish_leftover_tasks
from kvstore.wire import raft_pb2, raft_pb2_grpc


class _Sink(raft_pb2_grpc.RaftServicer):
    """A Raft service whose Stream reads until the client goes away."""

    async def Stream(
        self, request_iterator: AsyncIterator[raft_pb2.MessageBatch], context: grpc.aio.ServicerContext[Any, Any]
    ) -> raft_pb2.StreamSummary:
        received = 0
        async for _ in request_iterator:
            received += 1
        return raft_pb2.StreamSummary(received=received)


def test_no_grpc_task_is_left_pending_after_the_server_stops() -> None:
    async def run() -> list[str]:
        server = grpc.aio.server()
        raft_pb2_grpc.add_RaftServicer_to_server(_Sink(), server)
        address = f"127.0.0.1:{free_port()}"
        server.add_insecure_port(address)
        await server.start()
        channels = [grpc.aio.insecure_channel(address) for _ in range(4)]
        calls = [raft_pb2_grpc.RaftStub(ch).Stream() for ch in channels]  # streams left open, like peers'
        for call in calls:
            await call.write(raft_pb2.MessageBatch(to="n1"))
        await asyncio.sleep(0.05)
        await server.stop(0.1)
        await _finish_leftover_tasks(timeout_s=1.0)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        names = [getattr(t.get_coro(), "__name__", repr(t)) for t in pending]
        for ch in channels:
            await ch.close(None)
        return names

    for _ in range(5):  # the race is in gRPC's completions: a few rounds
        left = asyncio.run(run())
        assert not [n for n in left if "rpc" in n or "exceptions" in n], f"gRPC call tasks still pending: {left}"
