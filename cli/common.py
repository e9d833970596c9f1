"""What every ``kv`` subcommand shares: global options, exit codes, error handling, output.

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
from kvstore.types import NodeStatus

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


pass_opts = click.make_pass_decorator(Options)


STATUS_COLUMNS = [
    ("shard", "shard", 6),
    ("node", "node_id", 6),
    ("role", "role", 10),
    ("term", "term", 5),
    ("leader", "leader_id", 7),
    ("commit", "commit_index", 7),
    ("applied", "applied_index", 8),
    ("keys", "keys", 7),
    ("disk bytes", "disk_bytes", 11),
]


def print_status(opts: Options, as_json: bool) -> None:
    """The status table (or JSON list) of every node in the cluster."""
    client = opts.client()
    rows: list[NodeStatus] = []
    for shard in client.cluster.shards:
        for replica in shard.replicas:
            try:
                rows.append(client.status(replica.address))
            except errors.Unavailable:
                rows.append(NodeStatus(node_id=replica.id, shard=shard.name, role="down"))
    if as_json or opts.as_json:
        out = []
        for r in rows:
            d = asdict(r)
            d["id"] = d.pop("node_id")
            out.append(d)
        click.echo(json.dumps(out))
        return
    click.echo(
        " ".join(f"{title:>{w}}" if i > 2 else f"{title:<{w}}" for i, (title, _, w) in enumerate(STATUS_COLUMNS))
    )
    for r in rows:
        d = asdict(r)
        cells = []
        for i, (_, field_name, w) in enumerate(STATUS_COLUMNS):
            value = d[field_name] if r.role != "down" or field_name in ("shard", "node_id", "role") else "-"
            cells.append(f"{value!s:>{w}}" if i > 2 else f"{value!s:<{w}}")
        click.echo(" ".join(cells))
