"""The runner: one bounded jepsen-lite run against a fresh local cluster (``jepsen-lite run``).

Theory of operation. :func:`run` does, in order:

1. create a local cluster (``kvstore.server.local_cluster``) in a temporary folder,
   with fast Raft timing, the ``InjectFaults`` seam and the power-loss journal on
   (and a planted bug, if asked), and start it;
2. run the workload's logical clients (:mod:`jepsen_lite.workloads`) and the
   nemesis schedule (:mod:`jepsen_lite.nemesis`) concurrently for ``time_s``
   seconds in one asyncio loop, every event going to ``history.jsonl`` as it
   happens (:class:`~jepsen_lite.history.HistoryRecorder`); a progress line every
   few seconds;
3. heal everything, stop the clients, wait for a leader, do the final reads;
4. wait until every node has applied the same index, read each node's data
   locally (a ``stale`` scan, node by node) for the replicas-agree check;
5. stop the cluster — always, in ``finally``, also on Ctrl-C or an exception
   (paused nodes are resumed first so they can stop) — and copy the nodes' logs
   and traces into the run folder;
6. check the history (linearizability per key, sets) and the replicas, and write
   the run folder: ``history.jsonl``, ``results.json``, ``timeline.html``,
   ``latency.png``, ``rate.png`` (:func:`jepsen_lite.report.write_reports`) and
   ``nodes/<id>/{node.log,trace.jsonl}``.

The run's verdict is ``pass`` when the history is linearizable (sets valid) and
the replicas agree, ``fail`` when either is violated, a node stopped on a
failure (``kv node <id>: failed: ...`` in its log, e.g. a broken invariant) or
the nodes' traces show two leaders in one term (:mod:`jepsen_lite.elections`),
or two nodes' committed Raft logs hold different entries at one index
(:func:`jepsen_lite.replicas.check_logs`, read after the nodes stopped);
``unknown`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import grpc
from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE
from jepsen_lite.elections import UNSAFE, ElectionResult, check_trace_files
from jepsen_lite.history import HistoryRecorder
from jepsen_lite.models import RegisterModel
from jepsen_lite.nemesis import Nemesis, parse_kinds
from jepsen_lite.replicas import AGREE, DISAGREE, LogResult, ReplicaResult, check_logs, check_replicas
from jepsen_lite.report import HistoryVerdict, check_history, write_reports
from jepsen_lite.workloads import (
    STORE_PREFIX,
    WORKLOADS,
    WorkloadState,
    delete_client,
    final_reads,
    register_client,
    set_client,
)

from kvstore import errors, limits
from kvstore.client.client import ClientOptions
from kvstore.server.local_cluster import LocalCluster, create_cluster
from kvstore.wire import kv_pb2, kv_pb2_grpc

PASS: Final = "pass"
FAIL: Final = "fail"
UNKNOWN: Final = "unknown"
EXIT_CODES: Final = {PASS: 0, FAIL: 1, UNKNOWN: 2}
CLUSTER_UP_TIMEOUT_S: Final = 60.0  # three processes importing grpc on a loaded 2-core machine
SETTLE_TIMEOUT_S: Final = 30.0  # after the heal: a leader, then every node applied the same index
PROGRESS_EVERY_S: Final = 2.0

FAST_RAFT: Final = """
[raft]
tick_ms = 20
election_timeout_ticks = 10
heartbeat_ticks = 2
snapshot_threshold_entries = {snapshot_threshold_entries}
"""  # fast elections so a short run sees several; the [raft] section stays open for raft_toml


Echo = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What one run does. Times in seconds.

    Attributes:
        nemesis: fault kinds (``jepsen_lite.nemesis.KINDS``); empty = no faults.
        time_s: how long clients and faults run (setup, settling and checking come on top).
        planted_bug: a node ``[testing] planted_bug`` name, or None.
        keys / clients_per_key: the workload's shape (a quarter of register clients, at least one, read only).
        fault_s / heal_s: the lengths of the alternating fault and healthy intervals.
        raft_toml: more ``[raft]`` settings (TOML lines), e.g. ``check_quorum = false``.
        work_dir: where the cluster's folders go (default: a new temporary folder), removed after the run
            unless ``keep_cluster``.
        extra_config: more node TOML sections, appended after the runner's own.
        snapshot_threshold_entries: the nodes' Raft snapshot threshold (small: snapshots happen in a short
            run; large: the committed logs compared at the end still hold the whole run).
    """

    nemesis: tuple[str, ...] = ("partition", "kill")
    time_s: float = 60.0
    seed: int = 7
    workload: str = "register"
    nodes: int = 3
    out: Path | None = None
    planted_bug: str | None = None
    keys: int = 3
    clients_per_key: int = 4
    fault_s: float = 4.0
    heal_s: float = 3.0
    first_fault_after_s: float = 1.0
    request_timeout_s: float = 1.0
    deadline_s: float = 3.0
    check_time_limit_s: float = 10.0
    raft_toml: str = ""
    work_dir: Path | None = None
    extra_config: str = ""
    keep_cluster: bool = False
    snapshot_threshold_entries: int = 1000

    def validate(self) -> None:
        """Raises InvalidArgument for an impossible option."""
        if self.workload not in WORKLOADS:
            raise errors.InvalidArgument(f"unknown workload {self.workload!r}; known: {', '.join(WORKLOADS)}")
        if self.nodes < 1 or self.keys < 1 or self.clients_per_key < 1 or self.time_s <= 0:
            raise errors.InvalidArgument("--nodes, keys, clients per key and --time must be positive")
        if self.nemesis:
            parse_kinds(",".join(self.nemesis))


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run found. ``verdict`` is PASS, FAIL or UNKNOWN (module docstring)."""

    verdict: str
    folder: Path
    history: HistoryVerdict
    replicas: ReplicaResult
    faults: dict[str, dict[str, object]]
    operations: dict[str, int]
    elapsed_s: float
    seed: int
    notes: list[str] = field(default_factory=list)
    elections: ElectionResult | None = None
    logs: LogResult | None = None
    engine_levels: dict[str, dict[int, int] | None] = field(default_factory=dict)

    def deepest_level(self) -> int:
        """The deepest LSM level holding a table on every node that could be read at the end (-1: none)."""
        shapes = [levels for levels in self.engine_levels.values() if levels is not None]
        if not shapes:
            return -1
        return min(max((level for level, files in levels.items() if files), default=-1) for levels in shapes)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 2 unknown."""
        return EXIT_CODES[self.verdict]

    def fault_effect(self, kind: str) -> int:
        """The measured effect of one fault kind (0 when it never ran)."""
        effect = self.faults.get(kind, {}).get("effect", 0)
        return effect if isinstance(effect, int) else 0

    def table(self) -> str:
        """The short verdict table printed at the end of a run."""
        lin, sets = self.history.linearizability, self.history.sets
        rows = [("linearizability", f"{lin.verdict} ({len(lin.keys)} keys)" if lin else "-")]
        rows.append(("sets (lost/dup)", _sets_summary(self.history) if sets else "-"))
        differing = f", {len(self.replicas.differences)} keys differ" if self.replicas.differences else ""
        rows.append(("replicas agree", f"{self.replicas.verdict}{differing}"))
        rows.append(("committed logs agree", self.logs.summary() if self.logs else "-"))
        rows.append(("one leader a term", self.elections.summary() if self.elections else "-"))
        for kind, c in self.faults.items():
            rows.append((f"fault {kind}", f"{c['started']} started, {c['effect']} {c['unit']}"))
        ops = self.operations
        rows.append(("operations", f"{ops.get('ok', 0)} ok, {ops.get('fail', 0)} fail, {ops.get('info', 0)} info"))
        failed = [n for n in self.notes if n.startswith("node failure: ")]
        if failed:
            rows.append(("node failures", f"{len(failed)}: {failed[0].removeprefix('node failure: ')[:100]}"))
        rows.append(("RESULT", f"{self.verdict.upper()}  (seed {self.seed}, {self.elapsed_s:.1f} s, {self.folder})"))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"  {name.ljust(width)}  {text}" for name, text in rows)


def _sets_summary(verdict: HistoryVerdict) -> str:
    sets = verdict.sets
    if sets is None:
        return "-"
    lost = sum(len(k.lost) for k in sets.keys)
    dup = sum(len(k.duplicated) for k in sets.keys)
    acked = sum(k.acknowledged for k in sets.keys)
    return f"{sets.verdict} ({acked} acknowledged adds, {lost} lost, {dup} duplicated)"


def node_config(options: RunOptions) -> str:
    """The TOML every node of the run gets appended to its config."""
    testing = ["[testing]", "allow_fault_injection = true", "power_loss_journal = true"]
    if options.planted_bug:
        testing += ["allow_planted_bugs = true", f"planted_bug = {json.dumps(options.planted_bug)}"]
    raft = FAST_RAFT.format(snapshot_threshold_entries=options.snapshot_threshold_entries)
    return raft + options.raft_toml + "\n\n" + "\n".join(testing) + "\n" + options.extra_config


def run(options: RunOptions, *, echo: Echo | None = None) -> RunResult:
    """Run one bounded test (module docstring) and write its run folder.

    Raises:
        InvalidArgument: bad options.
        Unavailable: the cluster did not come up (its processes are stopped all the same).
    """
    options.validate()
    say = echo or (lambda _m: None)
    folder = options.out or Path(tempfile.mkdtemp(prefix="jepsen-lite-run-"))
    folder.mkdir(parents=True, exist_ok=True)
    cluster_root = options.work_dir or Path(tempfile.mkdtemp(prefix="jepsen-lite-cluster-"))
    cluster = LocalCluster(
        create_cluster(cluster_root / "kv", shards=1, replicas=options.nodes, extra_config=node_config(options)),
        progress=say,
    )
    rng = random.Random(options.seed)
    started = time.monotonic()
    notes: list[str] = []
    with open(folder / "history.jsonl", "w", encoding="utf-8") as stream:
        recorder = HistoryRecorder(stream)
        nemesis = Nemesis(
            cluster, recorder, kinds=options.nemesis or ("partition",), rng=random.Random(rng.getrandbits(64)),
            seed=options.seed, log=lambda m: say(f"  nemesis: {m}"),
        )
        try:
            say(f"jepsen-lite run: {options.nodes} nodes, workload {options.workload}, nemesis "
                f"{','.join(options.nemesis) or 'none'}, {options.time_s:g} s, seed {options.seed}"
                + (f", planted bug {options.planted_bug}" if options.planted_bug else ""))
            cluster.up(timeout_s=CLUSTER_UP_TIMEOUT_S)
            dumps = asyncio.run(_drive(cluster, recorder, nemesis, options, rng, say, notes))
        finally:
            for pid in nemesis.paused_pids.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            cluster.down()
            _copy_node_files(cluster, folder / "nodes")
            logs = check_logs(read_committed_logs(cluster))
            levels = engine_levels(cluster)
            if not options.keep_cluster:
                shutil.rmtree(cluster_root, ignore_errors=True)
    say("checking the history")
    history = recorder.history()
    verdict = check_history(history, RegisterModel(), time_limit_s_per_key=options.check_time_limit_s)
    replicas = check_replicas(dumps)
    elections = check_trace_files(folder / "nodes")
    failures = node_failures(folder / "nodes")
    notes.extend(f"node failure: {line}" for line in failures)
    write_reports(folder, history, verdict, title=f"jepsen-lite run (seed {options.seed})")
    ops = Counter(op.status for op in history.operations)
    result = RunResult(
        verdict=FAIL if failures or elections.verdict == UNSAFE or logs.verdict == DISAGREE
        else _run_verdict(verdict, replicas),
        folder=folder,
        history=verdict,
        replicas=replicas,
        faults=nemesis.summary() if options.nemesis else {},
        operations=dict(ops),
        elapsed_s=time.monotonic() - started,
        seed=options.seed,
        notes=notes,
        elections=elections,
        logs=logs,
        engine_levels=levels,
    )
    _write_results(folder, result, options)
    return result


def node_failures(nodes_dir: Path) -> list[str]:
    """Lines where a node reported that it stopped on a failure (``kv node <id>: failed: ...``), per node log.

    A node that dies on a broken invariant or a storage error is a finding of the run
    even when every client answer was right.
    """
    found: list[str] = []
    for log in sorted(nodes_dir.glob("*/node.log")):
        with contextlib.suppress(OSError):
            found += [line.strip() for line in log.read_text(errors="replace").splitlines() if ": failed: " in line]
    return found


def _run_verdict(verdict: HistoryVerdict, replicas: ReplicaResult) -> str:
    if verdict.verdict == NOT_LINEARIZABLE or replicas.verdict == DISAGREE:
        return FAIL
    return PASS if verdict.verdict == LINEARIZABLE and replicas.verdict == AGREE else UNKNOWN


def _write_results(folder: Path, result: RunResult, options: RunOptions) -> None:
    """results.json: the history checkers' verdicts (as ``jepsen-lite check`` writes them) plus the run's."""
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
    body = {
        **result.history.to_json(),
        "run": {
            "verdict": result.verdict,
            "elapsed_s": round(result.elapsed_s, 2),
            "operations": result.operations,
            "options": opts,
            "notes": result.notes,
        },
        "replicas": result.replicas.to_json(),
        "elections": result.elections.to_json() if result.elections else None,
        "logs": result.logs.to_json() if result.logs else None,
        "engine_levels": {n: levels for n, levels in result.engine_levels.items()},
        "faults": result.faults,
    }
    (folder / "results.json").write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")


async def _drive(
    cluster: LocalCluster,
    recorder: HistoryRecorder,
    nemesis: Nemesis,
    options: RunOptions,
    rng: random.Random,
    say: Echo,
    notes: list[str],
) -> dict[str, dict[str, object] | None]:
    """Clients and nemesis for ``time_s``, then heal, final reads, replica dumps."""
    loop = asyncio.get_running_loop()
    state = WorkloadState(
        recorder, cluster.map, ClientOptions(request_timeout_s=options.request_timeout_s, deadline_s=options.deadline_s)
    )
    kinds = ("register", "set") if options.workload == "mixed" else (options.workload,)
    keys = [f"{kind[0]}{i}" for kind in kinds for i in range(options.keys)]  # r0.. register, s0.. set
    clients: list[asyncio.Task[None]] = []
    if options.workload == "delete":  # keys d<client>.<i> are made up as the clients go
        keys = []
        for c in range(options.keys * options.clients_per_key):
            clients.append(asyncio.create_task(delete_client(state, c, rng=random.Random(rng.getrandbits(64)))))
    for key in keys:
        for i in range(options.clients_per_key):
            crng = random.Random(rng.getrandbits(64))
            if key.startswith("s"):
                clients.append(asyncio.create_task(set_client(state, key, rng=crng)))
            else:
                reads_only = i < max(1, options.clients_per_key // 4)
                clients.append(asyncio.create_task(register_client(state, key, reads_only=reads_only, rng=crng)))
    stop_at = loop.time() + options.time_s
    progress = asyncio.create_task(_progress(recorder, nemesis, stop_at, say))
    try:
        if options.nemesis:
            await nemesis.run_schedule(
                stop_at=stop_at, fault_s=options.fault_s, heal_s=options.heal_s,
                first_delay_s=options.first_fault_after_s,
            )
        else:
            await asyncio.sleep(options.time_s)
        state.stop.set()
        _, late = await asyncio.wait(clients, timeout=options.deadline_s * 3 + 5)
        if late:
            notes.append(f"{len(late)} client(s) did not finish their last operation; cancelled (left open)")
    finally:
        state.stop.set()
        for task in [*clients, progress]:
            task.cancel()
        await asyncio.gather(*clients, progress, return_exceptions=True)
        await nemesis.heal_all()
    say("healed; waiting for a leader, then final reads")
    try:
        await asyncio.to_thread(cluster.wait_for_leaders, timeout_s=SETTLE_TIMEOUT_S)
    except errors.KVError as exc:
        notes.append(f"no leader after the heal: {exc}")
    await final_reads(state, keys or sorted(state.written))
    dumps = await _replica_dumps(cluster, notes)
    await nemesis.close()
    return dumps


async def _progress(recorder: HistoryRecorder, nemesis: Nemesis, stop_at: float, say: Echo) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        events = recorder.events()
        counts = Counter(e.type for e in events if not e.is_nemesis)
        fault = nemesis.active.name if nemesis.active else "none"
        left = stop_at - loop.time()
        when = f"{left:5.1f} s left" if left > 0 else "time is up, healing"
        say(f"  [{when}] {counts['ok']} ok, {counts['fail']} fail, {counts['info']} info; fault: {fault}")


async def _replica_dumps(cluster: LocalCluster, notes: list[str]) -> dict[str, dict[str, object] | None]:
    """Each node's workload keys, read locally (stale) once every node has applied the same index."""
    down = [n for n in cluster.nodes if not cluster.is_running(n)]
    if down:
        notes.append(f"not running at the end (not compared): {', '.join(down)}")
    channels = {n: grpc.aio.insecure_channel(node.spec.address) for n, node in cluster.nodes.items() if n not in down}
    try:
        stubs = {n: kv_pb2_grpc.KVStub(ch) for n, ch in channels.items()}
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            for n in [n for n in stubs if not cluster.is_running(n)]:  # it died (e.g. on a broken invariant)
                del stubs[n]
                down.append(n)
                notes.append(f"{n} stopped before the replicas were compared (not compared)")
            applied: dict[str, int] = {}
            for n, stub in stubs.items():
                with contextlib.suppress(grpc.RpcError):
                    applied[n] = (await stub.Status(kv_pb2.StatusRequest(), timeout=1.0)).applied_index
            if len(applied) == len(stubs) and len(set(applied.values())) == 1:
                break
            if time.monotonic() > deadline:
                notes.append(f"replicas never reached the same applied index: {applied}")
                break
            await asyncio.sleep(0.1)
        dumps: dict[str, dict[str, object] | None] = {n: None for n in down}
        dumps.update({n: await _dump(stub) for n, stub in stubs.items()})
        return dumps
    finally:
        for ch in channels.values():
            await ch.close(None)


async def _dump(stub: kv_pb2_grpc.KVStub) -> dict[str, object] | None:
    out: dict[str, object] = {}
    start, end = STORE_PREFIX, STORE_PREFIX[:-1] + bytes([STORE_PREFIX[-1] + 1])
    while True:
        try:
            req = kv_pb2.ScanRequest(start=start, end=end, limit=limits.MAX_SCAN_LIMIT, stale=True)
            resp = await stub.Scan(req, timeout=5.0)  # type: ignore[misc]
        except grpc.RpcError:
            return None
        if resp.HasField("error"):
            return None
        for pair in resp.pairs:
            out[pair.key[len(STORE_PREFIX):].decode(errors="replace")] = pair.value.decode(errors="replace")
        if not resp.more or not resp.pairs:
            return out
        start = resp.pairs[-1].key + b"\x00"


def read_committed_logs(cluster: LocalCluster) -> dict[str, dict[int, tuple[int, bytes]] | None]:
    """Each stopped node's committed Raft log entries, index -> (term, data); None when unreadable.

    Opens the node's durable log the way the node would on restart (which repairs a torn
    tail, as the next start would anyway). Entries above the durable commit index are left
    out: they may still be legitimately replaced.
    """
    from kvstore.server.raft_log import DurableRaftLog

    out: dict[str, dict[int, tuple[int, bytes]] | None] = {}
    for node_id, node in cluster.nodes.items():
        directory = node.folder / "data" / "raft"
        out[node_id] = None
        if not directory.is_dir():
            continue
        try:
            log = DurableRaftLog.open(str(directory))
            try:
                restored = log.load()
            finally:
                log.close()
        except (errors.KVError, OSError):
            continue
        commit = restored.hard_state.commit_index
        out[node_id] = {e.index: (e.term, e.data) for e in restored.entries if e.index <= commit}
    return out


def engine_levels(cluster: LocalCluster) -> dict[str, dict[int, int] | None]:
    """Each stopped node's LSM shape at the end: level -> number of tables (None when unreadable).

    Shows that a run meant to exercise compaction (the ``[storage]`` level shape) really
    had tables in deep levels. Opens the engine without background work, so nothing moves.
    """
    from kvstore.lsm.engine import Engine

    out: dict[str, dict[int, int] | None] = {}
    for node_id, node in cluster.nodes.items():
        path = node.folder / "data" / "engine"
        out[node_id] = None
        if not path.is_dir():
            continue
        try:
            engine = Engine.open(str(path), background=False)
            try:
                out[node_id] = {s.level: s.files for s in engine.stats().levels}
            finally:
                engine.close()
        except (errors.KVError, OSError):
            continue
    return out


def _copy_node_files(cluster: LocalCluster, target: Path) -> None:
    """Copy each node's log and trace into ``target/<node id>/`` (best effort)."""
    for node_id, node in cluster.nodes.items():
        dest = target / node_id
        dest.mkdir(parents=True, exist_ok=True)
        for src in (node.folder / "node.log", node.folder / "data" / "trace.jsonl", node.folder / "node.toml"):
            with contextlib.suppress(OSError):
                shutil.copy2(src, dest / src.name)
