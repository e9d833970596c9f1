"""The kv command's gRPC I/O switch (kvstore.wire.configure_grpc_io)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

from kvstore.wire import (
    GRPC_IO_EXPERIMENTS,
    GRPC_IO_EXPERIMENTS_VERSIONS,
    _installed_grpcio_version,
    configure_grpc_io,
)

MEASURED = ".".join(map(str, GRPC_IO_EXPERIMENTS_VERSIONS[0])) + ".3"


def test_sets_the_experiments_before_grpc_is_imported() -> None:
    env: dict[str, str] = {}
    assert configure_grpc_io(env, modules=set(), grpcio_version=MEASURED)
    assert env == {"GRPC_EXPERIMENTS": GRPC_IO_EXPERIMENTS}


def test_changes_nothing_once_grpc_is_imported_or_the_user_chose() -> None:
    cases: list[tuple[dict[str, str], set[str], str]] = [
        ({}, {"grpc"}, MEASURED),  # too late: gRPC read the variable at import
        ({"GRPC_EXPERIMENTS": "x"}, set(), MEASURED),  # the user's own choice wins
        ({"KVSTORE_GRPC_DEFAULT_IO": "1"}, set(), MEASURED),  # opted out
        ({}, set(), "1.99.0"),  # a grpcio these switches were not measured with
        ({}, set(), "not-a-version"),
    ]
    for env, modules, version in cases:
        before = dict(env)
        assert not configure_grpc_io(env, modules=modules, grpcio_version=version), (env, modules, version)
        assert env == before


def test_the_kv_command_runs_with_it() -> None:
    """Importing the kv command's package (what `kv` and `python -m kvstore_cli node` do) sets it first."""
    code = "import os, sys, kvstore_cli; print(os.environ.get('GRPC_EXPERIMENTS'), 'grpc' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k not in ("GRPC_EXPERIMENTS", "KVSTORE_GRPC_DEFAULT_IO")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=True)
    major, minor = (int(p) for p in metadata.version("grpcio").split(".")[:2])
    expected = GRPC_IO_EXPERIMENTS if (major, minor) in GRPC_IO_EXPERIMENTS_VERSIONS else "None"
    assert out.stdout.split() == [expected, "False"]


def test_reads_the_installed_grpcio_version_without_importing_grpc() -> None:
    """The quick version lookup (a file read) agrees with the installed package's metadata."""
    assert _installed_grpcio_version() == metadata.version("grpcio")
