"""Client histories recorded by the simulator, and the seam where a checker plugs in.

Each event is a JSON-lines-compatible dict in the jepsen-lite format
(``jepsen-lite/history.py`` documents the grammar)::

    {"index": 0, "time": 12.5, "process": 0, "type": "invoke", "f": "write",
     "key": "k1", "value": 3, "node": null, "error": null}

``time`` is virtual time in ticks. ``value``: the written value for a write;
``[expected, new]`` for a cas invoke, and on its completion ``[expected, new]``
if it swapped or ``false`` if it was refused; ``null`` on a read invoke and the
value read on its ``ok``. Nemesis events have ``process = -1`` and
``f = "nemesis"``.

**Checker seam.** :data:`HistoryChecker` is any callable from a list of events
to a :class:`CheckResult`. Until the linearizability checker of jepsen-lite is
wired in, :func:`check_sequential` is the default: a sound but incomplete check
for histories whose operations do not overlap (one client process at a time);
it tolerates ``info`` operations by letting their effect appear at any later
moment. Pass ``Simulation(history_checker=...)`` to use another checker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Verdict of a history checker: ``valid`` and, if not, why."""

    valid: bool
    reason: str = ""
    checked_ops: int = 0


HistoryChecker = Callable[[list[dict[str, Any]]], CheckResult]


class History:
    """An append-only list of events with consecutive ``index`` values."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(
        self,
        *,
        time: float,
        process: int,
        type: str,
        f: str,
        key: str,
        value: Any,
        node: str | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Append one event and return it."""
        event = {
            "index": len(self.events),
            "time": time,
            "process": process,
            "type": type,
            "f": f,
            "key": key,
            "value": value,
            "node": node,
            "error": error,
        }
        self.events.append(event)
        return event

    def write_jsonl(self, stream: IO[str]) -> None:
        """Write one JSON object per line."""
        for event in self.events:
            stream.write(json.dumps(event) + "\n")

    def is_sequential(self) -> bool:
        """True if no two client operations overlap (``info`` ones aside)."""
        open_ops = 0
        for ev in self.client_events():
            if ev["type"] == "invoke":
                open_ops += 1
                if open_ops > 1:
                    return False
            else:
                open_ops -= 1
        return True

    def client_events(self) -> list[dict[str, Any]]:
        """Events of client processes (not the nemesis)."""
        return [ev for ev in self.events if ev["process"] >= 0]


def check_sequential(events: list[dict[str, Any]]) -> CheckResult:
    """Check a non-overlapping history against a register per key.

    For each key we track the values a read may return: the last definite
    write, plus every value of a write or cas whose outcome is unknown
    (``info``), since those may take effect at any later moment. Sound for
    sequential histories (no false alarms), not complete.
    """
    possible: dict[str, set[Any]] = {}
    maybe: dict[str, set[Any]] = {}
    pending: dict[int, dict[str, Any]] = {}
    checked = 0
    for ev in events:
        if ev["process"] < 0:
            continue
        key = ev["key"]
        poss = possible.setdefault(key, {None})
        mayb = maybe.setdefault(key, set())
        if ev["type"] == "invoke":
            pending[ev["process"]] = ev
            continue
        inv = pending.pop(ev["process"], None)
        if ev["type"] == "info" and inv is not None and inv["f"] != "read":
            mayb.add(inv["value"] if inv["f"] == "write" else inv["value"][1])
        if ev["type"] != "ok":
            continue
        checked += 1
        allowed = poss | mayb
        if ev["f"] == "read":
            if ev["value"] not in allowed:
                return CheckResult(False, f"event {ev['index']}: read {ev['value']!r} of {key}, "
                                          f"possible {sorted(map(repr, allowed))}", checked)
            possible[key] = {ev["value"]}
        elif ev["f"] == "write":
            possible[key] = {ev["value"]}
        elif ev["f"] == "cas":
            if ev["value"] is False:
                if allowed == {inv["value"][0] if inv else None}:
                    return CheckResult(False, f"event {ev['index']}: cas refused but {key} must hold the expected "
                                              "value", checked)
            else:
                expected, new = ev["value"]
                if expected not in allowed:
                    return CheckResult(False, f"event {ev['index']}: cas swapped {key} from {expected!r}, "
                                              f"possible {sorted(map(repr, allowed))}", checked)
                possible[key] = {new}
    return CheckResult(True, "", checked)
