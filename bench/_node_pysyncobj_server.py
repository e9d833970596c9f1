"""One PySyncObj replica with a replicated dict, served over the etcd gRPC subset (node benchmark peer).

Run by ``node_bench.py``, one process per replica::

    python bench/_node_pysyncobj_server.py --index I --raft-ports P0,P1,P2 --grpc-port G --stubs DIR

Kept minimal on purpose, so the numbers measure PySyncObj and not this file:

* ``Put`` calls the ``@replicated`` method ``put`` and answers when PySyncObj's
  callback reports the command committed and applied (its ``sync=True`` path,
  without blocking the event loop).
* ``Range`` calls the ``@replicated`` method ``read``: PySyncObj has no
  ReadIndex, so a linearizable read has to go through the log. (A local read of
  the dict would be faster but stale.)
* ``Maintenance.Status`` says who is leader (ids are index + 1), so the load
  generator sends to the leader as it does for etcd and kvstore.

PySyncObj runs with its default ``SyncObjConf`` except ``appendEntriesUseBatch``,
which is False unless ``--batch`` (its docs: False improves single-request speed;
True sends entries every ``appendEntriesPeriod`` = 100 ms). The Raft log lives in
memory: nothing is written to disk and nothing is fsynced. Its transport is its own TCP
protocol with pickled messages; its tick thread runs next to this asyncio loop.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

ERROR_TIMEOUT_S = 5.0  # a command not committed by then is answered UNAVAILABLE (load generator counts an error)


class ReplicatedDict(SyncObj):  # type: ignore[misc]
    """A dict whose writes (and linearizable reads) are PySyncObj commands."""

    def __init__(self, self_address: str, partners: list[str], *, batch: bool) -> None:
        super().__init__(self_address, partners, conf=SyncObjConf(appendEntriesUseBatch=batch))
        self._data: dict[bytes, bytes] = {}

    @replicated  # type: ignore[misc]
    def put(self, key: bytes, value: bytes) -> None:
        self._data[key] = value

    @replicated  # type: ignore[misc]
    def read(self, key: bytes) -> bytes | None:
        return self._data.get(key)


async def call_replicated(method: Any, *args: bytes) -> Any:
    """Run a ``@replicated`` method; return its result once committed (raises on failure)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def done(result: Any, error: Any) -> None:  # called on PySyncObj's thread
        loop.call_soon_threadsafe(_settle, future, result, error)

    method(*args, callback=done)
    return await asyncio.wait_for(future, ERROR_TIMEOUT_S)


def _settle(future: asyncio.Future[Any], result: Any, error: Any) -> None:
    if future.done():
        return
    if error == FAIL_REASON.SUCCESS:
        future.set_result(result)
    else:
        future.set_exception(RuntimeError(f"pysyncobj command failed: reason {error}"))


def make_servicers(pb2: Any, pb2_grpc: Any, node: ReplicatedDict, index: int, ids: dict[str, int]) -> tuple[Any, Any]:
    """The KV and Maintenance servicers over ``node``."""

    class KV(pb2_grpc.KVServicer):  # type: ignore[misc]
        async def Put(self, request: Any, context: Any) -> Any:
            try:
                await call_replicated(node.put, request.key, request.value)
            except (RuntimeError, TimeoutError) as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            return pb2.PutResponse()

        async def Range(self, request: Any, context: Any) -> Any:
            try:
                value = await call_replicated(node.read, request.key)
            except (RuntimeError, TimeoutError) as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            kvs = [] if value is None else [pb2.KeyValue(key=request.key, value=value)]
            return pb2.RangeResponse(kvs=kvs, count=len(kvs))

    class Maintenance(pb2_grpc.MaintenanceServicer):  # type: ignore[misc]
        async def Status(self, request: Any, context: Any) -> Any:
            leader = node._getLeader()
            leader_id = 0 if leader is None else ids.get(getattr(leader, "address", str(leader)), 0)
            return pb2.StatusResponse(header=pb2.ResponseHeader(member_id=index + 1), leader=leader_id)

    return KV(), Maintenance()


async def serve(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.stubs)
    import etcd_subset_pb2 as pb2
    import etcd_subset_pb2_grpc as pb2_grpc

    addresses = [f"127.0.0.1:{p}" for p in args.raft_ports.split(",")]
    ids = {a: i + 1 for i, a in enumerate(addresses)}
    partners = [a for i, a in enumerate(addresses) if i != args.index]
    node = ReplicatedDict(addresses[args.index], partners, batch=args.batch)
    kv, maintenance = make_servicers(pb2, pb2_grpc, node, args.index, ids)
    server = grpc.aio.server()
    pb2_grpc.add_KVServicer_to_server(kv, server)
    pb2_grpc.add_MaintenanceServicer_to_server(maintenance, server)
    server.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=0.5)
    node.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--raft-ports", required=True, help="comma-separated Raft ports of all replicas")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument(
        "--batch", action="store_true", help="PySyncObj's default appendEntriesUseBatch=True (appends every 100 ms)"
    )
    parser.add_argument("--stubs", required=True, help="folder holding etcd_subset_pb2*.py")
    args = parser.parse_args()
    if not Path(args.stubs, "etcd_subset_pb2.py").exists():
        raise SystemExit(f"no stubs in {args.stubs}")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
