"""The `kv sim` command: summary, exit codes, replay files (invoked through click's test runner)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from kvstore_cli.sim_cmd import sim

from kvstore.trace import read_trace


def test_kv_sim_prints_a_summary_and_exits_zero_when_every_check_holds() -> None:
    """A faulty but correct run reports its seed, the faults that happened, and exits 0."""
    result = CliRunner().invoke(sim, ["--nodes", "5", "--seed", "3", "--ticks", "600", "--faults", "all"])
    assert result.exit_code == 0, result.output
    assert "seed 3: OK" in result.output and "dropped" in result.output and "1/1 runs passed" in result.output


def test_kv_sim_exits_non_zero_and_prints_a_replay_command_on_a_violation() -> None:
    """With a planted bug the command exits 1 and prints the seed, a replay line and the last events."""
    result = CliRunner().invoke(sim, ["--nodes", "5", "--seed", "0", "--seeds", "10", "--ticks", "1000",
                                      "--faults", "all", "--planted", "promiscuous-voter"])
    assert result.exit_code == 1
    assert "VIOLATION" in result.output and "replay: kv sim --nodes 5 --seed " in result.output
    assert "--planted promiscuous-voter" in result.output
    assert " | n1 " in result.output, "the trace is printed one column per node"


def test_kv_sim_rejects_an_unknown_fault_kind() -> None:
    """A typo in --faults is a usage error (exit 2) naming the known kinds."""
    result = CliRunner().invoke(sim, ["--faults", "drop,flood"])
    assert result.exit_code == 2 and "flood" in result.output and "partition" in result.output


def test_kv_sim_writes_the_history_and_trace_of_the_run(tmp_path: Path) -> None:
    """--history writes jepsen-lite JSON lines; --trace-out writes trace events readable by read_trace."""
    history, trace = tmp_path / "h.jsonl", tmp_path / "t.jsonl"
    result = CliRunner().invoke(sim, ["--nodes", "3", "--seed", "5", "--ticks", "300", "--faults", "drop,crash",
                                      "--history", str(history), "--trace-out", str(trace)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in history.read_text().splitlines()]
    assert events and set(events[0]) == {"index", "time", "process", "type", "f", "key", "value", "node", "error"}
    assert [e["index"] for e in events] == list(range(len(events)))
    assert {e["type"] for e in events} >= {"invoke", "ok"}
    assert any(e.event == "became_leader" for e in read_trace(str(trace)))


def test_kv_sim_runs_a_range_of_seeds() -> None:
    """--seeds N runs N consecutive seeds and counts them."""
    result = CliRunner().invoke(sim, ["--nodes", "3", "--seed", "10", "--seeds", "3", "--ticks", "200"])
    assert result.exit_code == 0, result.output
    assert all(f"seed {s}: OK" in result.output for s in (10, 11, 12)) and "3/3 runs passed" in result.output
