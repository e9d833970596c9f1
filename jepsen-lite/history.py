"""Histories: the events a test recorded, and the operations they pair into.

Theory of operation. A test records one :class:`Event` per line of a JSON-lines
file (``history.jsonl``) as things happen: a client *invokes* an operation, and
later the same process *completes* it with ``ok`` (it happened, here is the
result), ``fail`` (it certainly did not happen) or ``info`` (it may have
happened; the outcome is unknown). :func:`pair_events` matches every
completion with its invocation and hands back :class:`Operation` records, which
is what the checkers read; :func:`nemesis_intervals` pairs the fault events.

Format (one JSON object per line; grammar, then a worked example)::

    history   := event*                              (one per line, file order = index order)
    event     := { "index": int,                     strictly increasing, from 0 or any start
                   "time": float,                    seconds on a monotonic clock, non-decreasing
                   "process": int | "nemesis",       a client process; -1 or "nemesis" = the nemesis
                   "type": "invoke" | "ok" | "fail" | "info",
                   "f": str,                         "read" | "write" | "cas" | "add" | "read-set" | "nemesis"
                   "key": str,
                   "value": json,                    see below
                   "node": str | null,               the node that served it, if known
                   "error": str | null }             why it failed / is unknown, if it did

    value by operation (client processes):
      read       invoke: null;          ok: the value read (null = the key is absent)
      write      invoke and ok: the value written
      cas        invoke: [expected, new]; ok: [expected, new] (it swapped) or false
                 (it completed and was refused: the key did not hold `expected`)
      add        invoke and ok: the element added to the set named by `key`
      read-set   invoke: null;          ok: the list of elements read (duplicates kept)

    Example:
      {"index": 0, "time": 0.001, "process": 0, "type": "invoke", "f": "write", "key": "k1",
       "value": 3, "node": null, "error": null}
      {"index": 1, "time": 0.002, "process": -1, "type": "invoke", "f": "nemesis", "key": "partition",
       "value": {"groups": [["n1"], ["n2", "n3"]]}, "node": null, "error": null}
      {"index": 2, "time": 0.004, "process": 0, "type": "ok", "f": "write", "key": "k1",
       "value": 3, "node": "n1", "error": null}
      {"index": 3, "time": 0.5, "process": -1, "type": "ok", "f": "nemesis", "key": "partition",
       "value": null, "node": null, "error": null}

Semantics the checkers rely on:

- ``fail``: the operation certainly did not take effect; checkers drop it.
- ``info``: the operation may take effect at any moment after its invocation,
  or never; it stays open until the end of the history. An invocation with no
  completion at all is treated the same way. A process that saw ``info`` never
  issues again under that id (the client continues under a new process id).
- Nemesis events have process ``-1`` (``"nemesis"`` is accepted when reading
  and written back as ``-1``) and ``f = "nemesis"``. ``key`` names the fault
  (``"partition"``, ``"kill n2"``...). ``type = "invoke"`` marks the moment the
  fault begins, a later ``"ok"`` with the same key marks the moment it is healed
  (a start never healed lasts until the end), and ``"info"`` is an instant
  event (a flipped bit). ``value`` carries free-form details.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, Final

from kvstore.errors import InvalidArgument
from kvstore.invariants import invariant, invariant_failed

NEMESIS_PROCESS: Final = -1
"""The process id of the nemesis (fault injector) in a history."""

EVENT_TYPES: Final = ("invoke", "ok", "fail", "info")
FIELDS: Final = ("index", "time", "process", "type", "f", "key", "value", "node", "error")


class HistoryError(InvalidArgument):
    """A history file is unreadable or breaks the format's rules.

    Attributes:
        line: 1-based line in the file, or 0 when the problem is not on one line.
    """

    code: ClassVar[str] = "INVALID_HISTORY"

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a history: an invocation, a completion, or a nemesis event."""

    index: int
    time: float
    process: int
    type: str
    f: str
    key: str
    value: object = None
    node: str | None = None
    error: str | None = None

    @property
    def is_nemesis(self) -> bool:
        """True for events of the fault injector rather than a client."""
        return self.process == NEMESIS_PROCESS or self.f == "nemesis"

    def to_json(self) -> dict[str, object]:
        """The event as a JSON object with the fields in format order."""
        return {name: getattr(self, name) for name in FIELDS}

    @staticmethod
    def from_json(obj: object, *, line: int = 0) -> Event:
        """Validate one decoded JSON object and build the event.

        Raises:
            HistoryError: a field is missing or has the wrong type or value.
        """
        if not isinstance(obj, dict):
            raise HistoryError("an event must be a JSON object", line=line)
        missing = [name for name in ("index", "time", "process", "type", "f") if name not in obj]
        if missing:
            raise HistoryError(f"missing field(s) {', '.join(missing)}", line=line)
        index, time, process = obj["index"], obj["time"], obj["process"]
        if process == "nemesis":
            process = NEMESIS_PROCESS
        if not isinstance(index, int) or isinstance(index, bool):
            raise HistoryError(f"index must be an integer, got {index!r}", line=line)
        if not isinstance(time, (int, float)) or isinstance(time, bool) or not math.isfinite(time):
            raise HistoryError(f"time must be a finite number of seconds, got {time!r}", line=line)
        if not isinstance(process, int) or isinstance(process, bool):
            raise HistoryError(f"process must be an integer or \"nemesis\", got {process!r}", line=line)
        if obj["type"] not in EVENT_TYPES:
            raise HistoryError(f"type must be one of {', '.join(EVENT_TYPES)}, got {obj['type']!r}", line=line)
        for name in ("f", "key"):
            if not isinstance(obj.get(name, ""), str):
                raise HistoryError(f"{name} must be a string, got {obj[name]!r}", line=line)
        for name in ("node", "error"):
            if obj.get(name) is not None and not isinstance(obj[name], str):
                raise HistoryError(f"{name} must be a string or null, got {obj[name]!r}", line=line)
        return Event(
            index=index,
            time=float(time),
            process=process,
            type=obj["type"],
            f=obj["f"],
            key=obj.get("key", ""),
            value=obj.get("value"),
            node=obj.get("node"),
            error=obj.get("error"),
        )


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation: an invocation paired with its completion.

    Attributes:
        id: position in the history's operation list (0, 1, 2... in invocation order).
        status: ``"ok"``, ``"fail"`` or ``"info"`` (an invocation never completed is ``"info"``).
        value: the invocation's value (what was asked).
        output: the completion's value for ``ok`` (what was observed), else None.
        call_time, return_time: the interval; ``return_time`` is ``math.inf`` for ``info``
            (the operation stays open until the end of the history).
        call_index, return_index: the events' ``index`` fields (``return_index`` None when open).
    """

    id: int
    process: int
    f: str
    key: str
    value: object
    output: object
    status: str
    call_time: float
    return_time: float
    call_index: int
    return_index: int | None = None
    node: str | None = None
    error: str | None = None

    def describe(self) -> str:
        """A short human-readable form, e.g. ``p3 write k1 7 -> ok``."""
        shown = {"read": "", "read-set": ""}.get(self.f, f" {json.dumps(self.value)}")
        outcome = self.status
        if self.status == "ok" and self.f in ("read", "read-set", "get"):
            outcome = f"ok {json.dumps(self.output)}"
        elif self.status == "ok" and self.output is False:
            outcome = "ok (refused)"
        return f"p{self.process} {self.f} {self.key}{shown} -> {outcome}"

    def to_json(self) -> dict[str, object]:
        """The operation as a JSON object (``return_time`` null when open)."""
        return {
            "id": self.id,
            "process": self.process,
            "f": self.f,
            "key": self.key,
            "value": self.value,
            "output": self.output,
            "status": self.status,
            "call_time": self.call_time,
            "return_time": None if math.isinf(self.return_time) else self.return_time,
            "call_index": self.call_index,
            "return_index": self.return_index,
            "node": self.node,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class NemesisInterval:
    """A fault's span in time: from its start event to its heal (``math.inf`` if never healed).

    An instant event (``info``) has ``start_time == end_time``.
    """

    name: str
    start_time: float
    end_time: float
    value: object = None


@dataclass(frozen=True, slots=True)
class History:
    """A whole history: the raw events and what they pair into."""

    events: tuple[Event, ...]
    operations: tuple[Operation, ...]
    nemesis: tuple[NemesisInterval, ...]

    @property
    def end_time(self) -> float:
        """The time of the last event (0.0 for an empty history)."""
        return self.events[-1].time if self.events else 0.0

    def keys(self) -> list[str]:
        """The keys of client operations, sorted."""
        return sorted({op.key for op in self.operations})


def parse_jsonl(lines: Iterable[str]) -> list[Event]:
    """Decode JSON lines into events; blank lines are ignored.

    Raises:
        HistoryError: with the line number, for a line that is not a valid event,
            or when index does not increase or time goes backwards.
    """
    events: list[Event] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise HistoryError(f"not valid JSON ({exc})", line=number) from None
        event = Event.from_json(obj, line=number)
        if events and event.index <= events[-1].index:
            raise HistoryError(f"index {event.index} does not increase (previous {events[-1].index})", line=number)
        if events and event.time < events[-1].time:
            raise HistoryError(f"time {event.time} goes backwards (previous {events[-1].time})", line=number)
        events.append(event)
    return events


def read_jsonl(path: Path) -> list[Event]:
    """Read a ``history.jsonl`` file.

    Raises:
        HistoryError: the file cannot be read or is malformed.
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return parse_jsonl(fh)
    except OSError as exc:
        raise HistoryError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise HistoryError(f"{path} is not UTF-8 text ({exc.reason})") from None


def write_jsonl(events: Iterable[Event], out: IO[str]) -> None:
    """Write events as JSON lines, one per line, in the order given."""
    for event in events:
        out.write(json.dumps(event.to_json(), separators=(", ", ": ")) + "\n")


def pair_events(events: Sequence[Event]) -> History:
    """Match completions with invocations and fault starts with heals.

    Returns:
        the history, with operations in invocation order.

    Raises:
        HistoryError: a process invokes while it has an operation in flight, a
            completion has no invocation (or names another f or key), or a
            process issues again after an ``info``.

    Complexity: O(n) in the number of events.
    """
    pending: dict[int, tuple[int, Event]] = {}  # process -> (operation id, its invocation)
    finished: dict[int, Operation] = {}
    crashed: set[int] = set()
    invocations: list[Event] = []
    for event in events:
        if event.is_nemesis:
            continue
        where = f"event index {event.index}, process {event.process}"
        if event.process in crashed:
            raise HistoryError(f"{where}: the process already saw info and must not issue again")
        if event.type == "invoke":
            if event.process in pending:
                raise HistoryError(f"{where}: invokes while its previous operation is still in flight")
            pending[event.process] = (len(invocations), event)
            invocations.append(event)
            continue
        if event.process not in pending:
            raise HistoryError(f"{where}: completes ({event.type}) an operation that was never invoked")
        op_id, call = pending.pop(event.process)
        if (call.f, call.key) != (event.f, event.key):
            raise HistoryError(f"{where}: completes {event.f} {event.key!r} but invoked {call.f} {call.key!r}")
        if event.type == "info":
            crashed.add(event.process)
        finished[op_id] = _operation(op_id, call, event)
    operations = tuple(finished.get(i) or _operation(i, call, None) for i, call in enumerate(invocations))
    return History(events=tuple(events), operations=operations, nemesis=tuple(nemesis_intervals(events)))


def _operation(op_id: int, call: Event, done: Event | None) -> Operation:
    status = "info" if done is None else done.type
    return Operation(
        id=op_id,
        process=call.process,
        f=call.f,
        key=call.key,
        value=call.value,
        output=done.value if done is not None and status == "ok" else None,
        status=status,
        call_time=call.time,
        return_time=math.inf if done is None or status == "info" else done.time,
        call_index=call.index,
        return_index=None if done is None else done.index,
        node=(done.node if done is not None and done.node is not None else call.node),
        error=None if done is None else done.error,
    )


def nemesis_intervals(events: Iterable[Event]) -> Iterator[NemesisInterval]:
    """Pair nemesis starts (``invoke``) with heals (``ok``/``fail`` of the same key).

    A start with no heal lasts until ``math.inf``; an ``info`` is an instant.
    Intervals are yielded in the order they end (unhealed ones last, by start).
    """
    open_: dict[str, Event] = {}
    for event in events:
        if not event.is_nemesis:
            continue
        if event.type == "info":
            yield NemesisInterval(event.key, event.time, event.time, event.value)
        elif event.type == "invoke":
            open_.setdefault(event.key, event)
        elif event.key in open_:
            start = open_.pop(event.key)
            yield NemesisInterval(event.key, start.time, event.time, start.value)
    for start in open_.values():
        yield NemesisInterval(start.key, start.time, math.inf, start.value)


def load_jsonl(path: Path) -> History:
    """Read and pair a ``history.jsonl`` file (see the module docstring for the format).

    Raises:
        HistoryError: unreadable or malformed file.
    """
    return pair_events(read_jsonl(path))


class HistoryRecorder:
    """The sink a live run (runner, workload clients, nemesis) records events into.

    Assigns ``index`` (0, 1, 2...) and ``time`` (seconds since the recorder was made,
    from a monotonic clock), keeps the events in memory, and, given a stream, writes
    each one as a JSON line the moment it is recorded (so a crashed run still leaves
    its history). Safe to call from many threads.

    Call rules (a broken rule is a harness bug and raises InvariantViolation):
    per process, ``(invoke complete)*``; after ``complete(..., "info")`` the process
    is retired (use :meth:`new_process` for the client's next id).
    """

    def __init__(self, out: IO[str] | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._pending: dict[int, Event] = {}
        self._retired: set[int] = set()
        self._next_process = 0

    def new_process(self) -> int:
        """A process id never handed out before (ids count up from 0)."""
        with self._lock:
            self._next_process += 1
            return self._next_process - 1

    def invoke(self, process: int, f: str, key: str, value: object = None, *, node: str | None = None) -> Event:
        """Record that ``process`` starts an operation."""
        with self._lock:
            invariant(process not in self._retired, f"process {process} saw info and must not issue again")
            invariant(process not in self._pending, f"process {process} already has an operation in flight")
            event = self._append(process, "invoke", f, key, value, node, None)
            self._pending[process] = event
            return event

    def complete(
        self, process: int, type: str, value: object = None, *, node: str | None = None, error: str | None = None
    ) -> Event:
        """Record ``ok`` / ``fail`` / ``info`` for the operation ``process`` has in flight."""
        with self._lock:
            invariant(type in ("ok", "fail", "info"), f"a completion is ok, fail or info, not {type!r}")
            call = self._pending.pop(process, None)
            if call is None:
                invariant_failed(f"process {process} completes an operation it never invoked")
            if type == "info":
                self._retired.add(process)
            return self._append(process, type, call.f, call.key, value, node, error)

    def nemesis(self, name: str, type: str, value: object = None) -> Event:
        """Record a fault: ``invoke`` when it starts, ``ok`` when healed, ``info`` for an instant."""
        with self._lock:
            invariant(type in ("invoke", "ok", "info"), f"a nemesis event is invoke, ok or info, not {type!r}")
            return self._append(NEMESIS_PROCESS, type, "nemesis", name, value, None, None)

    def events(self) -> list[Event]:
        """A copy of the events recorded so far, in index order."""
        with self._lock:
            return list(self._events)

    def history(self) -> History:
        """The events so far, paired (operations still in flight count as open)."""
        return pair_events(self.events())

    def check_invariants(self) -> None:
        """Indexes count up from 0, times never go backwards, pending and retired processes are disjoint."""
        with self._lock:
            invariant(all(e.index == i for i, e in enumerate(self._events)), "indexes are 0, 1, 2...")
            invariant(
                all(a.time <= b.time for a, b in zip(self._events, self._events[1:], strict=False)),
                "times never go backwards",
            )
            invariant(not (self._pending.keys() & self._retired), "a retired process has nothing in flight")

    def _append(
        self, process: int, type: str, f: str, key: str, value: object, node: str | None, error: str | None
    ) -> Event:
        now = max(self._clock() - self._start, self._events[-1].time if self._events else 0.0)
        event = Event(len(self._events), now, process, type, f, key, value, node, error)
        self._events.append(event)
        if self._out is not None:
            write_jsonl([event], self._out)
            self._out.flush()
        return event
