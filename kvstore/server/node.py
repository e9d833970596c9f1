"""The node process: ``kv node --config FILE``.

Theory of operation. One asyncio event loop (uvloop where installed) runs a
gRPC server with two services: ``KV`` for clients (:mod:`kvstore.server.service`)
and ``Raft`` for peers (:mod:`kvstore.server.transport`), in front of one
:class:`~kvstore.server.runtime.RaftNode` (Raft core, durable log, LSM state
machine). The node prints one "serving" line to stderr when it listens, then
runs until SIGTERM, SIGINT or the ``Shutdown`` RPC.

Shutdown is graceful: the KV service refuses new requests at once
(``SHUTTING_DOWN``, a definite error); the Raft node lets accepted writes
finish for up to the grace period; the gRPC server stops; the log and engine
are closed; the trace file is closed last.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import signal
import sys
import time

import grpc

from kvstore import errors
from kvstore.config import NodeConfig
from kvstore.server.runtime import RaftNode, ReplicatedBackend
from kvstore.server.service import KVService
from kvstore.server.transport import RaftService
from kvstore.trace import NULL_TRACER, JsonLinesTracer, TraceEvent, Tracer
from kvstore.wire import GRPC_MESSAGE_OPTIONS, kv_pb2, kv_pb2_grpc, raft_pb2_grpc

GRPC_OPTIONS = [
    *GRPC_MESSAGE_OPTIONS,
    ("grpc.so_reuseport", 0),  # two nodes must never share a port by accident
]


def install_event_loop() -> str:
    """Use uvloop's event loop policy when it is installed; return the loop's name."""
    try:
        import uvloop
    except ImportError:  # Windows, or a platform without wheels: stdlib asyncio works too
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


# Trace events the Raft core emits once per commit or per read round: one
# flushed line each, i.e. a write system call per operation on every node
# (~2% of a leader's CPU under load). Left out of the trace file unless
# `[trace] per_operation = true` (or the environment variable
# KVSTORE_TRACE_PER_OPERATION=1, for a one-off run) asks for them; elections,
# role changes, snapshots and errors are always traced.
PER_OPERATION_EVENTS = frozenset({"commit_advanced", "read_round_started", "reads_confirmed"})


class EventFilter:
    """A :class:`Tracer` that passes every event to ``inner`` except those named in ``dropped``."""

    def __init__(self, inner: Tracer, dropped: frozenset[str]) -> None:
        self.inner = inner
        self.dropped = dropped

    def emit(self, event: TraceEvent) -> None:
        """Forward ``event`` unless its name is dropped."""
        if event.event not in self.dropped:
            self.inner.emit(event)


def _open_tracer(config: NodeConfig) -> Tracer:
    if not config.trace.enabled:
        return NULL_TRACER
    os.makedirs(os.path.dirname(config.trace_path()) or ".", exist_ok=True)
    return JsonLinesTracer.open(config.trace_path())


def _raft_tracer(tracer: Tracer, *, per_operation: bool) -> Tracer:
    """What the Raft node traces to: ``tracer`` without the per-operation events (unless asked for)."""
    if tracer is NULL_TRACER or per_operation or os.environ.get("KVSTORE_TRACE_PER_OPERATION") == "1":
        return tracer
    return EventFilter(tracer, PER_OPERATION_EVENTS)


LOCK_FILE_NAME = "LOCK"


def lock_data_dir(data_dir: str) -> int:
    """Hold an exclusive lock on ``data_dir`` for the life of this process; return its descriptor.

    Two node processes writing one Raft log and one engine would corrupt both. The lock is a
    ``flock`` on ``DATA_DIR/LOCK`` (which also holds the owner's pid, for the error message);
    the operating system releases it when the process ends, even by SIGKILL, so a crash never
    leaves a stale lock behind.

    Raises:
        StorageError: another process holds the lock, or the file cannot be opened.
    """
    import fcntl  # POSIX only, like the rest of the node's file handling

    path = os.path.join(data_dir, LOCK_FILE_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise errors.StorageError(f"cannot open {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise errors.StorageError(
            f"data directory {data_dir} is in use by another kv node (pid {owner}); stop that one first"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


async def serve(config: NodeConfig) -> None:
    """Run a node until it is asked to stop.

    Raises:
        Unavailable: the listen address cannot be bound.
        StorageError / CorruptionError: the data directory cannot be used, or another node
            process is using it.
    """
    try:
        os.makedirs(config.node.data_dir, exist_ok=True)
    except OSError as exc:
        raise errors.StorageError(f"cannot create data directory {config.node.data_dir}: {exc.strerror}") from None
    lock_data_dir(config.node.data_dir)  # held until the process exits
    tracer = _open_tracer(config)
    stop = asyncio.Event()
    grace = [5.0]

    def on_shutdown(grace_seconds: float) -> None:
        grace[0] = grace_seconds
        stop.set()

    raft = RaftNode(config, tracer=_raft_tracer(tracer, per_operation=config.trace.per_operation))
    await raft.start()
    backend = ReplicatedBackend(raft)

    def inject(request: kv_pb2.InjectFaultsRequest) -> int:
        f = raft.transport.faults
        f.isolate_from = set(request.isolate_from)
        f.drop_rate = request.drop_rate
        f.delay_ms = request.delay_ms
        f.rng = random.Random(request.seed)
        raft.tick_scale = request.tick_scale or 1.0
        return f.dropped

    service = KVService(
        backend,
        on_shutdown=on_shutdown,
        tracer=tracer,
        clock=time.time,
        fault_injector=inject if config.testing.allow_fault_injection else None,
    )
    server = grpc.aio.server(options=GRPC_OPTIONS)
    kv_pb2_grpc.add_KVServicer_to_server(service, server)
    raft_pb2_grpc.add_RaftServicer_to_server(
        RaftService(raft.transport, incoming_snapshot_dir=raft.incoming_snapshot_path), server
    )
    try:
        port = server.add_insecure_port(config.node.listen)
    except RuntimeError:
        port = 0
    if port == 0:
        await raft.stop(0)
        raise errors.Unavailable(f"cannot listen on {config.node.listen} (address in use or not local?)")
    await server.start()
    # Everything allocated so far lives for the whole run: keep it out of the
    # garbage collector's generations (fewer, shorter collections under load).
    gc.freeze()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.begin_shutdown, 5.0)
    tracer.emit(TraceEvent(time.time(), config.node.id, 0, "", "node_started", {"listen": config.node.listen}))
    print(
        f"kv node {config.node.id}: serving shard {config.node.shard} on {config.node.listen} "
        f"with {len(config.peers)} peer(s) (pid {os.getpid()})",
        file=sys.stderr,
        flush=True,
    )
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(raft.stopped.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()  # the one still waiting would hold up _finish_leftover_tasks
    if raft.failure is not None:
        print(f"kv node {config.node.id}: failed: {raft.failure}", file=sys.stderr, flush=True)
    await raft.stop(grace[0])
    # Open client pipelines would hold the server for its whole grace period: end them now
    # (their accepted calls are answered by now; raft.stop finished or failed them).
    service.end_pipelines()
    await server.stop(1.0)
    await _finish_leftover_tasks(timeout_s=1.0)
    tracer.emit(TraceEvent(time.time(), config.node.id, 0, "", "node_stopped", {}))
    if isinstance(tracer, JsonLinesTracer):
        tracer.close()
    print(f"kv node {config.node.id}: stopped", file=sys.stderr, flush=True)
    if raft.failure is not None:
        raise errors.StorageError(f"node stopped after a failure: {raft.failure}")


async def _finish_leftover_tasks(*, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) for every other task of this loop to end.

    Once ``server.stop`` returns, gRPC has ended every call, but the tasks
    that watched them may still wait for their last completion from the C
    core. If the event loop's shutdown cancelled them instead, gRPC could
    print a traceback of that cancellation into the node's log (seen once in
    CI: a leader stopped amid writes). Measured: 0-4 such tasks left, all
    done within 1 ms of being waited for.
    """
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if others:
        await asyncio.wait(others, timeout=timeout_s)


def run_node(config: NodeConfig) -> None:
    """Install the event loop and run :func:`serve` to completion."""
    install_event_loop()
    asyncio.run(serve(config))
