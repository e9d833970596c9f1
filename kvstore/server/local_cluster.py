"""A cluster of node processes on this machine: ``kv cluster up / status / kill / restart / down``.

Theory of operation. :func:`create_cluster` lays out a directory::

    DIR/
      cluster.toml           the cluster file clients read (shards, replicas, config paths)
      n1/node.toml           one config per node: id, listen address, peers, data_dir
      n1/data/               the node's data, including data/trace.jsonl
      n1/node.log            the node's stdout and stderr
      n1/pid                 the running process id (removed when it stops)

Nodes are started as detached processes (their own session), so they outlive
the ``kv cluster up`` command that started them; every later command finds
them again through the cluster file and the pid files. A pid file is trusted
only if that process's command line still names the node's config, so a
recycled pid is never signalled. Ports are chosen free at creation time on
127.0.0.1 only.

Every wait is bounded; progress is reported through an optional callback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kvstore import errors
from kvstore.client.cluster import ClusterMap, ReplicaSpec, ShardSpec, dump_cluster, load_cluster
from kvstore.invariants import invariant
from kvstore.server.launcher import NodeProcess, free_port
from kvstore.server.power_loss import JOURNAL_NAME, PowerLossReport, simulate_power_loss
from kvstore.types import NodeStatus

if TYPE_CHECKING:
    from kvstore.client.client import Client

Progress = Callable[[str], None]


def create_cluster(directory: Path, *, shards: int, replicas: int, extra_config: str = "") -> Path:
    """Write configs and a cluster file for ``shards`` x ``replicas`` nodes; return the cluster file.

    ``extra_config`` is TOML appended to every node's config (for example a
    ``[raft]`` section with faster ticks, or ``[testing]`` switches).

    Raises:
        InvalidArgument: non-positive counts, or ``directory`` already holds a cluster.
    """
    if shards < 1 or replicas < 1:
        raise errors.InvalidArgument("--shards and --replicas must be at least 1")
    if (directory / "cluster.toml").exists():
        raise errors.InvalidArgument(f"{directory} already holds a cluster; use another --dir or `kv cluster down`")
    directory.mkdir(parents=True, exist_ok=True)
    specs: list[ShardSpec] = []
    number = 0
    for s in range(shards):
        members: list[ReplicaSpec] = []
        for _ in range(replicas):
            number += 1
            node_id = f"n{number}"
            config = directory / node_id / "node.toml"
            members.append(ReplicaSpec(node_id, f"127.0.0.1:{free_port()}", config=str(config.resolve())))
        for r in members:
            peers = [p for p in members if p.id != r.id]
            _write_node_config(Path(r.config), r, shard=f"s{s}", peers=peers, extra=extra_config)
        specs.append(ShardSpec(f"s{s}", members))
    cluster_file = directory / "cluster.toml"
    cluster_file.write_text(dump_cluster(ClusterMap(specs)))
    return cluster_file


def _write_node_config(path: Path, me: ReplicaSpec, *, shard: str, peers: list[ReplicaSpec], extra: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "[node]",
        f"id = {json.dumps(me.id)}",
        f"listen = {json.dumps(me.address)}",
        'data_dir = "data"',
        f"shard = {json.dumps(shard)}",
        "",
    ]
    for p in peers:
        lines += ["[[peers]]", f"id = {json.dumps(p.id)}", f"address = {json.dumps(p.address)}", ""]
    path.write_text("\n".join(lines) + extra)


@dataclass
class LocalNode:
    """One node of a local cluster and where its files are."""

    shard: str
    spec: ReplicaSpec

    @property
    def folder(self) -> Path:
        """The node's folder (holds node.toml, node.log, pid, data/)."""
        return Path(self.spec.config).parent

    @property
    def pid_file(self) -> Path:
        """Where the running process id is recorded."""
        return self.folder / "pid"

    def process(self) -> NodeProcess:
        """A handle to (re)start this node's process."""
        return NodeProcess(self.spec.config, self.spec.address, log_path=str(self.folder / "node.log"))

    def running_pid(self) -> int | None:
        """The pid of this node's live process, or None (stale pid files are ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if self.spec.config.encode() in cmdline else None


class LocalCluster:
    """Start, inspect and stop the node processes of a cluster directory."""

    def __init__(self, cluster_file: Path, *, progress: Progress | None = None) -> None:
        self.cluster_file = cluster_file
        self.map = load_cluster(str(cluster_file))
        self.progress = progress or (lambda _msg: None)
        self.nodes = {r.id: LocalNode(s.name, r) for s in self.map.shards for r in s.replicas}
        # Processes this object started, kept so they can be reaped (a CLI run leaves them detached).
        self._children: dict[str, NodeProcess] = {}
        for node in self.nodes.values():
            if not node.spec.config:
                raise errors.ConfigError(f"{cluster_file}: node {node.spec.id} has no config path; not a local cluster")

    def node(self, node_id: str) -> LocalNode:
        """The node called ``node_id``.

        Raises:
            ConfigError: no such node.
        """
        if node_id not in self.nodes:
            raise errors.ConfigError(f"no node {node_id!r} in {self.cluster_file} (nodes: {', '.join(self.nodes)})")
        return self.nodes[node_id]

    def is_running(self, node_id: str) -> bool:
        """Whether the node's process is alive (a child we just started counts before it has exec'd)."""
        child = self._children.get(node_id)
        if child is not None:
            return child.alive()
        return self.node(node_id).running_pid() is not None

    def start(self, node_id: str) -> int:
        """Start one node (if it is not running); return its pid."""
        node = self.node(node_id)
        pid = node.running_pid()
        if pid is not None:
            return pid
        proc = node.process().start()
        self._children[node_id] = proc
        node.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def up(self, *, timeout_s: float = 60.0) -> None:
        """Start every node and wait until every shard has a leader (or a standalone node)."""
        for node_id in self.nodes:
            self.start(node_id)
        self.progress(f"started {len(self.nodes)} node processes; waiting for every shard to have a leader")
        self.wait_for_leaders(timeout_s=timeout_s)

    def wait_for_leaders(self, *, timeout_s: float) -> dict[str, str]:
        """Poll until each shard has a serving leader; return shard -> leader id.

        Raises:
            Unavailable: some shard has no leader after ``timeout_s`` (names it, with log tails).
        """
        from kvstore.client.client import Client, ClientOptions

        deadline = time.monotonic() + timeout_s
        opts = ClientOptions(request_timeout_s=0.5, deadline_s=0.5)
        last_count = -1
        with Client(self.map, options=opts) as client:
            while True:
                leaders = self._leaders(client)
                missing = [s.name for s in self.map.shards if s.name not in leaders]
                if not missing:
                    return leaders
                for node_id, node in self.nodes.items():
                    if not self.is_running(node_id):
                        tail = node.process().log_tail()
                        raise errors.Unavailable(f"node {node_id} is not running: {tail}")
                if time.monotonic() > deadline:
                    raise errors.Unavailable(f"no leader after {timeout_s:.0f}s for shard(s) {', '.join(missing)}")
                if len(leaders) != last_count:
                    self.progress(f"  shards with a leader: {len(leaders)}/{len(self.map.shards)}")
                    last_count = len(leaders)
                time.sleep(0.2)

    def _leaders(self, client: Client) -> dict[str, str]:
        leaders: dict[str, str] = {}
        for row in self.status(client):
            if row.role in ("leader", "standalone"):
                leaders.setdefault(row.shard, row.node_id)
        return leaders

    def status(self, client: Client | None = None) -> list[NodeStatus]:
        """One row per node; a node that does not answer has role ``down``."""
        from kvstore.client.client import Client, ClientOptions

        own = client is None
        c = client or Client(self.map, options=ClientOptions(request_timeout_s=1.0))
        rows: list[NodeStatus] = []
        try:
            for node in self.nodes.values():
                try:
                    rows.append(c.status(node.spec.address))
                except errors.Unavailable:
                    rows.append(NodeStatus(node_id=node.spec.id, shard=node.shard, role="down"))
        finally:
            if own:
                c.close()
        return rows

    def kill(self, node_id: str) -> int:
        """SIGKILL one node (a crash); return the pid that was killed.

        Raises:
            Unavailable: the node is not running.
        """
        node = self.node(node_id)
        pid = node.running_pid()
        if pid is None:
            raise errors.Unavailable(f"node {node_id} is not running")
        os.kill(pid, signal.SIGKILL)
        self._reap(node_id)
        _wait_gone(pid, timeout_s=10)
        node.pid_file.unlink(missing_ok=True)
        return pid

    def power_loss(self, node_id: str) -> PowerLossReport:
        """SIGKILL one node, then drop every byte it had not fsynced (needs ``[testing] power_loss_journal``).

        Raises:
            InvalidArgument: the node does not journal its fsyncs.
        """
        node = self.node(node_id)
        data = node.folder / "data"
        if not (data / JOURNAL_NAME).exists():
            raise errors.InvalidArgument(f"node {node_id} has no power-loss journal; set [testing] power_loss_journal")
        if self.is_running(node_id):
            self.kill(node_id)
        return simulate_power_loss(str(data))

    def wait_exit(self, node_id: str, *, timeout_s: float) -> int | None:
        """Wait for a node this object started to exit on its own; return its exit code (None: still running)."""
        child = self._children.get(node_id)
        if child is None:
            raise errors.InvalidArgument(f"node {node_id} was not started by this process")
        code = child.wait(timeout_s)
        if code is not None:
            self._children.pop(node_id, None)
            self.node(node_id).pid_file.unlink(missing_ok=True)
        return code

    def _reap(self, node_id: str, timeout_s: float = 10.0) -> None:
        child = self._children.pop(node_id, None)
        if child is not None:
            child.wait(timeout_s)

    def restart(self, node_id: str, *, timeout_s: float = 30.0) -> int:
        """Start a stopped or killed node again and wait until it answers; return its pid."""
        node = self.node(node_id)
        if node.running_pid() is not None:
            self.stop(node_id)
        pid = self.start(node_id)
        node.process().wait_ready(timeout_s, alive=lambda: self.is_running(node_id))
        return pid

    def stop(self, node_id: str, *, grace_s: float = 10.0) -> None:
        """Stop one node gracefully (SIGTERM, then SIGKILL after ``grace_s``)."""
        node = self.node(node_id)
        pid = node.running_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if node_id in self._children:
                self._reap(node_id, grace_s)
            if not _wait_gone(pid, timeout_s=grace_s):
                os.kill(pid, signal.SIGKILL)
                self._reap(node_id)
                _wait_gone(pid, timeout_s=5)
        self._reap(node_id)
        node.pid_file.unlink(missing_ok=True)

    def down(self) -> int:
        """Stop every node (SIGTERM to all at once, then wait; SIGKILL stragglers); return how many ran."""
        running = [n for n in self.nodes if self.is_running(n)]
        for node_id in running:
            pid = self.nodes[node_id].running_pid()
            child = self._children.get(node_id)
            if pid is None and child is not None and child.alive():
                pid = child.pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        for node_id in running:
            self.stop(node_id)
        for node_id, child in list(self._children.items()):
            child.stop(grace_s=1.0)
            self._children.pop(node_id, None)
        return len(running)

    def trace_files(self) -> list[Path]:
        """Every node's trace file that exists."""
        return [p for n in self.nodes.values() if (p := n.folder / "data" / "trace.jsonl").exists()]


@contextlib.contextmanager
def running_cluster(
    directory: Path, *, shards: int = 1, replicas: int = 3, extra_config: str = "", timeout_s: float = 60.0
) -> Iterator[LocalCluster]:
    """A cluster created in ``directory`` and started; stopped on exit whatever happened inside.

    For tests and scripts: ``with running_cluster(tmp / "kv", extra_config=FAST) as cluster: ...``.

    Raises:
        Unavailable: a node did not come up within ``timeout_s``.
        InvariantViolation: on exit, a node process outlived ``down()``.
    """
    local = LocalCluster(create_cluster(directory, shards=shards, replicas=replicas, extra_config=extra_config))
    try:
        local.up(timeout_s=timeout_s)
        yield local
    finally:
        local.down()
        invariant(all(n.running_pid() is None for n in local.nodes.values()), "every node process stopped")


def _wait_gone(pid: int, *, timeout_s: float) -> bool:
    """Wait until process ``pid`` has exited (reaping it if it is our child)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass  # not our child: fall through to the liveness probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").exists() and " Z " in Path(f"/proc/{pid}/stat").read_text():
            return True  # a zombie whose parent has not reaped it yet is gone for our purposes
        time.sleep(0.05)
    return False


