"""The pytest plugin the grader loads into its test process (copied beside ``sitecustomize.py``).

Theory of operation. It imports nothing from the repository (it must work
whatever the student's files do). For every test it

* writes a ``start`` line and one ``report`` line per phase (setup, call,
  teardown) to the JSON-lines file named by ``KVCOURSE_RESULTS``, flushed at
  once, so the grader knows which test was running if it has to kill the process;
* arms a wall-clock alarm (``KVCOURSE_TIME_LIMIT_S``) for the test's phases:
  when it fires, :class:`TimeLimitExceeded` (a ``BaseException``, so a bare
  ``except Exception`` in student code cannot swallow it) fails the test;
* caps the address space (``RLIMIT_AS``) at the process's size when the test
  starts plus ``KVCOURSE_MEMORY_LIMIT_MB``; an allocation beyond that raises
  ``MemoryError``, reported as a memory-limit failure. The cap is lifted
  between tests.

A test that hangs in C code, where the alarm cannot interrupt it, is the
grader's job: it kills the process and reruns the rest.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from collections.abc import Generator
from types import FrameType
from typing import Any

import pytest

_RESULTS = os.environ.get("KVCOURSE_RESULTS", "")
_TIME_LIMIT_S = float(os.environ.get("KVCOURSE_TIME_LIMIT_S", "60"))
_MEMORY_LIMIT_MB = int(os.environ.get("KVCOURSE_MEMORY_LIMIT_MB", "1024"))
_deadline: dict[str, float] = {}


class TimeLimitExceeded(BaseException):
    """The test ran past its time limit."""


def _write(record: dict[str, Any]) -> None:
    if not _RESULTS:
        return
    with open(_RESULTS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise TimeLimitExceeded(f"time limit exceeded: the test ran longer than {_TIME_LIMIT_S:g} s")


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _arm(nodeid: str) -> None:
    remaining = _deadline.setdefault(nodeid, time.monotonic() + _TIME_LIMIT_S) - time.monotonic()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001))
    size = _vm_size_bytes()
    if size:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = size + _MEMORY_LIMIT_MB * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """Run the setup phase under the test's limits."""
    _arm(item.nodeid)
    try:
        yield
    finally:
        _disarm()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Run the call phase under the test's limits."""
    _arm(item.nodeid)
    try:
        yield
    finally:
        _disarm()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Run the teardown phase under the test's limits."""
    _arm(item.nodeid)
    try:
        yield
    finally:
        _disarm()


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """Record that a test started (so a killed process still says which test hung)."""
    _write({"event": "start", "nodeid": nodeid, "time": time.time()})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Record one phase's outcome, with the failure text classified (time, memory, other)."""
    text = "" if report.longrepr is None else str(report.longrepr)
    crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", "") or ""
    kind = ""
    if "TimeLimitExceeded" in text:
        kind = "time"
        crash = f"time limit exceeded: the test ran longer than {_TIME_LIMIT_S:g} s"
    elif "MemoryError" in text:
        kind = "memory"
        crash = f"memory limit exceeded: the test allocated more than {_MEMORY_LIMIT_MB} MiB"
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        crash = f"skipped: {report.longrepr[2]}"
    _write(
        {
            "event": "report",
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "duration": report.duration,
            "kind": kind,
            "crash": crash[:2000],
            "longrepr": text[-6000:],
        }
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Record the selected test ids, after deselection (used when the grader lists a lab's tests)."""
    _write({"event": "collected", "nodeids": [item.nodeid for item in session.items]})
