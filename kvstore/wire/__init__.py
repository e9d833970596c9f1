"""Generated gRPC and protobuf code for ``proto/kv.proto`` and ``proto/raft.proto``.

Do not edit the ``*_pb2*`` files by hand: change the .proto files and run
``make proto``. A test fails if the committed files drift from the .proto files.
"""

import importlib.util
import os
import re
import sys
from collections.abc import Container, MutableMapping

from kvstore.limits import MAX_MESSAGE_BYTES

# Channel and server options every kvstore gRPC endpoint uses: messages up to
# MAX_MESSAGE_BYTES both ways (gRPC's 4 MiB default is below a full batch).
GRPC_MESSAGE_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]

# gRPC's own switches for how its C core does network I/O (the documented
# GRPC_EXPERIMENTS variable). With these, the thread that Python's grpc.aio
# already runs to poll for completions also does the socket reads and writes
# (gRPC's classic "iomgr" path), instead of handing every message to a pool of
# EventEngine threads and back. Measured on loopback between two processes,
# one message in flight each way over a grpc.aio stream (2-core machine,
# grpcio 1.85.3): round trip p50 329-394 us -> 202-251 us, CPU per round trip
# 195-239 us -> 139-161 us per process (bench/grpc_pingpong.py measures it).
# docs/PERFORMANCE.md has the node-level numbers.
GRPC_IO_EXPERIMENTS = "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints"
# The grpcio versions these switches were measured with (major, minor): newer
# versions may drop them, and gRPC logs an error for an unknown experiment.
GRPC_IO_EXPERIMENTS_VERSIONS = ((1, 85),)


def configure_grpc_io(
    environ: MutableMapping[str, str] | None = None,
    *,
    modules: Container[str] | None = None,
    grpcio_version: str | None = None,
) -> bool:
    """Make this process's gRPC use :data:`GRPC_IO_EXPERIMENTS`; return whether it was set.

    Must run before anything imports ``grpc`` (gRPC reads the variable once,
    at import): the ``kv`` command calls it first thing, so every node and
    client it runs gets it. Library users may call it the same way. Nothing
    is changed if ``grpc`` is already imported, if ``GRPC_EXPERIMENTS`` is
    already set (the user's choice wins), if ``KVSTORE_GRPC_DEFAULT_IO=1``
    asks for gRPC's defaults, or if the installed grpcio is not one of
    :data:`GRPC_IO_EXPERIMENTS_VERSIONS`. The arguments default to this
    process's environment, ``sys.modules`` and installed grpcio (tests pass
    their own).
    """
    env = os.environ if environ is None else environ
    loaded = sys.modules if modules is None else modules
    if "grpc" in loaded or "GRPC_EXPERIMENTS" in env or env.get("KVSTORE_GRPC_DEFAULT_IO") == "1":
        return False
    version = _installed_grpcio_version() if grpcio_version is None else grpcio_version
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    if (major, minor) not in GRPC_IO_EXPERIMENTS_VERSIONS:
        return False
    env["GRPC_EXPERIMENTS"] = GRPC_IO_EXPERIMENTS
    return True


def _installed_grpcio_version() -> str:
    """grpcio's version without importing grpc ("" if not found).

    Read from the package's ``_grpcio_metadata.py`` (one line): ~0.3 ms,
    where ``importlib.metadata`` costs ~30 ms of every ``kv`` command's start.
    """
    try:
        spec = importlib.util.find_spec("grpc")
        if spec is None or spec.origin is None:
            return ""
        with open(os.path.join(os.path.dirname(spec.origin), "_grpcio_metadata.py"), encoding="utf-8") as fh:
            found = re.search(r"__version__\s*=\s*['\"]+([^'\"]+)['\"]+", fh.read())
    except (OSError, ImportError, ValueError):
        return ""
    return found.group(1) if found else ""
