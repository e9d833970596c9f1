"""The replicas-agree checker: after healing, every node holds the same data.

At the end of a run the runner reads each node's state machine directly (a dump
of key -> value per node, ``None`` for a node it could not read). The check is
pure: every readable replica must equal every other, key for key; a key present
on one node and absent on another is a disagreement like any other. Fewer than
two readable replicas gives ``unknown`` (nothing to compare).

:func:`check_logs` is the same idea one level down: the entries each node holds
committed in its durable Raft log (read after the nodes stopped) must agree index
by index. Final values can agree by luck (a later blind write overwrites a
diverged one); committed logs cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

AGREE: Final = "agree"
DISAGREE: Final = "disagree"
UNKNOWN: Final = "unknown"
_ABSENT: Final = "<absent>"


@dataclass(frozen=True, slots=True)
class ReplicaResult:
    """The verdict and, per disagreeing key, each node's value (``"<absent>"`` when missing).

    Attributes:
        verdict: AGREE, DISAGREE or UNKNOWN.
        differences: key -> {node: value}, for every key on which readable nodes differ.
        unreadable: nodes whose state could not be read.
    """

    verdict: str
    differences: dict[str, dict[str, object]] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "checker": "replicas",
            "verdict": self.verdict,
            "differences": self.differences,
            "unreadable": list(self.unreadable),
        }


def check_replicas(dumps: Mapping[str, Mapping[str, object] | None]) -> ReplicaResult:
    """Compare the final key -> value dumps of the nodes.

    Args:
        dumps: node name -> its dump, or None when the node could not be read.

    Complexity: O(nodes * keys).
    """
    readable = {node: dump for node, dump in dumps.items() if dump is not None}
    unreadable = tuple(sorted(node for node, dump in dumps.items() if dump is None))
    if len(readable) < 2:
        return ReplicaResult(UNKNOWN, unreadable=unreadable)
    keys = sorted({key for dump in readable.values() for key in dump})
    differences: dict[str, dict[str, object]] = {}
    for key in keys:
        values = {node: dump.get(key, _ABSENT) for node, dump in sorted(readable.items())}
        first = next(iter(values.values()))
        if any(value != first for value in values.values()):
            differences[key] = values
    return ReplicaResult(DISAGREE if differences else AGREE, differences, unreadable)


@dataclass(frozen=True, slots=True)
class LogResult:
    """Whether the nodes' committed Raft log entries agree, index by index (State Machine Safety).

    Attributes:
        verdict: AGREE, DISAGREE or UNKNOWN (fewer than two logs could be read).
        compared: how many indexes were held committed by at least two nodes and compared.
        differences: up to MAX_LOG_DIFFERENCES indexes where committed entries differ: index -> {node: term}.
        unreadable: nodes whose log could not be read.
    """

    verdict: str
    compared: int = 0
    differences: dict[int, dict[str, int]] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "checker": "committed-logs",
            "verdict": self.verdict,
            "compared": self.compared,
            "differences": {str(i): terms for i, terms in sorted(self.differences.items())},
            "unreadable": list(self.unreadable),
        }

    def summary(self) -> str:
        """One line for the verdict table."""
        if self.verdict != DISAGREE:
            return f"{self.verdict} ({self.compared} committed indexes compared)"
        first = min(self.differences)
        return f"{self.verdict} (from index {first}: terms {self.differences[first]})"


MAX_LOG_DIFFERENCES: Final = 20  # enough to show where logs diverge; a diverged suffix can be long


def check_logs(logs: Mapping[str, Mapping[int, tuple[int, bytes]] | None]) -> LogResult:
    """Compare the nodes' committed entries: any index committed on two nodes must hold the same entry there.

    Args:
        logs: node -> {index: (term, data)} of the entries it holds at or below its durable commit
            index (entries compacted into a snapshot are simply absent), or None when unreadable.

    Raft's Log Matching and Leader Completeness properties make this hold on a correct
    cluster whatever the faults; a follower that accepted entries without the
    previous-entry term check, or two leaders in one term, break it.

    Complexity: O(nodes * entries).
    """
    readable = {node: log for node, log in logs.items() if log is not None}
    unreadable = tuple(sorted(node for node, log in logs.items() if log is None))
    if len(readable) < 2:
        return LogResult(UNKNOWN, unreadable=unreadable)
    indexes = sorted({i for log in readable.values() for i in log})
    compared = 0
    differences: dict[int, dict[str, int]] = {}
    for index in indexes:
        held = {node: log[index] for node, log in sorted(readable.items()) if index in log}
        if len(held) < 2:
            continue
        compared += 1
        if len(set(held.values())) > 1 and len(differences) < MAX_LOG_DIFFERENCES:
            differences[index] = {node: term for node, (term, _) in held.items()}
    return LogResult(DISAGREE if differences else AGREE, compared, differences, unreadable)
