"""`jepsen-lite check` exit codes and outputs, `gen`, and `bench` (a small version of the benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jepsen_lite.bench import BEGIN, END, SHAPES, run_bench, update_section
from jepsen_lite.cli import EXIT_BAD_INPUT, EXIT_NOT_LINEARIZABLE, EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE, run
from jepsen_lite.history import HistoryError, write_jsonl
from jepsen_lite.synthetic import simulate_register
from jepsen_lite.testing import HistoryBuilder


def _write_synthetic(path: Path, *, violations: int = 0, seed: int = 5) -> tuple[str, ...]:
    synthetic = simulate_register(seed=seed, ops=300, keys=3, violations=violations, faults=1)
    with open(path, "w", encoding="utf-8") as fh:
        write_jsonl(synthetic.events, fh)
    return synthetic.planted_keys


def test_check_exits_0_for_a_linearizable_history_and_writes_results_and_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0, a verdict line, results.json with the verdict and a timeline.html."""
    history = tmp_path / "history.jsonl"
    _write_synthetic(history)
    results, timeline = tmp_path / "results.json", tmp_path / "timeline.html"
    code = run(["check", str(history), "--results", str(results), "--timeline", str(timeline)])
    assert code == EXIT_OK
    assert capsys.readouterr().out.strip().endswith("verdict: linearizable")
    data = json.loads(results.read_text())
    assert data["verdict"] == "linearizable" and data["linearizability"]["keys"] == 3
    assert timeline.read_text().startswith("<!DOCTYPE html>")


def test_check_exits_1_and_names_the_planted_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1; the output explains each violated key, and results.json lists exactly the planted keys."""
    history = tmp_path / "history.jsonl"
    planted = _write_synthetic(history, violations=2)
    results = tmp_path / "results.json"
    assert run(["check", str(history), "--results", str(results)]) == EXIT_NOT_LINEARIZABLE
    out = capsys.readouterr().out
    assert all(f"key {key!r}" in out for key in planted) and "verdict: not-linearizable" in out
    assert tuple(json.loads(results.read_text())["linearizability"]["not_linearizable_keys"]) == planted


def test_check_exits_2_when_the_time_budget_runs_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A history needing a long search with a zero budget is unknown (exit 2), never a pass."""
    b = HistoryBuilder()
    for p in range(10):
        b.invoke(p, "write", "x", p)
    for p in range(10):
        b.ok(p)
    b.invoke(20, "read", "x")
    b.ok(20, 0)
    history = tmp_path / "hard.jsonl"
    with open(history, "w", encoding="utf-8") as fh:
        write_jsonl(b.events, fh)
    assert run(["check", str(history), "--time-limit-s", "0"]) == EXIT_UNKNOWN
    assert "time budget ran out on: x" in capsys.readouterr().out
    assert run(["check", str(history)]) == EXIT_OK


def test_check_exits_1_when_a_set_lost_a_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A jsonl history of the set workload is checked by the set checker: a lost element gives exit 1."""
    b = HistoryBuilder()
    b.invoke(0, "add", "s", "a")
    b.ok(0)
    b.invoke(1, "read-set", "s")
    b.ok(1, [])
    history = tmp_path / "set.jsonl"
    with open(history, "w", encoding="utf-8") as fh:
        write_jsonl(b.events, fh)
    assert run(["check", str(history)]) == EXIT_NOT_LINEARIZABLE
    assert "lost ['a']" in capsys.readouterr().out


_INVOKE = '{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "read", "key": "x"}\n'


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (_INVOKE + "{oops\n", "jsonl", "line 2"),
        (_INVOKE.replace("invoke", "ok"), "jsonl", "never invoked"),
        (_INVOKE.replace('"read"', '"incr"'), "jsonl", "no operation"),
        ("nothing to see\n", "jepsen-log", "no Jepsen operation lines"),
        ("{:process 0, :type}\n", "edn-kv", "line 1"),
        (None, "jsonl", "cannot read"),
    ],
)
def test_check_exits_3_with_one_line_for_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, fmt: str, message: str
) -> None:
    """Malformed or unreadable files give exit 3 and a single error line on stderr, never a traceback."""
    path = tmp_path / "history"
    if content is not None:
        path.write_text(content)
    assert run(["check", "--format", fmt, str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("jepsen-lite: error:") and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv", [["check"], ["check", "--format", "csv", "x"], ["frobnicate"], ["check", "--bogus", "x"]]
)
def test_usage_errors_exit_4(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Missing arguments, bad choices and unknown commands are usage errors (4), distinct from verdict codes."""
    assert run(argv) == EXIT_USAGE
    assert "Error" in capsys.readouterr().err


def test_check_reads_both_fixture_formats(fixtures_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command reproduces a linearizable and a non-linearizable verdict for each fixture format."""
    cases = [("etcd/etcd_002.log", "jepsen-log", 0), ("etcd/etcd_000.log", "jepsen-log", 1),
             ("kv/c01-ok.txt", "edn-kv", 0), ("kv/c01-bad.txt", "edn-kv", 1)]
    assert [run(["check", "--format", fmt, str(fixtures_dir / name)]) for name, fmt, _ in cases] == [
        code for _, _, code in cases
    ]


def test_gen_writes_a_history_that_check_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """gen --violations 1 writes a history that check then finds not linearizable."""
    out = tmp_path / "gen.jsonl"
    assert run(["gen", "--ops", "200", "--keys", "2", "--violations", "1", "--seed", "4", "-o", str(out)]) == 0
    assert "planted violations in: k" in capsys.readouterr().out
    assert run(["check", str(out)]) == EXIT_NOT_LINEARIZABLE


def test_small_benchmark_gets_every_verdict_right() -> None:
    """A small version of the 10,000-operation benchmark: every shape correct (timing is measured, not asserted)."""
    shapes = [shape for shape in SHAPES if shape[1] <= 10]
    rows = run_bench(ops=1000, keys=10, seeds=1, shapes=shapes, progress=lambda line: None)
    assert len(rows) == 5 and all(row.correct for row in rows)
    assert all(row.operations == 1000 and row.keys == 10 for row in rows)


def test_update_section_replaces_only_the_checker_section(tmp_path: Path) -> None:
    """Text outside the BEGIN/END comments is kept byte for byte; a file without them is an error."""
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text(f"# Perf\n\n{BEGIN}\nold\n{END}\n\n<!-- BEGIN ring -->\nring\n<!-- END ring -->\n")
    update_section(doc, "new numbers")
    assert doc.read_text() == f"# Perf\n\n{BEGIN}\nnew numbers\n{END}\n\n<!-- BEGIN ring -->\nring\n<!-- END ring -->\n"
    (tmp_path / "other.md").write_text("no markers")
    with pytest.raises(HistoryError, match="no"):
        update_section(tmp_path / "other.md", "x")


@pytest.mark.process
def test_the_command_as_a_process_exits_3_without_a_traceback(tmp_path: Path) -> None:
    """Run as a real process on a malformed file: exit status 3, one stderr line, no Python traceback."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not json\n")
    proc = subprocess.run(
        [sys.executable, "-m", "jepsen_lite.cli", "check", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_check_report_dir_writes_a_whole_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--report-dir writes the five report files of a run folder."""
    history = tmp_path / "history.jsonl"
    _write_synthetic(history)
    assert run(["check", str(history), "--report-dir", str(tmp_path / "run")]) == EXIT_OK
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["history.jsonl", "latency.png", "rate.png", "results.json", "timeline.html"]
    assert (tmp_path / "run" / "latency.png").read_bytes().startswith(b"\x89PNG")


def test_check_accepts_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given a folder, check reads its history.jsonl; a folder without one is bad input (3)."""
    _write_synthetic(tmp_path / "history.jsonl", violations=1)
    assert run(["check", str(tmp_path)]) == EXIT_NOT_LINEARIZABLE
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(["check", str(empty)]) == EXIT_BAD_INPUT
    assert "history.jsonl" in capsys.readouterr().err
