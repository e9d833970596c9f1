"""etcd wire subset for the node benchmark, and a 3-member etcd cluster on loopback.

The proto below is written by hand and holds only the messages and fields this
benchmark uses. Field numbers, message names and the package name are copied
from etcd's ``api/etcdserverpb/rpc.proto`` and ``api/mvccpb/kv.proto``
(github.com/etcd-io/etcd, unchanged since v3.0 for these fields; checked
against the 3.4 and main branches). The package must stay ``etcdserverpb``:
gRPC method paths (``/etcdserverpb.KV/Put``) are built from it. ``KeyValue``
lives in package ``mvccpb`` upstream; package names of messages do not travel
on the wire, so it is declared here in the same file.

The stubs are generated at run time with grpcio-tools (a dev dependency of
kvstore) into a cache folder, so no generated code is committed.

The PySyncObj wrapper (``_node_pysyncobj_server.py``) serves the same subset, so
both peers are driven by one client code path with the same per-request cost.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import grpc

ETCD_SUBSET_PROTO = """\
syntax = "proto3";
package etcdserverpb;

service KV {
  rpc Range(RangeRequest) returns (RangeResponse);
  rpc Put(PutRequest) returns (PutResponse);
}

service Maintenance {
  rpc Status(StatusRequest) returns (StatusResponse);
}

message ResponseHeader {
  uint64 cluster_id = 1;
  uint64 member_id = 2;
  int64 revision = 3;
  uint64 raft_term = 4;
}

// mvccpb.KeyValue
message KeyValue {
  bytes key = 1;
  int64 create_revision = 2;
  int64 mod_revision = 3;
  int64 version = 4;
  bytes value = 5;
  int64 lease = 6;
}

message RangeRequest {
  bytes key = 1;
  bytes range_end = 2;
  int64 limit = 3;
  int64 revision = 4;
  bool serializable = 7;  // false (the default) = linearizable read
}

message RangeResponse {
  ResponseHeader header = 1;
  repeated KeyValue kvs = 2;
  bool more = 3;
  int64 count = 4;
}

message PutRequest {
  bytes key = 1;
  bytes value = 2;
  int64 lease = 3;
  bool prev_kv = 4;
}

message PutResponse {
  ResponseHeader header = 1;
  KeyValue prev_kv = 2;
}

message StatusRequest {}

message StatusResponse {
  ResponseHeader header = 1;
  string version = 2;
  int64 dbSize = 3;
  uint64 leader = 4;
  uint64 raftIndex = 5;
  uint64 raftTerm = 6;
}
"""

MODULE = "etcd_subset"

# Launches one server process (args, log file) and tracks it for cleanup; supplied by node_bench.py.
SpawnFn = Callable[[list[str], Path], "subprocess.Popen[bytes]"]


def load_stubs(cache_dir: Path) -> tuple[ModuleType, ModuleType]:
    """Generate (once per cache folder) and import ``etcd_subset_pb2`` and ``etcd_subset_pb2_grpc``."""
    from grpc_tools import protoc

    cache_dir.mkdir(parents=True, exist_ok=True)
    proto = cache_dir / f"{MODULE}.proto"
    if not proto.exists() or proto.read_text() != ETCD_SUBSET_PROTO or not (cache_dir / f"{MODULE}_pb2.py").exists():
        proto.write_text(ETCD_SUBSET_PROTO)
        code = protoc.main(
            ["protoc", f"-I{cache_dir}", f"--python_out={cache_dir}", f"--grpc_python_out={cache_dir}", str(proto)]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed on {proto} (exit code {code})")
    if str(cache_dir) not in sys.path:
        sys.path.insert(0, str(cache_dir))
    return importlib.import_module(f"{MODULE}_pb2"), importlib.import_module(f"{MODULE}_pb2_grpc")


def find_leader(addresses: list[str], pb2: ModuleType, pb2_grpc: ModuleType, *, timeout_s: float) -> str:
    """Poll ``Maintenance.Status`` until one member reports itself leader; return its address.

    Raises:
        TimeoutError: no leader within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for address in addresses:
            with grpc.insecure_channel(address) as channel:
                try:
                    status = pb2_grpc.MaintenanceStub(channel).Status(pb2.StatusRequest(), timeout=0.5)
                except grpc.RpcError:
                    continue
            if status.leader != 0 and status.leader == status.header.member_id:
                return address
        time.sleep(0.2)
    raise TimeoutError(f"no leader among {addresses} after {timeout_s:.0f}s")


@dataclass
class EtcdCluster:
    """Three etcd members on 127.0.0.1 with data in a temporary folder (fsync on: etcd's default)."""

    binary: str
    ports: list[tuple[int, int]]  # (client, peer) per member
    root: Path  # data folders and logs of the members; removed by remove_files()
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def client_addresses(self) -> list[str]:
        """``host:port`` of each member's gRPC client endpoint."""
        return [f"127.0.0.1:{c}" for c, _ in self.ports]

    def start(self, spawn: SpawnFn) -> None:
        """Launch the members (returns at once; wait with :func:`find_leader`)."""
        initial = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(self.ports))
        for i, (client, peer) in enumerate(self.ports):
            args = [
                self.binary,
                f"--name=m{i}",
                f"--data-dir={self.root / f'm{i}'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster={initial}",
                "--initial-cluster-token=kvbench",
                "--initial-cluster-state=new",
                "--logger=zap",
                "--log-level=warn",
            ]
            self.procs.append(spawn(args, self.root / f"m{i}.log"))

    def remove_files(self) -> None:
        """Delete the data folder (call after the processes are gone)."""
        shutil.rmtree(self.root, ignore_errors=True)
