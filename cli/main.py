"""The ``kv`` command: data operations, a node, a local cluster, and its logs.

Exit codes and shared behaviour are defined in :mod:`kvstore_cli.common`
(also in ``kv --help`` and docs/cli.md): 0 ok, 1 not found, 2 bad input,
3 failed (did not happen), 4 outcome unknown. Every error is one line on
stderr; never a traceback.
"""

from __future__ import annotations

import json
import sys

import click

from .cluster_cmd import cluster, logs
from .common import (
    ENCODINGS,
    EXIT_NOT_FOUND,
    Options,
    emit,
    guarded,
    pass_opts,
    print_status,
)

EPILOG = """\b
Exit codes: 0 ok/found, 1 not found, 2 bad input, 3 failed (did not happen),
4 outcome unknown (a write may have happened).

\b
Examples:
  kv --cluster cluster.toml put greeting hello
  kv --cluster cluster.toml get greeting
  KV_CLUSTER=cluster.toml kv del greeting
  kv node --config node.toml
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--cluster",
    metavar="FILE",
    envvar="KV_CLUSTER",
    help="Cluster file naming shards and replicas (or set KV_CLUSTER).",
)
@click.option(
    "--encoding",
    type=click.Choice(ENCODINGS),
    default="text",
    show_default=True,
    help="How keys and values are written on the command line and printed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Per-request timeout in seconds.")
@click.version_option(package_name="kvstore", prog_name="kv")
@click.pass_context
def cli(ctx: click.Context, cluster: str | None, encoding: str, as_json: bool, timeout: float) -> None:
    """kv: talk to a kvstore cluster, or run a node."""
    ctx.obj = Options(cluster, encoding, as_json, timeout)


@cli.command()
@click.argument("key")
@click.argument("value")
@pass_opts
def put(opts: Options, key: str, value: str) -> None:
    """Store VALUE under KEY; print the previous value if there was one.

    \b
    Example:
      kv put greeting hello
    """

    def run() -> None:
        k, v = opts.decode_arg("key", key), opts.decode_arg("value", value)
        prev = opts.client().put(k, v)
        text = "OK" if prev is None else f"OK (previous: {opts.encode_out(prev)})"
        emit(opts, text, {"ok": True, "previous": None if prev is None else opts.encode_out(prev)})

    guarded(run)


@cli.command()
@click.argument("key")
@click.option("--stale", is_flag=True, help="Read locally without confirming leadership (may be out of date).")
@pass_opts
def get(opts: Options, key: str, stale: bool) -> None:
    """Print the value under KEY (exit code 1 if there is none).

    \b
    Example:
      kv get greeting
    """

    def run() -> None:
        value = opts.client().get(opts.decode_arg("key", key), stale=stale)
        if value is None:
            emit(opts, "(not found)", {"found": False, "value": None})
            sys.exit(EXIT_NOT_FOUND)
        emit(opts, opts.encode_out(value), {"found": True, "value": opts.encode_out(value)})

    guarded(run)


def _delete(opts: Options, key: str) -> None:
    def run() -> None:
        existed = opts.client().delete(opts.decode_arg("key", key))
        emit(opts, "deleted" if existed else "(not found)", {"existed": existed})
        if not existed:
            sys.exit(EXIT_NOT_FOUND)

    guarded(run)


@cli.command(name="del")
@click.argument("key")
@pass_opts
def del_(opts: Options, key: str) -> None:
    """Delete KEY (exit code 1 if it did not exist).

    \b
    Example:
      kv del greeting
    """
    _delete(opts, key)


@cli.command(name="delete")
@click.argument("key")
@pass_opts
def delete(opts: Options, key: str) -> None:
    """Delete KEY; the same as ``kv del``.

    \b
    Example:
      kv delete greeting
    """
    _delete(opts, key)


@cli.command()
@click.argument("key")
@click.argument("old")
@click.argument("new")
@click.option("--absent", is_flag=True, help="Swap only if KEY does not exist (OLD is ignored; pass '').")
@pass_opts
def cas(opts: Options, key: str, old: str, new: str, absent: bool) -> None:
    """Set KEY to NEW only if it currently holds OLD (exit code 1 if it did not).

    \b
    Example:
      kv cas counter 1 2
    """

    def run() -> None:
        expected = None if absent else opts.decode_arg("old value", old)
        result = opts.client().cas(opts.decode_arg("key", key), expected, opts.decode_arg("new value", new))
        current = None if result.current is None else opts.encode_out(result.current)
        if result.swapped:
            emit(opts, "swapped", {"swapped": True, "previous": current})
        else:
            emit(
                opts,
                f"not swapped (current: {current if current is not None else '(absent)'})",
                {"swapped": False, "current": current},
            )
            sys.exit(EXIT_NOT_FOUND)

    guarded(run)


@cli.command()
@click.option("--start", default=None, help="First key (inclusive); default: the smallest key.")
@click.option("--end", default=None, help="Last key (exclusive); default: past the largest key.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many pairs.")
@click.option("--reverse", is_flag=True, help="Descending key order.")
@pass_opts
def scan(opts: Options, start: str | None, end: str | None, limit: int | None, reverse: bool) -> None:
    """Print KEY<tab>VALUE lines for keys in [--start, --end), in key order.

    \b
    Example:
      kv scan --start user/ --end user0 --limit 10
    """

    def run() -> None:
        lo = None if start is None else opts.decode_arg("start key", start)
        hi = None if end is None else opts.decode_arg("end key", end)
        pairs = opts.client().scan(lo, hi, limit=limit, reverse=reverse)
        if opts.as_json:
            click.echo(json.dumps([{"key": opts.encode_out(k), "value": opts.encode_out(v)} for k, v in pairs]))
            return
        for k, v in pairs:
            click.echo(f"{opts.encode_out(k)}\t{opts.encode_out(v)}")

    guarded(run)


def _neighbour(opts: Options, key: str, *, after: bool) -> None:
    def run() -> None:
        client = opts.client()
        k = opts.decode_arg("key", key)
        found = client.next(k) if after else client.prev(k)
        if found is None:
            emit(opts, "(none)", {"found": False})
            sys.exit(EXIT_NOT_FOUND)
        k2, v2 = opts.encode_out(found[0]), opts.encode_out(found[1])
        emit(opts, f"{k2}\t{v2}", {"found": True, "key": k2, "value": v2})

    guarded(run)


@cli.command(name="next")
@click.argument("key")
@pass_opts
def next_(opts: Options, key: str) -> None:
    """Print the first KEY<tab>VALUE after KEY in key order (exit code 1 if none).

    \b
    Example:
      kv next user:0041
    """
    _neighbour(opts, key, after=True)


@cli.command()
@click.argument("key")
@pass_opts
def prev(opts: Options, key: str) -> None:
    """Print the last KEY<tab>VALUE before KEY in key order (exit code 1 if none).

    \b
    Example:
      kv prev user:0041
    """
    _neighbour(opts, key, after=False)


@cli.command()
@click.option("--config", "config_path", required=True, metavar="FILE", help="The node's TOML configuration.")
def node(config_path: str) -> None:
    """Run one node in the foreground until SIGTERM, Ctrl-C or `kv shutdown`.

    \b
    Example:
      kv node --config node.toml
    """
    from kvstore.config import load_node_config
    from kvstore.server.node import run_node

    guarded(lambda: run_node(load_node_config(config_path)))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of nodes.")
@pass_opts
def status(opts: Options, as_json: bool) -> None:
    """Show every node of the cluster (the same as `kv cluster status`).

    \b
    Example:
      kv status --json
    """
    guarded(lambda: print_status(opts, as_json))


@cli.command()
@click.argument("node_id")
@click.option("--grace", type=float, default=5.0, show_default=True, help="Seconds to finish accepted work.")
@pass_opts
def shutdown(opts: Options, node_id: str, grace: float) -> None:
    """Ask node NODE_ID to shut down gracefully.

    \b
    Example:
      kv shutdown n3 --grace 10
    """

    def run() -> None:
        client = opts.client()
        _, replica = client.cluster.replica(node_id)
        client.shutdown_node(replica.address, grace_seconds=grace)
        emit(opts, f"{node_id}: shutting down", {"ok": True})

    guarded(run)


cli.add_command(cluster)
cli.add_command(logs)


@cli.command(
    name="sim",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.pass_context
def sim(ctx: click.Context) -> None:
    """Run the deterministic Raft simulator (`kv sim --help` for its options)."""
    from .sim_cmd import sim as sim_command  # imported on use: the simulator is not needed by data commands

    sim_command.main(args=ctx.args, prog_name="kv sim", standalone_mode=True)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="kv")


if __name__ == "__main__":
    main()
