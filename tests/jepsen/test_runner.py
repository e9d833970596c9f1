"""The jepsen-lite runner, workloads and nemeses.

The pure parts (partition shapes, kinds, the bit flip, the node config) are tested
without processes; then a few short real runs against 3-node clusters prove that a
run under faults passes on the correct build, that the faults really happened
(messages dropped, processes killed or stopped, unsynced bytes lost), that the run
folder holds every report, and that every node process is gone afterwards — also
when the run is interrupted.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from jepsen_lite.cli import run as cli_run
from jepsen_lite.history import load_jsonl
from jepsen_lite.nemesis import KINDS, PARTITION_SHAPES, flip_bit, parse_kinds, partition_plan
from jepsen_lite.runner import PASS, RunOptions, node_config, node_failures, run
from jepsen_lite.workloads import decode_elements, decode_int

from kvstore import errors
from kvstore.config import load_node_config

NODES5 = ["n1", "n2", "n3", "n4", "n5"]
REPORT_FILES = ("history.jsonl", "results.json", "timeline.html", "latency.png", "rate.png")


def _connected(plan: dict[str, set[str]], a: str, b: str) -> bool:
    return b not in plan[a]


@pytest.mark.parametrize("shape", PARTITION_SHAPES)
def test_every_partition_shape_is_symmetric_and_leaves_no_node_cut_from_itself(shape: str) -> None:
    """Both sides of every cut drop the link (a in plan[b] iff b in plan[a]) and no node isolates itself."""
    for seed in range(20):
        plan = partition_plan(shape, NODES5, random.Random(seed), leader="n3")
        for a in NODES5:
            assert a not in plan[a], f"seed {seed}: {a} isolates itself"
            for b in plan[a]:
                assert a in plan[b], f"seed {seed}: {a} drops {b} but {b} does not drop {a}"


def test_halves_split_into_two_groups_that_cannot_talk() -> None:
    """halves: n1,n2 | n3,n4,n5 — connected inside a half, cut across."""
    plan = partition_plan("halves", NODES5, random.Random(1))
    assert plan["n1"] == {"n3", "n4", "n5"} and plan["n3"] == {"n1", "n2"}


def test_isolate_leader_cuts_exactly_the_leader_from_everyone() -> None:
    """isolate-leader: the named leader drops all peers; the others only the leader."""
    plan = partition_plan("isolate-leader", NODES5, random.Random(2), leader="n4")
    assert plan["n4"] == {"n1", "n2", "n3", "n5"}
    assert all(plan[n] == {"n4"} for n in NODES5 if n != "n4")


def test_bridge_has_one_node_that_talks_to_both_sides() -> None:
    """bridge: exactly one node reaches everyone; the others are split into two sides that cannot talk."""
    plan = partition_plan("bridge", NODES5, random.Random(3))
    bridges = [n for n in NODES5 if not plan[n]]
    assert len(bridges) == 1
    others = [n for n in NODES5 if n not in bridges]
    assert all(plan[n] for n in others), "every non-bridge node is cut from someone"


def test_majorities_ring_gives_every_node_a_majority_and_no_two_the_same() -> None:
    """majorities-ring on 5 nodes: each node sees exactly 3 (itself included), and the 5 views differ."""
    for seed in range(10):
        plan = partition_plan("majorities-ring", NODES5, random.Random(seed))
        views = {n: frozenset({n, *(m for m in NODES5 if _connected(plan, n, m) and m != n)}) for n in NODES5}
        assert all(len(v) == 3 for v in views.values()), views
        assert len(set(views.values())) == 5, f"seed {seed}: two nodes share a majority: {views}"


def test_unknown_nemesis_kinds_are_refused_with_the_known_list() -> None:
    """parse_kinds names the known kinds when given an unknown one."""
    assert parse_kinds("partition, kill") == ("partition", "kill")
    with pytest.raises(errors.InvalidArgument, match="partition-halves"):
        parse_kinds("partition,meteor")
    assert "bitflip" in KINDS


def test_flip_bit_changes_exactly_one_bit(tmp_path: Path) -> None:
    """flip_bit changes one bit of one byte, and nothing else."""
    path = tmp_path / "f"
    original = bytes(range(256)) * 4
    path.write_bytes(original)
    offset = flip_bit(path, random.Random(5))
    changed = path.read_bytes()
    diffs = [i for i, (a, b) in enumerate(zip(original, changed, strict=True)) if a != b]
    assert diffs == [offset]
    assert bin(original[offset] ^ changed[offset]).count("1") == 1


def test_node_config_of_a_run_is_valid_and_enables_the_planted_bug(tmp_path: Path) -> None:
    """The runner's node TOML loads, turns on fault injection and the journal, and allows the planted bug."""
    body = '[node]\nid = "n1"\nlisten = "127.0.0.1:7001"\n'
    options = RunOptions(planted_bug="no-dedup", raft_toml="check_quorum = false\n")
    (tmp_path / "node.toml").write_text(body + node_config(options))
    cfg = load_node_config(str(tmp_path / "node.toml"))
    assert cfg.testing.allow_fault_injection and cfg.testing.power_loss_journal
    assert cfg.testing.planted_bug == "no-dedup" and cfg.testing.allow_planted_bugs
    assert cfg.raft.tick_ms == 20 and not cfg.raft.check_quorum


def test_stored_values_decode_to_what_the_history_records() -> None:
    """Register values are ints (None when absent); a set is its comma-separated elements, duplicates kept."""
    assert decode_int(None) is None and decode_int(b"17") == 17 and decode_int(b"x") == "x"
    assert decode_elements(b"1,2,2,3") == [1, 2, 2, 3] and decode_elements(None) == []


def test_bad_run_options_are_refused_before_anything_starts() -> None:
    """An unknown workload or nemesis is an InvalidArgument, raised before a cluster exists."""
    with pytest.raises(errors.InvalidArgument):
        run(RunOptions(workload="queue"))
    with pytest.raises(errors.InvalidArgument):
        run(RunOptions(nemesis=("meteor",)))


def test_a_node_that_stopped_on_a_failure_is_found_in_its_log(tmp_path: Path) -> None:
    """node_failures picks the `kv node <id>: failed:` lines out of the copied node logs, and nothing else."""
    (tmp_path / "n1").mkdir()
    (tmp_path / "n2").mkdir()
    (tmp_path / "n1" / "node.log").write_text("kv node n1: serving shard s0\nkv node n1: stopped\n")
    (tmp_path / "n2" / "node.log").write_text(
        "kv node n2: serving shard s0\nkv node n2: failed: entries are applied once, in index order\n"
    )
    assert node_failures(tmp_path) == ["kv node n2: failed: entries are applied once, in index order"]


def _node_pids(root: Path) -> list[int]:
    """Live processes whose command line mentions ``root`` (the run's cluster folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if str(root).encode() in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.mark.process
def test_cli_run_with_partitions_and_kills_passes_and_writes_the_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jepsen-lite run` on the correct build: exit 0, faults took effect, every report and node log written."""
    out = tmp_path / "run"
    work = tmp_path / "work"
    seed = 7
    print(f"seed {seed}")
    code = cli_run([
        "run", "--nemesis", "partition,kill", "--time", "9", "--seed", str(seed), "--fault-s", "2.5",
        "--heal-s", "1.5", "--out", str(out), "--work-dir", str(work),
    ])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "RESULT" in text and "PASS" in text and "left]" in text, "a progress line and a verdict table were printed"
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
    assert all((out / "nodes" / n / "node.log").exists() for n in ("n1", "n2", "n3"))
    history = load_jsonl(out / "history.jsonl")
    assert any(e.is_nemesis for e in history.events), "nemesis events are in the history"
    assert sum(op.status == "ok" for op in history.operations) > 50
    answered = [e for e in history.events if e.type == "ok" and not e.is_nemesis]
    assert answered and all(e.node in ("n1", "n2", "n3") for e in answered), "every ok names the node that answered"
    results = json.loads((out / "results.json").read_text())
    faults = results["faults"]
    took_effect = faults.get("partition", {}).get("effect", 0) + faults.get("kill", {}).get("effect", 0)
    assert took_effect > 0, f"no fault took effect: {faults}"
    assert results["run"]["verdict"] == PASS and results["replicas"]["verdict"] == "agree"
    assert results["logs"]["verdict"] == "agree" and results["logs"]["compared"] > 0, results["logs"]
    assert results["elections"]["verdict"] == "safe", results["elections"]
    assert _node_pids(work) == [], "every node process is gone"


@pytest.mark.process
def test_set_workload_under_pause_and_power_loss_loses_nothing(tmp_path: Path) -> None:
    """Set workload with SIGSTOP and power loss: nodes were stopped and lost unsynced bytes, no acked add lost."""
    seed = 11
    print(f"seed {seed}")
    result = run(RunOptions(
        nemesis=("pause", "power-loss"), workload="set", time_s=9, seed=seed, fault_s=2.0, heal_s=1.0,
        out=tmp_path / "run", work_dir=tmp_path / "work",
    ))
    assert result.verdict == PASS, result.table()
    sets = result.history.sets
    assert sets is not None and sum(k.acknowledged for k in sets.keys) > 20
    assert result.fault_effect("pause") + result.fault_effect("power-loss") > 0, result.faults
    assert _node_pids(tmp_path / "work") == []


@pytest.mark.process
def test_an_interrupted_run_stops_every_node_even_a_paused_one(tmp_path: Path) -> None:
    """Ctrl-C while a node is SIGSTOPped: the run raises KeyboardInterrupt and leaves no node process behind."""
    work = tmp_path / "work"
    seen: list[int] = []

    def echo(message: str) -> None:
        if "nemesis: paused" in message:
            seen.extend(_node_pids(work))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(RunOptions(nemesis=("pause",), time_s=30, seed=3, first_fault_after_s=0.5, out=tmp_path / "run",
                       work_dir=work), echo=echo)
    assert len(seen) == 3, "the nodes were running when the interrupt came"
    assert _node_pids(work) == [], "every node process is gone, the paused one included"


@pytest.mark.soak
@pytest.mark.process
def test_a_node_with_a_flipped_bit_in_its_engine_files_refuses_to_start(tmp_path: Path) -> None:
    """Soak: after one bit of an engine file flips, the node will not serve it (checksum), and the run still passes."""
    seed = 5
    print(f"seed {seed}")
    result = run(RunOptions(
        nemesis=("bitflip",), time_s=12, seed=seed, fault_s=1.0, heal_s=30.0, first_fault_after_s=3.0,
        out=tmp_path / "run", work_dir=tmp_path / "work",
    ))
    notes = result.faults["bitflip"]["notes"]
    assert result.fault_effect("bitflip") == 1, notes
    assert isinstance(notes, list) and "refused to start" in notes[0] and "corruption" in notes[0], notes
    assert result.verdict == PASS, result.table()
    assert _node_pids(tmp_path / "work") == []
