"""Election safety over the nodes' trace files: at most one leader per term (Raft §5.2, Figure 3).

Theory of operation. Every node writes a ``TraceEvent`` JSON line each time its
Raft core changes role (``kvstore.trace``); a node that wins an election writes
``became_leader`` stamped with its term. Collecting those events from every
node's ``trace.jsonl`` gives, per term, the set of nodes that led it. Raft
promises that set has at most one member: a term with two leaders means some
node voted twice in it (for example because it forgot its vote across a
restart), and it is a safety violation even when no client happened to observe
its consequences (two leaders of one term can both append at the same index
with the same term, which breaks Log Matching).

The check only reads what the nodes wrote; a lost trace line (a power cut drops
unflushed bytes) can hide a violation, never invent one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

SAFE: Final = "safe"
UNSAFE: Final = "two leaders in one term"
NO_TRACES: Final = "no traces"


@dataclass(frozen=True, slots=True)
class ElectionResult:
    """Per term, who led it; ``violations`` maps a term to its (two or more) leaders, sorted."""

    verdict: str
    terms: int
    violations: dict[int, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (for ``results.json``)."""
        return {
            "verdict": self.verdict,
            "terms_with_a_leader": self.terms,
            "violations": {str(t): nodes for t, nodes in sorted(self.violations.items())},
        }

    def summary(self) -> str:
        """One line for the verdict table."""
        if self.verdict != UNSAFE:
            return f"{self.verdict} ({self.terms} terms with a leader)"
        shown = ", ".join(f"term {t}: {'+'.join(n)}" for t, n in sorted(self.violations.items())[:3])
        return f"{self.verdict} ({len(self.violations)} terms: {shown})"


def leaders_by_term(lines: Iterable[tuple[str, str]]) -> dict[int, set[str]]:
    """Term -> the nodes that wrote ``became_leader`` in it, from (node id, trace line) pairs.

    Malformed lines (a torn last line after a SIGKILL) are skipped. The node id is
    the event's own ``node`` field when present, else the one given with the line.
    """
    leaders: dict[int, set[str]] = {}
    for node, line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("event") != "became_leader":
            continue
        term = event.get("term")
        if isinstance(term, int):
            leaders.setdefault(term, set()).add(str(event.get("node") or node))
    return leaders


def check_elections(leaders: dict[int, set[str]]) -> ElectionResult:
    """The election-safety verdict for ``leaders_by_term`` output.

    Returns:
        UNSAFE when some term has two or more leaders, NO_TRACES when no term had a
        leader at all (nothing was checked: never a pass), else SAFE.
    """
    violations = {t: sorted(nodes) for t, nodes in leaders.items() if len(nodes) > 1}
    verdict = UNSAFE if violations else (SAFE if leaders else NO_TRACES)
    return ElectionResult(verdict, len(leaders), violations)


def check_trace_files(nodes_dir: Path) -> ElectionResult:
    """Election safety over ``nodes_dir/<node id>/trace.jsonl`` (a run folder's ``nodes``)."""

    def lines() -> Iterable[tuple[str, str]]:
        for path in sorted(nodes_dir.glob("*/trace.jsonl")):
            with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    yield path.parent.name, line

    return check_elections(leaders_by_term(lines()))
