"""Checking a whole history and writing the run folder's reports — the runner's plug-in point.

Theory of operation. A recorded history may mix workloads: register operations
(``read``/``write``/``cas``, checked for linearizability key by key) and set
operations (``add``/``read-set``, checked for lost and duplicated elements).
:func:`check_history` sends each operation to its checker and combines the
verdicts (a violation of either wins, then unknown). :func:`write_reports`
writes what a run folder holds about the history::

    <run folder>/history.jsonl   the events (grammar in jepsen_lite.history)
    <run folder>/results.json    the verdicts, per key, with each violation explained
    <run folder>/timeline.html   the picture (jepsen_lite.timeline)
    <run folder>/latency.png     latency of each operation over time (jepsen_lite.plots)
    <run folder>/rate.png        completions per second over time

``jepsen-lite check`` uses the same two functions, so a history re-checked later
gives exactly the run's results.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, UNKNOWN, CheckResult, check_operations
from jepsen_lite.history import History, HistoryError, write_jsonl
from jepsen_lite.models import Model
from jepsen_lite.plots import latency_png, rate_png
from jepsen_lite.sets import INVALID, SetResult, check_sets, is_set_operation
from jepsen_lite.timeline import render_timeline


@dataclass(frozen=True, slots=True)
class HistoryVerdict:
    """Both checkers' results for one history and the combined verdict.

    Attributes:
        verdict: LINEARIZABLE (everything fine), NOT_LINEARIZABLE (a linearizability or set
            violation), or UNKNOWN (a key's budget ran out, or a set was never read).
        linearizability: None when the history has no register operations.
        sets: None when the history has no set operations.
        elapsed_s: wall time of the checks.
    """

    verdict: str
    linearizability: CheckResult | None
    sets: SetResult | None
    elapsed_s: float

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "elapsed_s": round(self.elapsed_s, 3),
            "linearizability": self.linearizability.to_json() if self.linearizability else None,
            "sets": self.sets.to_json() if self.sets else None,
        }


def overall_verdict(lin: CheckResult | None, sets: SetResult | None) -> str:
    """One verdict for both checkers: a violation of either wins, then unknown, else linearizable."""
    verdicts = {lin.verdict if lin else LINEARIZABLE, sets.verdict if sets else LINEARIZABLE}
    if NOT_LINEARIZABLE in verdicts or INVALID in verdicts:
        return NOT_LINEARIZABLE
    return UNKNOWN if UNKNOWN in verdicts else LINEARIZABLE


def check_history(history: History, model: Model, *, time_limit_s_per_key: float = 10.0) -> HistoryVerdict:
    """Check every operation of a history with the checker for its kind.

    Args:
        history: the paired history.
        model: the sequential specification for the non-set operations.
        time_limit_s_per_key: the linearizability search budget of each key.

    Raises:
        HistoryError: an operation neither checker knows, or a malformed set read.
    """
    started = time.monotonic()
    register_ops = [op for op in history.operations if not is_set_operation(op)]
    set_ops = [op for op in history.operations if is_set_operation(op)]
    lin = check_operations(register_ops, model, time_limit_s_per_key=time_limit_s_per_key) if register_ops else None
    sets = check_sets(set_ops) if set_ops else None
    return HistoryVerdict(overall_verdict(lin, sets), lin, sets, time.monotonic() - started)


def write_reports(folder: Path, history: History, verdict: HistoryVerdict, *, title: str = "jepsen-lite run") -> None:
    """Write ``history.jsonl``, ``results.json``, ``timeline.html``, ``latency.png`` and ``rate.png`` into ``folder``.

    The folder is created if needed; existing files of those names are replaced.

    Raises:
        HistoryError: the folder or a file cannot be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "history.jsonl", "w", encoding="utf-8") as fh:
            write_jsonl(history.events, fh)
        (folder / "results.json").write_text(json.dumps(verdict.to_json(), indent=2) + "\n", encoding="utf-8")
        page = render_timeline(history, linearizability=verdict.linearizability, sets=verdict.sets, title=title)
        (folder / "timeline.html").write_text(page, encoding="utf-8")
        (folder / "latency.png").write_bytes(latency_png(history))
        (folder / "rate.png").write_bytes(rate_png(history))
    except OSError as exc:
        raise HistoryError(f"cannot write the reports in {folder}: {exc.strerror or exc}") from None
