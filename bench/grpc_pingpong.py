"""One message each way over grpc.aio streams between two processes: gRPC's default I/O vs the kv command's.

Usage::

    .venv/bin/python bench/grpc_pingpong.py                 # 3 rounds of each mode, 3,000 round trips each

Two processes each open a ``Raft.Stream`` (the peer transport's stream) to the
other; the initiator writes one small batch and waits until the responder's
reply arrives on its own server, 1 message in flight, like a Raft append and
its acknowledgement at one client. Printed per mode and round: round-trip p50
and CPU per round trip of each process (``getrusage``). Mode ``default`` is
gRPC's own I/O (EventEngine threads); mode ``kv`` sets
``kvstore.wire.GRPC_IO_EXPERIMENTS`` as the ``kv`` command does. Loopback only;
every round is bounded by ``--trips`` and a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def _node(port: int, peer_port: int, initiator: bool, trips: int) -> str:
    import grpc

    from kvstore.wire import raft_pb2, raft_pb2_grpc

    inbox: asyncio.Queue[None] = asyncio.Queue()

    class Sink(raft_pb2_grpc.RaftServicer):
        async def Stream(
            self, request_iterator: AsyncIterator[raft_pb2.MessageBatch], context: grpc.aio.ServicerContext[Any, Any]
        ) -> raft_pb2.StreamSummary:
            async for _ in request_iterator:
                inbox.put_nowait(None)
            return raft_pb2.StreamSummary()

    server = grpc.aio.server()
    raft_pb2_grpc.add_RaftServicer_to_server(Sink(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{peer_port}")
    await asyncio.wait_for(channel.channel_ready(), 30)
    call = raft_pb2_grpc.RaftStub(channel).Stream()
    batch = raft_pb2.MessageBatch(to="peer")
    batch.messages.add().append.entries.add(term=1, index=1, data=b"x" * 150)
    await asyncio.sleep(1.0)  # both sides connected
    latencies = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(trips):
        if initiator:
            start = time.perf_counter()
            await call.write(batch)
            await asyncio.wait_for(inbox.get(), 10)
            latencies.append(time.perf_counter() - start)
        else:
            await asyncio.wait_for(inbox.get(), 10)
            await call.write(batch)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_us = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / trips * 1e6
    await asyncio.sleep(0.3)  # the last reply is written before the channel closes
    call.cancel()
    await channel.close(None)
    await server.stop(None)
    p50 = f"round trip p50 {statistics.median(latencies) * 1e6:4.0f} us, " if initiator else ""
    return f"{p50}CPU {cpu_us:4.0f} us/round trip"


def _child(args: argparse.Namespace) -> int:
    import uvloop

    uvloop.install()
    print(asyncio.run(_node(args.port, args.peer_port, args.role == "initiator", args.trips)), flush=True)
    return 0


def _round(mode: str, trips: int) -> str:
    from kvstore.server.launcher import free_port
    from kvstore.wire import GRPC_IO_EXPERIMENTS

    env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    if mode == "kv":
        env["GRPC_EXPERIMENTS"] = GRPC_IO_EXPERIMENTS
    a, b = free_port(), free_port()
    cmd = [sys.executable, __file__, "--trips", str(trips)]
    timeout = 60 + trips / 100
    responder = subprocess.Popen([*cmd, "--role", "responder", "--port", str(b), "--peer-port", str(a)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        initiator = subprocess.run([*cmd, "--role", "initiator", "--port", str(a), "--peer-port", str(b)], env=env,
                                   capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
        out, _ = responder.communicate(timeout=timeout)
    finally:
        responder.kill()
    return f"{mode:8} initiator: {initiator.stdout.strip() or 'failed'}; responder: {out.strip() or 'failed'}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--trips", type=int, default=3000, help="round trips per measurement")
    p.add_argument("--rounds", type=int, default=3, help="measurements per mode (modes alternate)")
    p.add_argument("--role", choices=["initiator", "responder"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--peer-port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role:
        return _child(args)
    for _ in range(args.rounds):
        for mode in ("default", "kv"):
            print(_round(mode, args.trips), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
