"""Start and stop node processes on this machine (tests, the demo, `kv cluster`).

A :class:`NodeProcess` runs ``python -m kvstore_cli node --config FILE``
as a child process, sends its stdout and stderr to a log file, and waits for
readiness by polling the node's ``Status`` RPC (not by sleeping). Every wait
is bounded; :meth:`NodeProcess.stop` escalates from SIGTERM (a graceful
shutdown) to SIGKILL, so a test or demo never leaves a process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import TracebackType

import grpc

from kvstore import errors
from kvstore.wire import kv_pb2, kv_pb2_grpc


class NodeProcess:
    """One node child process. Use as a context manager to guarantee cleanup."""

    def __init__(self, config_path: str, address: str, *, log_path: str) -> None:
        self.config_path = config_path
        self.address = address
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The child's process id (the process must have been started)."""
        if self.proc is None:
            raise errors.ClosedError("node process was never started")
        return self.proc.pid

    def start(self) -> NodeProcess:
        """Launch the node (returns at once; see :meth:`wait_ready`)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kvstore_cli", "node", "--config", self.config_path],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal goes to us, not straight to the node
            )
        finally:
            log.close()
        return self

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s: float = 15.0, *, alive: Callable[[], bool] | None = None) -> None:
        """Block until the node answers Status, the node exits, or the timeout passes.

        ``alive`` says whether the node still runs; by default, whether this
        object's child does (a caller that started the process another way,
        such as LocalCluster, passes its own check).

        Raises:
            Unavailable: the node died or did not answer in time (the log's tail is in the message).
        """
        running = self.alive if alive is None else alive
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.address) as channel:
            stub = kv_pb2_grpc.KVStub(channel)
            while time.monotonic() < deadline:
                if not running():
                    raise errors.Unavailable(f"node exited during start-up: {self.log_tail()}")
                try:
                    stub.Status(kv_pb2.StatusRequest(), timeout=0.5, wait_for_ready=True)
                    return
                except grpc.RpcError:
                    continue
        raise errors.Unavailable(f"node at {self.address} not ready after {timeout_s:.0f}s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the node's log, joined for an error message."""
        try:
            with open(self.log_path, "rb") as fh:
                tail = fh.read().decode("utf-8", errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return " | ".join(tail) or "(empty log)"

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the child if it is running."""
        if self.alive() and self.proc is not None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the child and reap it."""
        self.signal(signal.SIGKILL)
        self.wait(5.0)

    def wait(self, timeout_s: float) -> int | None:
        """Wait up to ``timeout_s`` for the child to exit; return its exit code or None."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, *, grace_s: float = 5.0) -> int | None:
        """Stop gracefully (SIGTERM), escalating to SIGKILL after ``grace_s``; return the exit code."""
        if not self.alive():
            return self.wait(0)
        self.signal(signal.SIGTERM)
        code = self.wait(grace_s)
        if code is None:
            self.kill()
            code = self.wait(1.0)
        return code

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the usual bind-to-0 trick)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
