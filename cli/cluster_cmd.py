"""`kv cluster ...` and `kv logs`: a local cluster of node processes for experiments."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import click

from kvstore.client.cluster import find_cluster_file, remember_cluster
from kvstore.server.local_cluster import LocalCluster, create_cluster
from kvstore.trace import TraceEvent, read_trace

from .common import Options, guarded, pass_opts, print_status


def _local(opts: Options) -> LocalCluster:
    return LocalCluster(Path(find_cluster_file(opts.cluster)), progress=lambda m: click.echo(m, err=True))


@click.group()
def cluster() -> None:
    """Start, inspect, break and stop a local cluster of node processes.

    \b
    Examples:
      kv cluster up --shards 2 --replicas 1 --dir /tmp/kv
      kv cluster status
      kv cluster kill n1 && kv cluster restart n1
      kv cluster down
    """


@cluster.command()
@click.option("--shards", type=click.IntRange(1, 64), default=1, show_default=True, help="Number of shards.")
@click.option("--replicas", type=click.IntRange(1, 7), default=1, show_default=True, help="Replicas per shard.")
@click.option("--dir", "directory", default="kv-cluster", show_default=True, help="Folder for configs, data, logs.")
@click.option(
    "--timeout", "timeout_s", type=float, default=60.0, show_default=True, help="Seconds to wait for leaders."
)
def up(shards: int, replicas: int, directory: str, timeout_s: float) -> None:
    """Create DIR, start every node, and wait until each shard has a leader.

    Writes DIR/cluster.toml and remembers it, so later `kv` commands need no --cluster.

    \b
    Example:
      kv cluster up --shards 2 --replicas 3 --dir /tmp/kv
    """

    def run() -> None:
        cluster_file = create_cluster(Path(directory), shards=shards, replicas=replicas)
        click.echo(f"created {shards} shard(s) x {replicas} replica(s) in {directory}", err=True)
        local = LocalCluster(cluster_file, progress=lambda m: click.echo(m, err=True))
        try:
            local.up(timeout_s=timeout_s)
        except BaseException:
            local.down()
            raise
        remember_cluster(cluster_file)
        click.echo(f"cluster is up; cluster file: {cluster_file} (remembered for later kv commands)")

    guarded(run)


@cluster.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of nodes (id, shard, role, term, ...).")
@pass_opts
def cluster_status(opts: Options, as_json: bool) -> None:
    """Show a table: shard, node, role, term, leader, commit and applied index, keys, disk bytes.

    \b
    Example:
      kv cluster status --json
    """
    guarded(lambda: print_status(opts, as_json))


@cluster.command()
@pass_opts
def down(opts: Options) -> None:
    """Stop every node of the cluster gracefully.

    \b
    Example:
      kv cluster down
    """

    def run() -> None:
        stopped = _local(opts).down()
        click.echo(f"stopped {stopped} node(s)")

    guarded(run)


@cluster.command()
@click.argument("node_id")
@pass_opts
def kill(opts: Options, node_id: str) -> None:
    """SIGKILL node NODE_ID (a crash, for experiments).

    \b
    Example:
      kv cluster kill n1
    """

    def run() -> None:
        pid = _local(opts).kill(node_id)
        click.echo(f"killed {node_id} (pid {pid})")

    guarded(run)


@cluster.command()
@click.argument("node_id")
@pass_opts
def restart(opts: Options, node_id: str) -> None:
    """Start node NODE_ID again (after `kill` or `down`) and wait until it answers.

    \b
    Example:
      kv cluster restart n1
    """

    def run() -> None:
        pid = _local(opts).restart(node_id)
        click.echo(f"restarted {node_id} (pid {pid})")

    guarded(run)


def format_event(e: TraceEvent) -> str:
    """One readable line: wall time, node, term, role, event, fields."""
    when = datetime.datetime.fromtimestamp(e.time, tz=datetime.UTC).strftime("%H:%M:%S.%f")[:-3]
    fields = " ".join(f"{k}={json.dumps(v)}" for k, v in e.fields.items())
    return f"{when}  {e.node:<5} t{e.term:<4} {e.role:<10} {e.event:<22} {fields}".rstrip()


@click.command()
@click.option("--node", "nodes", multiple=True, help="Only these nodes (repeatable).")
@click.option("--event", "events", multiple=True, help="Only these event names (repeatable).")
@click.option("--tail", type=click.IntRange(min=1), default=None, help="Only the last N events.")
@pass_opts
def logs(opts: Options, nodes: tuple[str, ...], events: tuple[str, ...], tail: int | None) -> None:
    """Merge every node's trace events into one timeline, oldest first.

    \b
    Example:
      kv logs --tail 50 --event became_leader
    """

    def run() -> None:
        merged: list[TraceEvent] = []
        for path in _local(opts).trace_files():
            merged.extend(read_trace(str(path)))
        merged.sort(key=lambda e: (e.time, e.node))
        chosen = [e for e in merged if (not nodes or e.node in nodes) and (not events or e.event in events)]
        for e in chosen[-tail:] if tail else chosen:
            click.echo(json.dumps(e.to_json()) if opts.as_json else format_event(e))

    guarded(run)
