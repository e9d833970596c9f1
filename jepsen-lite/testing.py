"""Helpers for tests of jepsen-lite (and of a student's checker): a history builder and a dumb checker.

:class:`HistoryBuilder` writes a history the way one draws it on a whiteboard::

    b = HistoryBuilder()
    w = b.invoke(0, "write", "x", 1)
    r = b.invoke(1, "read", "x")
    b.ok(w)
    b.ok(r, 1)
    history = b.history()

:func:`brute_force_linearizable` is the definition of linearizability turned into
code with no cleverness at all — try every order — for checking the real checker
on small histories (the way etcd checks its quorum code against a dumb version).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from jepsen_lite.history import NEMESIS_PROCESS, Event, History, Operation, pair_events
from jepsen_lite.models import Model


@dataclass(slots=True)
class HistoryBuilder:
    """Append events one at a time; each event's time is its index (or a time you give)."""

    events: list[Event] = field(default_factory=list)
    _open: dict[int, Event] = field(default_factory=dict)

    def _add(self, process: int, kind: str, f: str, key: str, value: object, time: float | None) -> Event:
        index = len(self.events)
        event = Event(index, float(index) if time is None else time, process, kind, f, key, value)
        self.events.append(event)
        return event

    def invoke(self, process: int, f: str, key: str = "x", value: object = None, *, time: float | None = None) -> int:
        """Record an invocation; returns the process (a handle for the completion)."""
        self._open[process] = self._add(process, "invoke", f, key, value, time)
        return process

    def complete(self, process: int, kind: str, value: object = None, *, time: float | None = None) -> None:
        """Record the completion (``ok``/``fail``/``info``) of the process's open operation."""
        call = self._open.pop(process)
        if value is None and call.f not in ("read", "read-set", "get"):
            value = call.value
        self._add(process, kind, call.f, call.key, value, time)

    def ok(self, process: int, value: object = None, *, time: float | None = None) -> None:
        """Complete with ``ok`` (for a read, ``value`` is what it read)."""
        self.complete(process, "ok", value, time=time)

    def fail(self, process: int, *, time: float | None = None) -> None:
        """Complete with ``fail`` (certainly did not happen)."""
        self.complete(process, "fail", time=time)

    def info(self, process: int, *, time: float | None = None) -> None:
        """Complete with ``info`` (outcome unknown)."""
        self.complete(process, "info", time=time)

    def fault(self, name: str, kind: str, *, time: float | None = None, value: object = None) -> None:
        """Record a nemesis event: ``invoke`` = start, ``ok`` = healed, ``info`` = instant."""
        self._add(NEMESIS_PROCESS, kind, "nemesis", name, value, time)

    def history(self) -> History:
        """Pair the events recorded so far."""
        return pair_events(self.events)


def brute_force_linearizable(ops: Sequence[Operation], model: Model) -> bool:
    """True iff some order of some operations is legal and respects real time (no cleverness).

    ``ok`` operations must all appear; ``info`` ones may or may not; ``fail`` ones and ops the model calls
    irrelevant are dropped. Exponential: use on at most ~7 operations.
    """
    kept = [op for op in ops if model.relevant(op)]
    must = [op for op in kept if op.status == "ok"]
    maybe = [op for op in kept if op.status != "ok"]
    for n in range(len(maybe) + 1):
        for extra in itertools.combinations(maybe, n):
            for order in itertools.permutations([*must, *extra]):
                if _respects_real_time(order) and _legal(order, model):
                    return True
    return False


def _respects_real_time(order: Sequence[Operation]) -> bool:
    return all(
        not later.return_time < earlier.call_time  # later finished before earlier began: out of order
        for i, earlier in enumerate(order)
        for later in order[i + 1 :]
    )


def _legal(order: Sequence[Operation], model: Model) -> bool:
    state = model.init()
    for op in order:
        ok, state = model.step(state, model.prepare(op))
        if not ok:
            return False
    return True
