"""The node process: ``kv node --config FILE``.

Theory of operation. One asyncio event loop (uvloop where installed) owns a
gRPC server and the backend behind the ``KV`` service. The node starts,
prints one "serving" line to stderr (tests and the demo wait for it, and it
tells a person the node is up), then runs until SIGTERM, SIGINT or the
``Shutdown`` RPC. Shutdown is graceful: the service refuses new requests at
once (``SHUTTING_DOWN``, a definite error), the server lets accepted requests
finish for up to the grace period, and the trace file is closed last.

Today the backend is the temporary standalone in-memory store; the Raft
issue replaces it with the replicated state machine, leaving this shell as is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import grpc

from kvstore import errors, limits
from kvstore.config import NodeConfig
from kvstore.server.service import KVService, StandaloneBackend
from kvstore.trace import NULL_TRACER, JsonLinesTracer, TraceEvent, Tracer
from kvstore.wire import kv_pb2_grpc

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
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


def _open_tracer(config: NodeConfig) -> Tracer:
    if not config.trace.enabled:
        return NULL_TRACER
    os.makedirs(os.path.dirname(config.trace_path()) or ".", exist_ok=True)
    return JsonLinesTracer.open(config.trace_path())


async def serve(config: NodeConfig) -> None:
    """Run a node until it is asked to stop.

    Raises:
        Unavailable: the listen address cannot be bound.
        StorageError: the data directory cannot be created.
    """
    if config.peers:
        raise errors.ConfigError(
            f"node {config.node.id} has [[peers]], but this build's node cannot replicate yet "
            "(standalone, temporary in-memory store): use one replica per shard for now"
        )
    try:
        os.makedirs(config.node.data_dir, exist_ok=True)
    except OSError as exc:
        raise errors.StorageError(f"cannot create data directory {config.node.data_dir}: {exc.strerror}") from None
    tracer = _open_tracer(config)
    stop = asyncio.Event()
    grace = [5.0]

    def on_shutdown(grace_seconds: float) -> None:
        grace[0] = grace_seconds
        stop.set()

    backend = StandaloneBackend(node_id=config.node.id, shard=config.node.shard)
    service = KVService(backend, on_shutdown=on_shutdown, tracer=tracer, clock=time.time)
    server = grpc.aio.server(options=GRPC_OPTIONS)
    kv_pb2_grpc.add_KVServicer_to_server(service, server)
    try:
        port = server.add_insecure_port(config.node.listen)
    except RuntimeError:
        port = 0
    if port == 0:
        raise errors.Unavailable(f"cannot listen on {config.node.listen} (address in use or not local?)")
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.begin_shutdown, 5.0)
    trace = TraceEvent(time.time(), config.node.id, 0, "standalone", "node_started", {"listen": config.node.listen})
    tracer.emit(trace)
    print(
        f"kv node {config.node.id}: serving shard {config.node.shard} on {config.node.listen} "
        f"(standalone, temporary in-memory store; pid {os.getpid()})",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    await server.stop(grace[0])
    tracer.emit(TraceEvent(time.time(), config.node.id, 0, "standalone", "node_stopped", {}))
    if isinstance(tracer, JsonLinesTracer):
        tracer.close()
    print(f"kv node {config.node.id}: stopped", file=sys.stderr, flush=True)


def run_node(config: NodeConfig) -> None:
    """Install the event loop and run :func:`serve` to completion."""
    install_event_loop()
    asyncio.run(serve(config))
