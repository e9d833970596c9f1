"""The checker benchmark behind ``jepsen-lite bench`` (numbers go to docs/PERFORMANCE.md).

For each seed and each kind of history (linearizable; with planted stale reads in
a few keys) it generates a synthetic register history (:mod:`jepsen_lite.synthetic`),
writes it to a temporary ``history.jsonl``, and times the same path ``jepsen-lite
check`` takes: read and parse the file, pair events, check every key. A row is
*correct* when the verdict is right and exactly the planted keys are flagged.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, check_operations
from jepsen_lite.formats import load
from jepsen_lite.history import HistoryError, write_jsonl
from jepsen_lite.synthetic import simulate_register

BEGIN: Final = "<!-- BEGIN checker -->"
END: Final = "<!-- END checker -->"
Shape = tuple[str, int, int, float]  # (name, clients per key, keys with a planted stale read, info ratio)
SHAPES: Final[tuple[Shape, ...]] = (
    ("linearizable, 5 clients/key", 5, 0, 0.01),
    ("5 planted stale reads, 5 clients/key", 5, 5, 0.01),
    ("linearizable, 10 clients/key", 10, 0, 0.01),
    ("5 planted stale reads, 10 clients/key", 10, 5, 0.01),
    ("5 planted stale reads, 10 clients/key, 10% info", 10, 5, 0.10),
    ("stress: linearizable, 20 clients/key", 20, 0, 0.01),
)


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One measured history."""

    shape: str
    seed: int
    operations: int
    keys: int
    seconds: float
    cpu_seconds: float
    verdict: str
    correct: bool
    max_key_seconds: float


def run_bench(
    *,
    ops: int,
    keys: int,
    seeds: int,
    shapes: Sequence[Shape] = SHAPES,
    progress: Callable[[str], None] = print,
) -> list[BenchRow]:
    """Measure every shape for seeds 1..``seeds``."""
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="jepsen-lite-bench-") as tmp:
        for shape, width, violations, info_ratio in shapes:
            for seed in range(1, seeds + 1):
                synthetic = simulate_register(
                    seed=seed, ops=ops, keys=keys, processes_per_key=width, violations=violations, info_ratio=info_ratio
                )
                path = Path(tmp) / f"history-{seed}.jsonl"
                with open(path, "w", encoding="utf-8") as fh:
                    write_jsonl(synthetic.events, fh)
                started, cpu_started = time.perf_counter(), time.process_time()
                history, model = load(path, "jsonl")
                result = check_operations(history.operations, model, time_limit_s_per_key=60.0)
                seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
                flagged = tuple(k.key for k in result.keys if k.verdict == NOT_LINEARIZABLE)
                expected = NOT_LINEARIZABLE if violations else LINEARIZABLE
                row = BenchRow(
                    shape=shape,
                    seed=seed,
                    operations=len(history.operations),
                    keys=len(history.keys()),
                    seconds=seconds,
                    cpu_seconds=cpu_seconds,
                    verdict=result.verdict,
                    correct=result.verdict == expected and flagged == synthetic.planted_keys,
                    max_key_seconds=max(k.elapsed_s for k in result.keys),
                )
                progress(
                    f"{shape}, seed {seed}: {row.verdict} in {row.seconds:.2f} s wall, {row.cpu_seconds:.2f} s CPU "
                    f"(correct: {row.correct})"
                )
                rows.append(row)
    return rows


def render_markdown(rows: list[BenchRow], *, ops: int, keys: int, seeds: int) -> str:
    """The PERFORMANCE.md section: command, machine, one line per shape."""
    lines = [
        f"Command: `.venv/bin/jepsen-lite bench --ops {ops} --keys {keys} --seeds {seeds} "
        "--update-doc docs/PERFORMANCE.md` (or `.venv/bin/python -m jepsen_lite.cli bench ...`).",
        "",
        f"Synthetic register histories from `jepsen_lite.synthetic` ({ops} operations over {keys} keys, "
        "45% reads, 20% cas, 3% fail, 1% info unless said; seeds 1..N), timed end to end as "
        "`jepsen-lite check` does it: read the JSONL file, pair events, check every key.",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, {platform.system()}; shared and noisy.",
        "",
        "| history | median wall s | max wall s | median CPU s | max CPU s | slowest key s | all verdicts right |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for shape in dict.fromkeys(r.shape for r in rows):
        mine = [r for r in rows if r.shape == shape]
        times = [r.seconds for r in mine]
        cpu = [r.cpu_seconds for r in mine]
        lines.append(
            f"| {shape} | {statistics.median(times):.2f} | {max(times):.2f} | "
            f"{statistics.median(cpu):.2f} | {max(cpu):.2f} | "
            f"{max(r.max_key_seconds for r in mine):.3f} | {'yes' if all(r.correct for r in mine) else 'NO'} |"
        )
    lines.append("")
    lines.append("Target (issue 7): a 10,000-operation history over 100 keys checked in 10 s or less.")
    return "\n".join(lines)


def update_section(path: Path, text: str) -> None:
    """Replace the text between the checker's BEGIN/END comments in ``path``.

    Raises:
        HistoryError: the file cannot be read or written, or lacks the markers.
    """
    try:
        doc = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot read {path}: {exc.strerror or exc}") from None
    start, stop = doc.find(BEGIN), doc.find(END)
    if start < 0 or stop < start:
        raise HistoryError(f"{path} has no {BEGIN} ... {END} section")
    try:
        path.write_text(doc[: start + len(BEGIN)] + "\n" + text + "\n" + doc[stop:], encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot write {path}: {exc.strerror or exc}") from None
