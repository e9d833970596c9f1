"""The set / unique-append checker: acknowledged writes survive, nothing is applied twice.

Theory of operation. In the set workload every client adds unique elements to a
few sets (``f = "add"``, ``key`` = the set, ``value`` = the element) and, at the
end, after the faults are healed, reads each set whole (``f = "read-set"``, the
``ok`` value is the list of elements, duplicates kept — a store that applies a
retried append twice shows the element twice). Per set, the *final read* is the
``ok`` read-set with the latest call. Against it:

- **lost**: an add acknowledged (``ok``) before the final read began, missing from it;
- **duplicated**: an element that appears more than once in any ``ok`` read;
- **unexpected**: an element in a read that no add ever tried to add;
- **recovered** (fine): an add whose outcome was unknown (``info``) or that was
  still in flight, present in the final read;
- **unconfirmed** (fine): an add acknowledged after the final read began, missing.

The verdict is ``valid`` when nothing is lost, duplicated or unexpected,
``invalid`` otherwise, and ``unknown`` for a set with adds but no final read.
``fail`` adds are ignored, except that finding one in a read makes it
``unexpected`` (a definite failure that happened after all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Final

from jepsen_lite.history import HistoryError, Operation
from jepsen_lite.models import freeze

VALID: Final = "valid"
INVALID: Final = "invalid"
UNKNOWN: Final = "unknown"
SET_OPS: Final = ("add", "read-set")


@dataclass(frozen=True, slots=True)
class SetKeyResult:
    """The verdict for one set, with the elements behind it (sorted by repr)."""

    key: str
    verdict: str
    attempted: int
    acknowledged: int
    lost: tuple[object, ...] = field(default=())
    duplicated: tuple[object, ...] = field(default=())
    unexpected: tuple[object, ...] = field(default=())
    recovered: tuple[object, ...] = field(default=())
    unconfirmed: tuple[object, ...] = field(default=())
    final_read_op: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "verdict": self.verdict,
            "attempted": self.attempted,
            "acknowledged": self.acknowledged,
            "lost": list(self.lost),
            "duplicated": list(self.duplicated),
            "unexpected": list(self.unexpected),
            "recovered": list(self.recovered),
            "unconfirmed": list(self.unconfirmed),
            "final_read_op": self.final_read_op,
        }


@dataclass(frozen=True, slots=True)
class SetResult:
    """The verdict for every set in a history (sorted by key)."""

    verdict: str
    keys: tuple[SetKeyResult, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {"checker": "set", "verdict": self.verdict, "results": [k.to_json() for k in self.keys]}


def is_set_operation(op: Operation) -> bool:
    """True for the set workload's operations (``add``, ``read-set``)."""
    return op.f in SET_OPS


def check_sets(ops: Iterable[Operation]) -> SetResult:
    """Check every set in a history (operations of other kinds are ignored).

    Raises:
        HistoryError: an ``ok`` read-set whose value is not a list.
    """
    by_key: dict[str, list[Operation]] = {}
    for op in ops:
        if is_set_operation(op):
            by_key.setdefault(op.key, []).append(op)
    results = tuple(check_set(key, by_key[key]) for key in sorted(by_key))
    verdicts = {r.verdict for r in results}
    verdict = INVALID if INVALID in verdicts else UNKNOWN if UNKNOWN in verdicts else VALID
    return SetResult(verdict=verdict, keys=results)


def check_set(key: str, ops: list[Operation]) -> SetKeyResult:
    """Check one set's operations (see the module docstring for the rules)."""
    adds = [op for op in ops if op.f == "add"]
    reads = [op for op in ops if op.f == "read-set" and op.status == "ok"]
    contents = {op.id: _elements(op) for op in reads}
    attempted = {freeze(op.value) for op in adds if op.status != "fail"}
    acked = [op for op in adds if op.status == "ok"]
    duplicated = {e for elements in contents.values() for e, n in Counter(elements).items() if n > 1}
    unexpected = {e for elements in contents.values() for e in elements if e not in attempted}
    if not reads:
        verdict = UNKNOWN if adds else VALID
        return SetKeyResult(key, verdict, len(attempted), len(acked), duplicated=_sorted(duplicated))
    final = max(reads, key=lambda op: (op.call_time, op.id))
    present = set(contents[final.id])
    confirmed = {freeze(op.value) for op in acked if op.return_time < final.call_time}
    late = {freeze(op.value) for op in acked} - confirmed
    lost = confirmed - present
    recovered = (attempted - {freeze(op.value) for op in acked}) & present
    bad = lost or duplicated or unexpected
    return SetKeyResult(
        key=key,
        verdict=INVALID if bad else VALID,
        attempted=len(attempted),
        acknowledged=len(acked),
        lost=_sorted(lost),
        duplicated=_sorted(duplicated),
        unexpected=_sorted(unexpected),
        recovered=_sorted(recovered),
        unconfirmed=_sorted(late - present),
        final_read_op=final.id,
    )


def _elements(op: Operation) -> list[Hashable]:
    if not isinstance(op.output, list):
        raise HistoryError(f"read-set operation {op.id} returned {op.output!r}, not a list")
    return [freeze(e) for e in op.output]


def _sorted(values: set[Hashable]) -> tuple[object, ...]:
    return tuple(sorted(values, key=repr))
