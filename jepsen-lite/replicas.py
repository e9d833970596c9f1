"""The replicas-agree checker: after healing, every node holds the same data.

At the end of a run the runner reads each node's state machine directly (a dump
of key -> value per node, ``None`` for a node it could not read). The check is
pure: every readable replica must equal every other, key for key; a key present
on one node and absent on another is a disagreement like any other. Fewer than
two readable replicas gives ``unknown`` (nothing to compare).
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
