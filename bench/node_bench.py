"""Benchmark the replicated node against etcd and PySyncObj: puts and linearizable gets on loopback.

Usage:
    .venv/bin/python bench/node_bench.py                      # set up peers, run, print the table
    .venv/bin/python bench/node_bench.py --repeat 3 --write   # medians of 3 runs into docs/PERFORMANCE.md + plot
    .venv/bin/python bench/node_bench.py --systems kvstore --duration 5 --py-spy /tmp/prof

One asyncio load generator (this process) drives, one system at a time and with
the same workloads:

* **kvstore**: 3 ``kv node`` processes (default config: fsync on), through
  ``kvstore.AsyncClient``, which routes to the leader and sends every call over
  its pipeline stream (the client's default);
* **kvstore-unary**: the same cluster and client with ``ClientOptions(pipeline=False)``:
  one unary gRPC call per operation (to measure what the pipeline saves);
* **etcd**: 3 members of Debian's ``etcd-server`` on 127.0.0.1 (fsync on: etcd's
  default), data in a temporary folder, through its gRPC API (``KV.Put``;
  ``KV.Range`` with ``serializable=false``, etcd's default, i.e. linearizable);
  requests go to the leader;
* **pysyncobj**: 3 PySyncObj replicas of a dict (``_node_pysyncobj_server.py``)
  served over the same gRPC subset as etcd; linearizable gets go through its log
  (it has no ReadIndex). PySyncObj keeps its log in memory: no fsync.

Workloads: 16-byte keys, 100-byte values; puts with 1, 16 and 64 concurrent
clients (each put a new key); linearizable gets with 64 clients of keys written
before. A client is a coroutine that sends its next request when the previous
one is answered; all clients share one gRPC channel, the same for every system.
Each measurement runs ``--warmup`` seconds unrecorded, then ``--duration``
seconds recorded, and stops early after ``--max-ops`` operations; every request
has a timeout. With ``--repeat N`` the systems are interleaved (run 1 of each,
then run 2 of each...) and medians are reported, which evens out a shared
machine's background load.

Besides ops/s and latency, each row has the CPU milliseconds per operation that
the servers (all three summed) and this load generator used during the window
(from /proc), which says how efficient a system is whatever else the machine
was doing. ``--py-spy DIR`` also profiles the kvstore leader (see
``bench/_node_profile.py``).

Peers are set up by this script unless ``--no-setup``: ``apt-get install -y
etcd-server`` when no ``etcd`` is on PATH, and ``pip install -r
bench/requirements-node-peers.txt`` (PySyncObj, matplotlib) into this Python.
A peer that cannot be set up is reported as missing and skipped.

Every process started here is stopped on exit, Ctrl-C or SIGTERM (servers also
get SIGKILL from the kernel if this process dies: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.util
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, ModuleType
from typing import Protocol

import grpc

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from _node_etcd import EtcdCluster, find_leader, load_stubs  # noqa: E402
from _node_profile import summarize as summarize_profile  # noqa: E402

from kvstore.client.client import AsyncClient, ClientOptions  # noqa: E402
from kvstore.server.launcher import free_port  # noqa: E402
from kvstore.server.local_cluster import LocalCluster, create_cluster  # noqa: E402

PERFORMANCE = REPO / "docs" / "PERFORMANCE.md"
PLOT = REPO / "docs" / "perf" / "node.png"
REQUIREMENTS = BENCH / "requirements-node-peers.txt"
SECTION = re.compile(r"(<!-- BEGIN node -->\n)(.*?)(<!-- END node -->)", re.DOTALL)
SYSTEMS = ("kvstore", "kvstore-unary", "etcd", "pysyncobj")

KEY_BYTES = 16
VALUE_BYTES = 100
REQUEST_TIMEOUT_S = 5.0  # one request; a slower answer counts as an error
START_TIMEOUT_S = 60.0  # a cluster must elect a leader within this
PHASE_GRACE_S = 15.0  # after warmup + duration, in-flight requests get this long before the phase is cancelled
SETUP_TIMEOUT_S = 600.0  # apt-get / pip
MAX_KEYS_REMEMBERED = 200_000  # keys kept per system for the get workload (memory bound)


@dataclass(frozen=True, slots=True)
class Workload:
    """One measurement: an operation and a number of concurrent clients."""

    op: str  # "put" or "get"
    clients: int

    @property
    def name(self) -> str:
        return f"{self.op} x{self.clients}"


WORKLOADS = (Workload("put", 1), Workload("put", 16), Workload("put", 64), Workload("get", 64))


@dataclass(slots=True)
class PhaseResult:
    """What one workload measured on one system in one run."""

    system: str
    workload: Workload
    ops: int
    errors: int
    wrong: int  # gets that did not return the value written
    seconds: float
    latencies_s: list[float]
    client_cpu_s: float
    server_cpu_s: float
    run: int = 0  # which of the --repeat runs

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return self.latency_ms(0.5)

    def latency_ms(self, q: float) -> float:
        """The ``q`` quantile of latency in milliseconds (nearest rank)."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def cpu_ms_per_op(self, cpu_s: float) -> float:
        return cpu_s * 1000 / self.ops if self.ops else float("nan")


class Driver(Protocol):
    """The client side of one system: one request per call, raises on failure."""

    async def put(self, key: bytes, value: bytes) -> None: ...

    async def get(self, key: bytes) -> bytes | None: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- processes


class Processes:
    """Every server process this benchmark starts, so that all of them are stopped whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        """Start ``args`` in its own session with output to ``log_path``; it dies with us (PDEATHSIG)."""
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us, and we stop them in order
                preexec_fn=_die_with_parent,
            )
        self.procs.append(proc)
        return proc

    def stop_all(self, *, grace_s: float = 5.0) -> None:
        """SIGTERM every live process, then SIGKILL what is left after ``grace_s``."""
        live = [p for p in self.procs if p.poll() is None]
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in live:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait(timeout=5)
        self.procs.clear()


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel for SIGKILL when the parent dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (processes that are gone count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15 of stat)
    return total


# --------------------------------------------------------------------------- systems


class System:
    """A cluster that can be started, driven and stopped. Subclasses fill in the three steps."""

    name = ""

    def __init__(self, processes: Processes, work_dir: Path) -> None:
        self.processes = processes
        self.work_dir = work_dir

    def start(self) -> None:
        raise NotImplementedError

    def driver(self) -> Driver:
        """A new client (call inside the running event loop)."""
        raise NotImplementedError

    def server_pids(self) -> list[int]:
        raise NotImplementedError

    def leader_pid(self) -> int | None:
        """The leader's process id, for profiling (None if unknown)."""
        return None

    def stop(self) -> None:
        raise NotImplementedError


class KvstoreSystem(System):
    """Three ``kv node`` processes with the default config (fsync on), started through LocalCluster."""

    name = "kvstore"
    pipeline = True  # ClientOptions.pipeline of the load generator's client

    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kvbench-kvstore-", dir=self.work_dir))
        cluster_file = create_cluster(self.dir / "cluster", shards=1, replicas=3)
        self.cluster = LocalCluster(cluster_file)
        self.cluster.up(timeout_s=START_TIMEOUT_S)

    def driver(self) -> Driver:
        options = ClientOptions(
            request_timeout_s=REQUEST_TIMEOUT_S, deadline_s=REQUEST_TIMEOUT_S, pipeline=self.pipeline
        )
        return _KvstoreDriver(AsyncClient(self.cluster.map, options=options))

    def server_pids(self) -> list[int]:
        return [pid for n in self.cluster.nodes.values() if (pid := n.running_pid()) is not None]

    def leader_pid(self) -> int | None:
        for row in self.cluster.status():
            if row.role == "leader":
                return self.cluster.node(row.node_id).running_pid()
        return None

    def stop(self) -> None:
        if hasattr(self, "cluster"):
            self.cluster.down()
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)


class KvstoreUnarySystem(KvstoreSystem):
    """The kvstore cluster driven with one unary gRPC call per operation (``pipeline=False``)."""

    name = "kvstore-unary"
    pipeline = False


@dataclass
class _KvstoreDriver:
    client: AsyncClient

    async def put(self, key: bytes, value: bytes) -> None:
        await self.client.put(key, value)

    async def get(self, key: bytes) -> bytes | None:
        return await self.client.get(key)

    async def close(self) -> None:
        await self.client.close()


class _EtcdApiSystem(System):
    """A system spoken to through the etcd gRPC subset (etcd itself, and the PySyncObj wrapper)."""

    stubs: tuple[ModuleType, ModuleType]
    addresses: list[str]
    procs: list[subprocess.Popen[bytes]]

    def driver(self) -> Driver:
        pb2, pb2_grpc = self.stubs
        leader = find_leader(self.addresses, pb2, pb2_grpc, timeout_s=START_TIMEOUT_S)
        return _EtcdApiDriver(pb2, pb2_grpc, grpc.aio.insecure_channel(leader))

    def server_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def leader_pid(self) -> int | None:
        pb2, pb2_grpc = self.stubs
        leader = find_leader(self.addresses, pb2, pb2_grpc, timeout_s=5)
        return self.procs[self.addresses.index(leader)].pid

    def _check_running(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name}: a server exited at start-up (code {proc.returncode}); see {self.log_dir}"
                )

    @property
    def log_dir(self) -> Path:
        return self.work_dir


class _EtcdApiDriver:
    def __init__(self, pb2: ModuleType, pb2_grpc: ModuleType, channel: grpc.aio.Channel) -> None:
        self.pb2 = pb2
        self.channel = channel
        self.stub = pb2_grpc.KVStub(channel)

    async def put(self, key: bytes, value: bytes) -> None:
        await self.stub.Put(self.pb2.PutRequest(key=key, value=value), timeout=REQUEST_TIMEOUT_S)

    async def get(self, key: bytes) -> bytes | None:
        resp = await self.stub.Range(self.pb2.RangeRequest(key=key), timeout=REQUEST_TIMEOUT_S)  # serializable=false
        return bytes(resp.kvs[0].value) if resp.kvs else None

    async def close(self) -> None:
        await self.channel.close(None)


class EtcdSystem(_EtcdApiSystem):
    """Three etcd members on loopback (Debian's etcd-server, default settings: fsync on)."""

    name = "etcd"

    def __init__(self, processes: Processes, work_dir: Path, stubs: tuple[ModuleType, ModuleType]) -> None:
        super().__init__(processes, work_dir)
        self.stubs = stubs

    def start(self) -> None:
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("etcd is not installed")
        root = Path(tempfile.mkdtemp(prefix="kvbench-etcd-", dir=self.work_dir))
        self.etcd = EtcdCluster(binary, [(free_port(), free_port()) for _ in range(3)], root)
        self.etcd.start(self.processes.spawn)
        self.procs = self.etcd.procs
        self.addresses = self.etcd.client_addresses
        self._wait_leader()

    def _wait_leader(self) -> None:
        pb2, pb2_grpc = self.stubs
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_running()
            with contextlib.suppress(TimeoutError):
                find_leader(self.addresses, pb2, pb2_grpc, timeout_s=2)
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd: no leader after {START_TIMEOUT_S:.0f}s; logs in {self.etcd.root}")

    @property
    def log_dir(self) -> Path:
        return self.etcd.root

    def stop(self) -> None:
        self.processes.stop_all()
        if hasattr(self, "etcd"):
            self.etcd.remove_files()


class PySyncObjSystem(_EtcdApiSystem):
    """Three PySyncObj replicas (in-memory log, no fsync) behind the minimal gRPC wrapper."""

    name = "pysyncobj"

    def __init__(
        self,
        processes: Processes,
        work_dir: Path,
        stubs: tuple[ModuleType, ModuleType],
        stubs_dir: Path,
        *,
        batch: bool,
    ) -> None:
        super().__init__(processes, work_dir)
        self.stubs = stubs
        self.stubs_dir = stubs_dir
        self.batch = batch

    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kvbench-pysyncobj-", dir=self.work_dir))
        raft_ports = ",".join(str(free_port()) for _ in range(3))
        grpc_ports = [free_port() for _ in range(3)]
        self.procs = []
        for i, port in enumerate(grpc_ports):
            args = [sys.executable, str(BENCH / "_node_pysyncobj_server.py"), f"--index={i}"]
            args += [f"--raft-ports={raft_ports}", f"--grpc-port={port}", f"--stubs={self.stubs_dir}"]
            args += ["--batch"] if self.batch else []
            self.procs.append(self.processes.spawn(args, self.dir / f"r{i}.log"))
        self.addresses = [f"127.0.0.1:{p}" for p in grpc_ports]
        pb2, pb2_grpc = self.stubs
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_running()
            with contextlib.suppress(TimeoutError):
                find_leader(self.addresses, pb2, pb2_grpc, timeout_s=2)
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"pysyncobj: no leader after {START_TIMEOUT_S:.0f}s; logs in {self.dir}")

    @property
    def log_dir(self) -> Path:
        return self.dir

    def stop(self) -> None:
        self.processes.stop_all()
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- load


@dataclass
class KeySource:
    """New unique 16-byte keys for puts, and a bounded sample of keys whose put succeeded, for gets."""

    rng: random.Random
    phase: int = 0
    written: list[bytes] = field(default_factory=list)

    def put_key(self, client: int, seq: int) -> bytes:
        return b"%02d%03d%011d" % (self.phase % 100, client, seq)

    def remember(self, key: bytes) -> None:
        """Record a key whose put was acknowledged (a failed put may not have happened)."""
        if len(self.written) < MAX_KEYS_REMEMBERED:
            self.written.append(key)
        else:
            self.written[self.rng.randrange(MAX_KEYS_REMEMBERED)] = key

    def get_key(self) -> bytes:
        return self.written[self.rng.randrange(len(self.written))]


async def run_phase(
    driver: Driver, workload: Workload, keys: KeySource, value: bytes, *, args: argparse.Namespace, pids: list[int]
) -> tuple[int, int, int, list[float], float, float, float]:
    """Drive one workload; return (ops, errors, wrong, latencies, seconds, client CPU s, server CPU s) of the window."""
    keys.phase += 1
    clock = time.perf_counter
    begin = clock()
    window_start = begin + args.warmup
    window_end = window_start + args.duration
    latencies: list[float] = []
    counts = {"errors": 0, "wrong": 0}
    cpu_marks: dict[str, float] = {}

    async def client(cid: int) -> None:
        seq = 0
        while len(latencies) < args.max_ops:
            t0 = clock()
            if t0 >= window_end:
                return
            if t0 >= window_start and not cpu_marks:
                cpu_marks.update(client=time.process_time(), server=cpu_seconds(pids), at=t0)
            seq += 1
            ok = right = True
            try:
                if workload.op == "put":
                    key = keys.put_key(cid, seq)
                    await driver.put(key, value)
                    keys.remember(key)
                else:
                    right = await driver.get(keys.get_key()) == value
            except Exception:  # any failure of one request is counted, never fatal to the run
                ok = False
            t1 = clock()
            if window_start <= t1 <= window_end:
                if ok:
                    latencies.append(t1 - t0)
                    counts["wrong"] += not right
                else:
                    counts["errors"] += 1
            if not ok:
                await asyncio.sleep(0.01)  # do not spin on a dead server

    budget_s = args.warmup + args.duration + PHASE_GRACE_S
    async with asyncio.timeout(budget_s), asyncio.TaskGroup() as group:
        for i in range(workload.clients):
            group.create_task(client(i))
    end = min(clock(), window_end)
    seconds = end - cpu_marks.get("at", window_start)
    client_cpu = time.process_time() - cpu_marks.get("client", time.process_time())
    server_cpu = cpu_seconds(pids) - cpu_marks.get("server", cpu_seconds(pids))
    return len(latencies), counts["errors"], counts["wrong"], latencies, seconds, client_cpu, server_cpu


async def drive_system(system: System, workloads: Sequence[Workload], args: argparse.Namespace) -> list[PhaseResult]:
    """Run every workload against a started system, in order (the puts fill the keys the gets read)."""
    rng = random.Random(args.seed)
    value = rng.randbytes(VALUE_BYTES)
    keys = KeySource(rng)
    driver = system.driver()
    results: list[PhaseResult] = []
    try:
        for workload in workloads:
            if workload.op == "get" and not keys.written:
                await driver.put(keys.put_key(0, 0), value)
                keys.remember(keys.put_key(0, 0))
            profiler = start_profiler(system, workload, args)
            try:
                ops, errs, wrong, lat, secs, ccpu, scpu = await run_phase(
                    driver, workload, keys, value, args=args, pids=system.server_pids()
                )
            finally:
                stop_profiler(profiler)
            result = PhaseResult(system.name, workload, ops, errs, wrong, secs, lat, ccpu, scpu)
            results.append(result)
            print(f"  {system.name:9} {workload.name:7} {fmt_row(result)}", flush=True)
    finally:
        await driver.close()
    return results


def fmt_row(r: PhaseResult) -> str:
    return (
        f"{r.ops_per_s:9,.0f} ops/s  p50 {r.latency_ms(0.5):7.2f} ms  p99 {r.latency_ms(0.99):7.2f} ms  "
        f"errors {r.errors}  wrong {r.wrong}  CPU ms/op: servers {r.cpu_ms_per_op(r.server_cpu_s):.2f}, "
        f"load generator {r.cpu_ms_per_op(r.client_cpu_s):.2f}"
    )


def start_profiler(system: System, workload: Workload, args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    """With ``--py-spy DIR``, record the kvstore leader during this workload (collapsed stacks, for reading)."""
    if args.py_spy is None or system.name != "kvstore":
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    pid = system.leader_pid()
    if pid is None or not Path(spy).exists():
        print(f"  (py-spy: {'no leader' if pid is None else 'not installed'}; not profiling)")
        return None
    out = Path(args.py_spy) / f"{system.name}-{workload.op}{workload.clients}-leader.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    seconds = int(args.warmup + args.duration)
    cmd = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--format", "raw", "--nonblocking", "--gil"]
    return subprocess.Popen([*cmd, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    """Wait for py-spy to finish writing, then print where the leader's CPU went (bench/_node_profile.py)."""
    if proc is None:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out = Path(proc.args[-1])  # the --output path, last on the command line
    if out.exists():
        for name, share in summarize_profile(out):
            print(f"      {share * 100:5.1f}%  {name}")


def run_one(make: Callable[[], System], workloads: Sequence[Workload], args: argparse.Namespace) -> list[PhaseResult]:
    """Start a fresh cluster, drive it, stop it (always)."""
    system = make()
    started = time.monotonic()
    try:
        system.start()
        print(f"  {system.name}: cluster up in {time.monotonic() - started:.1f}s", flush=True)
        return asyncio.run(drive_system(system, workloads, args))
    finally:
        system.stop()


# --------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class Row:
    """Medians over runs of one system and workload."""

    system: str
    workload: Workload
    runs: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    wrong: int
    server_cpu_ms_per_op: float
    client_cpu_ms_per_op: float


def summarize(results: Sequence[PhaseResult]) -> list[Row]:
    rows = []
    for system in SYSTEMS:
        for workload in WORKLOADS:
            runs = [r for r in results if r.system == system and r.workload == workload]
            if not runs:
                continue
            rows.append(
                Row(
                    system,
                    workload,
                    len(runs),
                    statistics.median(r.ops_per_s for r in runs),
                    statistics.median(r.latency_ms(0.5) for r in runs),
                    statistics.median(r.latency_ms(0.99) for r in runs),
                    sum(r.errors for r in runs),
                    sum(r.wrong for r in runs),
                    statistics.median(r.cpu_ms_per_op(r.server_cpu_s) for r in runs),
                    statistics.median(r.cpu_ms_per_op(r.client_cpu_s) for r in runs),
                )
            )
    return rows


def find_row(rows: Sequence[Row], system: str, workload: Workload) -> Row | None:
    return next((r for r in rows if r.system == system and r.workload == workload), None)


def markdown(
    rows: Sequence[Row],
    results: Sequence[PhaseResult],
    *,
    command: str,
    args: argparse.Namespace,
    missing: dict[str, str],
    load: tuple[float, float],
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} with `{command}`, Python {platform.python_version()} on {platform.machine()}, "
        f"**a shared 2-core machine** ({os.cpu_count()} CPUs visible): the three servers and the load generator "
        "share two cores with whatever else runs there (1-minute load average "
        f"{load[0]:.1f} at the start, {load[1]:.1f} at the end). Read ratios between systems measured in the same "
        "run, not absolute numbers.",
        f"Each cell is the median of {args.repeat} run(s) (systems interleaved, a fresh cluster per run); each run "
        f"measures {args.duration:g} s after {args.warmup:g} s of warm-up (at most {args.max_ops:,} ops). "
        f"kvstore code at the start: {args.code_version}. "
        f"{KEY_BYTES}-byte keys, {VALUE_BYTES}-byte values; gets are linearizable, of keys written before.",
        "",
        "| system | workload | ops/s | p50 ms | p99 ms | errors | server CPU ms/op | load-gen CPU ms/op |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.system} | {r.workload.name} | {r.ops_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.errors + r.wrong} | {r.server_cpu_ms_per_op:.2f} | {r.client_cpu_ms_per_op:.2f} |"
        )
    lines += ["", *ratio_lines(rows, results)]
    lines += ["", *NOTES]
    for name, why in missing.items():
        lines.append(f"- **{name} missing**: {why}.")
    if PLOT.exists():
        lines += ["", f"![ops/s and latency per system]({PLOT.relative_to(PERFORMANCE.parent).as_posix()})"]
    return "\n".join(lines) + "\n"


# (workload, metric, target as text, whether a ratio meets it); None: no target in the issue, shown for context.
TARGETS: tuple[tuple[Workload, str, str, Callable[[float], bool] | None], ...] = (
    (Workload("put", 64), "ops_per_s", "≥ 0.35", lambda x: x >= 0.35),
    (Workload("put", 1), "p50_ms", "≤ 1.5", lambda x: x <= 1.5),
    (Workload("get", 64), "ops_per_s", "≥ 0.35", lambda x: x >= 0.35),
    (Workload("put", 1), "ops_per_s", "", None),
    (Workload("put", 16), "ops_per_s", "", None),
)


def ratio_lines(rows: Sequence[Row], results: Sequence[PhaseResult]) -> list[str]:
    """kvstore / etcd against the issue's targets (compared, not asserted), with the paired per-run ratios."""
    out = [
        "| kvstore / etcd | ratio of medians | per run (paired) | target | met |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for workload, metric, target, met in TARGETS:
        what = f"{workload.name} {'ops/s' if metric == 'ops_per_s' else 'p50 latency'}"
        k, e = find_row(rows, "kvstore", workload), find_row(rows, "etcd", workload)
        if k is None or e is None:
            out.append(f"| {what} | n/a | | {target or '(none)'} | not measured |")
            continue
        x = getattr(k, metric) / getattr(e, metric)
        runs = sorted({r.run for r in results})
        paired = []
        for run in runs:
            kr = [r for r in results if r.run == run and r.system == "kvstore" and r.workload == workload]
            er = [r for r in results if r.run == run and r.system == "etcd" and r.workload == workload]
            if kr and er and getattr(er[0], metric) > 0:
                paired.append(f"{getattr(kr[0], metric) / getattr(er[0], metric):.2f}")
        verdict = "" if met is None else ("yes" if met(x) else "no")
        out.append(f"| {what} | {x:.2f} | {', '.join(paired)} | {target or '(none)'} | {verdict} |")
    return out


NOTES = [
    "Notes:",
    "- kvstore: 3 `kv node` processes, default config (fsync on), driven through `kvstore.AsyncClient` "
    "(routes to the leader; every call over the client's pipeline stream, batched with the other clients' calls). "
    "kvstore-unary: the same with `ClientOptions(pipeline=False)`, one unary gRPC call per operation. "
    "The nodes run gRPC's classic socket I/O (`GRPC_EXPERIMENTS`, set by the `kv` command: "
    "`kvstore.wire.configure_grpc_io`); the load generator keeps gRPC's defaults, for every system.",
    "- etcd: Debian `etcd-server` (3 members on 127.0.0.1, default settings: WAL fsync on, "
    "heartbeat 100 ms); gRPC `KV.Put` and `KV.Range` (`serializable=false`: linearizable), sent to the leader. "
    "Stubs are generated from a hand-written subset of etcd's `rpc.proto` (bench/_node_etcd.py).",
    "- pysyncobj: PySyncObj 0.3 with `SyncObjConf(appendEntriesUseBatch=False)` (its documented setting for "
    "latency; the default batches entries every 100 ms, which measured ~10 puts/s at 1 client and ~100 ms p50): "
    "**the Raft log is kept in memory and never fsynced**, so its puts do no disk I/O at all. "
    "Served by a minimal gRPC wrapper (bench/_node_pysyncobj_server.py, "
    "same API subset as etcd). PySyncObj has no ReadIndex: its linearizable gets are commands through the log.",
    "- All clients of a run share one gRPC channel in one Python process (the load generator); its CPU per op "
    "is the last column. On two cores the load generator competes with the servers, which caps every system.",
]


def plot(rows: Sequence[Row]) -> bool:
    """Bar charts of ops/s and p50/p99 latency per workload and system into docs/perf/node.png."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return False
    systems = [s for s in SYSTEMS if any(r.system == s for r in rows)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        xs = [j + i * width for j in range(len(WORKLOADS))]
        found = [find_row(rows, system, w) for w in WORKLOADS]
        left.bar(xs, [r.ops_per_s if r else 0 for r in found], width, label=system)
        right.bar(xs, [r.p50_ms if r else 0 for r in found], width, label=f"{system} p50")
        right.scatter(xs, [r.p99_ms if r else float("nan") for r in found], marker="_", s=200, color="black")
    for ax in (left, right):
        ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(WORKLOADS))])
        ax.set_xticklabels([w.name for w in WORKLOADS])
        ax.legend()
    left.set_ylabel("ops/s (median of runs)")
    right.set_ylabel("latency ms (bar p50, tick p99)")
    right.set_yscale("log")
    fig.suptitle("3-replica clusters on loopback, shared 2-core machine")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)
    return True


def code_version() -> str:
    """The commit the kvstore code was measured at, and whether kvstore/ had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
        dirty = subprocess.run(["git", "status", "--porcelain", "kvstore"], capture_output=True, text=True, cwd=REPO)
    except OSError:
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    extra = " plus uncommitted changes in kvstore/" if dirty.stdout.strip() else ""
    return f"commit {head.stdout.strip()}{extra}"


def write_section(text: str) -> None:
    doc = PERFORMANCE.read_text()
    if not SECTION.search(doc):
        raise SystemExit(f"{PERFORMANCE} has no <!-- BEGIN node --> ... <!-- END node --> section")
    PERFORMANCE.write_text(SECTION.sub(lambda m: m.group(1) + text + m.group(3), doc, count=1))


# --------------------------------------------------------------------------- setup and main


def ensure_peers(systems: Sequence[str], *, setup: bool) -> dict[str, str]:
    """Install what the peers need (unless not ``setup``); return {system: why missing}."""
    missing: dict[str, str] = {}
    if setup and (importlib.util.find_spec("pysyncobj") is None or importlib.util.find_spec("matplotlib") is None):
        _run_setup([sys.executable, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)])
    if "etcd" in systems and shutil.which("etcd") is None:
        if setup:
            _run_setup(["apt-get", "install", "-y", "etcd-server"])
        if shutil.which("etcd") is None:
            missing["etcd"] = "no `etcd` binary (`apt-get install -y etcd-server` did not provide one)"
    if "pysyncobj" in systems and importlib.util.find_spec("pysyncobj") is None:
        missing["pysyncobj"] = f"`pip install -r {REQUIREMENTS.relative_to(REPO)}` did not provide it"
    return missing


def _run_setup(cmd: list[str]) -> None:
    print("setup:", " ".join(cmd), flush=True)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=SETUP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"setup failed: {exc}")
        return
    if done.returncode != 0:
        print(f"setup failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS))
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per workload")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unrecorded load before each measurement")
    p.add_argument("--max-ops", type=int, default=500_000, help="stop a measurement after this many operations")
    p.add_argument("--repeat", type=int, default=1, help="runs per system; medians are reported")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--write", action="store_true", help="write the node section of docs/PERFORMANCE.md and the plot")
    p.add_argument("--no-setup", action="store_true", help="do not apt-get / pip install the peers")
    p.add_argument(
        "--py-spy", metavar="DIR", help="record the kvstore leader with py-spy (--gil) during each workload, summarize"
    )
    p.add_argument(
        "--pysyncobj-batch",
        action="store_true",
        help="PySyncObj's default appendEntriesUseBatch=True (entries sent every 100 ms) instead of False",
    )
    p.add_argument("--work-dir", default=None, help="where clusters keep their data (default: a temporary folder)")
    args = p.parse_args(argv)
    args.system_list = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.system_list) - set(SYSTEMS)
    if unknown or args.duration <= 0 or args.warmup < 0 or args.repeat < 1 or args.max_ops < 1:
        p.error(f"bad arguments (unknown systems: {sorted(unknown)})" if unknown else "bad numeric argument")
    return args


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt so that every ``finally`` runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    args.code_version = code_version()
    command = _command_line(argv)
    missing = ensure_peers(args.system_list, setup=not args.no_setup)
    systems = [s for s in args.system_list if s not in missing]
    for name, why in missing.items():
        print(f"{name}: missing ({why}); skipped")
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="kvbench-node-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    stubs_dir = work_dir / "stubs"
    stubs = load_stubs(stubs_dir)
    processes = Processes()
    makers: dict[str, Callable[[], System]] = {
        "kvstore": lambda: KvstoreSystem(processes, work_dir),
        "kvstore-unary": lambda: KvstoreUnarySystem(processes, work_dir),
        "etcd": lambda: EtcdSystem(processes, work_dir, stubs),
        "pysyncobj": lambda: PySyncObjSystem(processes, work_dir, stubs, stubs_dir, batch=args.pysyncobj_batch),
    }
    results: list[PhaseResult] = []
    failures: dict[str, str] = {}
    with sigterm_as_interrupt():
        try:
            for run in range(args.repeat):
                print(f"run {run + 1}/{args.repeat}", flush=True)
                for name in systems:
                    try:
                        for result in run_one(makers[name], WORKLOADS, args):
                            result.run = run
                            results.append(result)
                    except Exception as exc:  # one system failing must not lose the others' numbers
                        failures[name] = f"{type(exc).__name__}: {exc}"
                        print(f"  {name}: failed: {failures[name]}", flush=True)
        except KeyboardInterrupt:
            print("interrupted: stopping every server", flush=True)
            return 130
        finally:
            processes.stop_all()
            if args.work_dir is None:
                shutil.rmtree(work_dir, ignore_errors=True)
    rows = summarize(results)
    print()
    for r in rows:
        print(f"{r.system:13} {r.workload.name:7} {r.ops_per_s:9,.0f} ops/s  p50 {r.p50_ms:7.2f}  p99 {r.p99_ms:7.2f}")
    print("\n".join(ratio_lines(rows, results)))
    missing.update(
        {k: f"failed during the run ({v})" for k, v in failures.items() if not any(r.system == k for r in rows)}
    )
    if args.write:
        plot(rows)
        load = (load_start, os.getloadavg()[0])
        write_section(markdown(rows, results, command=command, args=args, missing=missing, load=load))
        print(f"wrote {PERFORMANCE.relative_to(REPO)} (node section) and {PLOT.relative_to(REPO)}")
    return 0 if rows else 1


def _command_line(argv: Sequence[str] | None) -> str:
    parts = list(sys.argv[1:] if argv is None else argv)
    return " ".join([".venv/bin/python bench/node_bench.py", *parts])


if __name__ == "__main__":
    raise SystemExit(main())
