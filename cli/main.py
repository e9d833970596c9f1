"""The ``kv`` command: data operations, a node, and (as they land) cluster tools.

Exit codes (also in ``kv --help`` and docs/cli.md):

====  =====================================================================
0     success (for ``get``: the key was found)
1     not found (``get``, ``del`` of a missing key; ``cas`` that did not swap)
2     bad input: usage error, invalid or oversized key/value, bad config file
3     failed, and certainly did not happen (node not running, not serving)
4     outcome unknown: a write may or may not have happened
====  =====================================================================

Every error is one line on stderr, ``kv: error: ...``; never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, NoReturn, TypeVar

import click

from kvstore import errors
from kvstore.client.client import Client

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_FAILED = 3
EXIT_UNKNOWN = 4

ENCODINGS = ("text", "hex", "base64")

T = TypeVar("T")


class Options:
    """Global options shared by every subcommand (click's context object)."""

    def __init__(self, cluster: str | None, encoding: str, as_json: bool, timeout: float) -> None:
        self.cluster = cluster
        self.encoding = encoding
        self.as_json = as_json
        self.timeout = timeout
        self._client: Client | None = None

    def client(self) -> Client:
        """The data client, created on first use from the cluster file."""
        if self._client is None:
            from kvstore.client.client import ClientOptions

            opts = ClientOptions(request_timeout_s=self.timeout, deadline_s=self.timeout)
            self._client = Client(self.cluster, options=opts)
        return self._client

    def decode_arg(self, what: str, text: str) -> bytes:
        """Turn a command-line KEY or VALUE into bytes per --encoding."""
        try:
            if self.encoding == "hex":
                return bytes.fromhex(text)
            if self.encoding == "base64":
                return base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raise errors.InvalidArgument(f"{what} is not valid {self.encoding}: {text[:40]!r}") from None
        return text.encode("utf-8", errors="surrogateescape")

    def encode_out(self, data: bytes) -> str:
        """Render bytes for output per --encoding (text shows undecodable bytes escaped)."""
        if self.encoding == "hex":
            return data.hex()
        if self.encoding == "base64":
            return base64.b64encode(data).decode("ascii")
        return data.decode("utf-8", errors="backslashreplace")


def fail(message: str, code: int) -> NoReturn:
    """Print one error line and exit with ``code``."""
    click.echo(f"kv: error: {message}", err=True)
    sys.exit(code)


def exit_code_for(exc: errors.KVError) -> int:
    """The documented exit code of an error."""
    if isinstance(exc, (errors.InvalidArgument, errors.ConfigError)):
        return EXIT_BAD_INPUT
    return EXIT_FAILED if exc.definite else EXIT_UNKNOWN


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn any error into one line and the documented exit code."""
    try:
        return fn()
    except errors.KVError as exc:
        fail(str(exc), exit_code_for(exc))
    except KeyboardInterrupt:
        fail("interrupted", EXIT_UNKNOWN)
    except Exception as exc:  # a bug: still no traceback for the user
        fail(f"internal error ({type(exc).__name__}: {exc}); this is a bug in kv, please report it", EXIT_FAILED)


def emit(opts: Options, text: str, payload: dict[str, Any]) -> None:
    """Print the human ``text`` or, with --json, the payload as one JSON object."""
    click.echo(json.dumps(payload) if opts.as_json else text)


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


pass_opts = click.make_pass_decorator(Options)


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
    """Delete KEY; the same as ``kv del``."""
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
@pass_opts
def status(opts: Options) -> None:
    """Show every node of the cluster: shard, role, term, indexes, keys."""

    def run() -> None:
        client = opts.client()
        rows: list[dict[str, Any]] = []
        for shard in client.cluster.shards:
            for replica in shard.replicas:
                try:
                    s = asdict(client.status(replica.address))
                    s["id"] = s.pop("node_id")
                except errors.Unavailable:
                    s = {"id": replica.id, "shard": shard.name, "role": "down"}
                s["address"] = replica.address
                rows.append(s)
        if opts.as_json:
            click.echo(json.dumps(rows))
            return
        click.echo(f"{'shard':8} {'node':8} {'address':22} {'role':11} {'term':>5} {'applied':>8} {'keys':>8}")
        for r in rows:
            click.echo(
                f"{r['shard']:8} {r['id']:8} {r['address']:22} {r['role']:11} {r.get('term', ''):>5} "
                f"{r.get('applied_index', ''):>8} {r.get('keys', ''):>8}"
            )

    guarded(run)


@cli.command()
@click.argument("node_id")
@click.option("--grace", type=float, default=5.0, show_default=True, help="Seconds to finish accepted work.")
@pass_opts
def shutdown(opts: Options, node_id: str, grace: float) -> None:
    """Ask node NODE_ID to shut down gracefully."""

    def run() -> None:
        client = opts.client()
        _, replica = client.cluster.replica(node_id)
        client.shutdown_node(replica.address, grace_seconds=grace)
        emit(opts, f"{node_id}: shutting down", {"ok": True})

    guarded(run)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="kv")


if __name__ == "__main__":
    main()
