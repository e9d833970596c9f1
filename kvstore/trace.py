"""Structured trace events, written as JSON lines.

One format feeds the CLI's log viewer, the fault harness's report and the
simulator's replay. Every event is one JSON object on one line::

    {"time": 12.5, "node": "n1", "term": 3, "role": "leader",
     "event": "became_leader", "fields": {"votes": 2}}

``time`` is seconds: wall-clock seconds since the Unix epoch for a real node,
virtual time for the simulator (which is what makes a replayed trace identical
byte for byte). ``term`` and ``role`` are the node's Raft state when the event
happened (``0`` and ``""`` for parts that have none). ``fields`` holds
event-specific values; they must be JSON-serialisable (bytes are written as
text when they decode as UTF-8, else as ``"0x..."`` hex).

A :class:`Tracer` is the sink interface; :class:`JsonLinesTracer` writes to a
file, :class:`MemoryTracer` keeps events in a list (tests, the simulator) and
:data:`NULL_TRACER` drops everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import IO, Any, Protocol


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One thing that happened on one node."""

    time: float
    node: str
    term: int
    role: str
    event: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Encode as one line of JSON (no trailing newline), keys in a fixed order."""
        return json.dumps(
            {
                "time": self.time,
                "node": self.node,
                "term": self.term,
                "role": self.role,
                "event": self.event,
                "fields": {k: _jsonable(v) for k, v in self.fields.items()},
            },
            separators=(",", ":"),
            sort_keys=False,
        )

    @staticmethod
    def from_json(line: str) -> TraceEvent:
        """Decode one line written by :meth:`to_json`.

        Raises:
            ValueError: the line is not a trace event.
        """
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("trace line is not a JSON object")
        try:
            return TraceEvent(
                time=float(obj["time"]),
                node=str(obj["node"]),
                term=int(obj["term"]),
                role=str(obj["role"]),
                event=str(obj["event"]),
                fields=dict(obj.get("fields") or {}),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"trace line lacks a field: {exc}") from exc


def _jsonable(value: Any) -> Any:
    """Make bytes and other common values JSON-friendly; leave the rest alone."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + raw.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Tracer(Protocol):
    """A sink for trace events. ``emit`` must not raise for a well-formed event."""

    def emit(self, event: TraceEvent) -> None:
        """Record one event."""
        ...


class NullTracer:
    """Drops every event."""

    def emit(self, event: TraceEvent) -> None:
        """Do nothing."""


NULL_TRACER = NullTracer()


class MemoryTracer:
    """Keeps events in order in ``self.events`` (for tests and the simulator)."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def emit(self, event: TraceEvent) -> None:
        """Append the event."""
        self.events.append(event)


class JsonLinesTracer:
    """Writes each event as one JSON line to a text stream, flushing each line.

    Flushing per line keeps a trace readable up to the moment a process is
    killed; it is not fsynced (traces are for people, not for recovery).
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def emit(self, event: TraceEvent) -> None:
        """Write and flush one line."""
        self._stream.write(event.to_json() + "\n")
        self._stream.flush()

    @classmethod
    def open(cls, path: str) -> JsonLinesTracer:
        """Open (append to) a trace file at ``path``."""
        return cls(open(path, "a", encoding="utf-8"))

    def close(self) -> None:
        """Close the underlying stream."""
        self._stream.close()


def read_trace(path: str) -> list[TraceEvent]:
    """Read every well-formed event of a trace file; skip a torn last line."""
    events: list[TraceEvent] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # the writer died mid-line: a torn tail, not an error
            events.append(TraceEvent.from_json(line))
    return events
