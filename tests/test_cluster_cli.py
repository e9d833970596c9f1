"""`kv cluster up / status / kill / restart / down` and `kv logs`, with real processes.

Starts a small local cluster (2 shards x 1 replica, to keep it quick; replication is
tested in tests/server/), bounded in time, and always brings it down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

KV = [sys.executable, "-m", "kvstore_cli"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment whose remembered-cluster state lives in the test's folder, not in $HOME."""
    e = dict(os.environ)
    e["KV_STATE_DIR"] = str(tmp_path / "state")
    e.pop("KV_CLUSTER", None)
    return e


def process_gone(pid: int) -> bool:
    """True if no process has this pid, or only a zombie awaiting its reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def kv(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KV, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def cluster_dir(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    d = tmp_path / "kv"
    up = kv(env, "cluster", "up", "--shards", "2", "--replicas", "1", "--dir", str(d))
    try:
        assert up.returncode == 0, up.stderr
        yield d
    finally:
        kv(env, "--cluster", str(d / "cluster.toml"), "cluster", "down")
        for pid_file in d.glob("*/pid"):
            pytest.fail(f"{pid_file} left behind: a node was not stopped")


def test_cluster_up_spreads_keys_over_shards_and_is_remembered(cluster_dir: Path, env: dict[str, str]) -> None:
    """After `kv cluster up`, plain `kv put` finds the cluster, and keys land on both shards."""
    for i in range(16):
        assert kv(env, "put", f"key{i:02d}", str(i)).returncode == 0
    status = json.loads(kv(env, "cluster", "status", "--json").stdout)
    assert {row["id"] for row in status} == {"n1", "n2"}
    assert {row["shard"] for row in status} == {"s0", "s1"}
    assert all({"id", "shard", "role", "term", "applied_index"} <= set(row) for row in status)
    keys_per_node = [row["keys"] for row in status]
    assert sum(keys_per_node) == 16 and min(keys_per_node) >= 2
    scan = kv(env, "scan", "--start", "key10", "--end", "key13")
    assert scan.stdout.splitlines() == ["key10\t10", "key11\t11", "key12\t12"]
    table = kv(env, "cluster", "status").stdout.splitlines()
    assert table[0].split()[:3] == ["shard", "node", "role"] and len(table) == 3


def test_kill_makes_a_node_down_and_restart_brings_it_back(cluster_dir: Path, env: dict[str, str]) -> None:
    """kill really stops the process (status says down); after restart its durable data is served again."""
    for i in range(10):
        assert kv(env, "put", f"durable{i}", str(i)).returncode == 0
    pid_before = int((cluster_dir / "n1" / "pid").read_text())
    assert kv(env, "cluster", "kill", "n1").returncode == 0
    assert process_gone(pid_before), "the killed process no longer runs"
    rows = {r["id"]: r["role"] for r in json.loads(kv(env, "cluster", "status", "--json").stdout)}
    assert rows == {"n1": "down", "n2": "leader"}
    assert kv(env, "cluster", "restart", "n1").returncode == 0
    assert int((cluster_dir / "n1" / "pid").read_text()) != pid_before
    assert kv(env, "put", "again", "1").returncode == 0
    scan = kv(env, "scan", "--start", "durable", "--end", "durablf").stdout.splitlines()
    assert scan == [f"durable{i}\t{i}" for i in range(10)], "writes acknowledged before the crash survived it"
    events = kv(env, "logs", "--node", "n1", "--event", "node_started").stdout.splitlines()
    assert len(events) == 2, "the trace shows both starts of n1"


def test_cluster_commands_report_bad_input_in_one_line(cluster_dir: Path, env: dict[str, str]) -> None:
    """Unknown node ids and a second `up` into the same folder are refused plainly."""
    bad = kv(env, "cluster", "kill", "n9")
    assert bad.returncode == 2 and bad.stderr.startswith("kv: error: no node 'n9'")
    again = kv(env, "cluster", "up", "--dir", str(cluster_dir))
    assert again.returncode == 2 and "already holds a cluster" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_failover_through_the_cli(tmp_path: Path, env: dict[str, str]) -> None:
    """One shard of 3 replicas: kill its leader with `kv cluster kill`, and `kv put`/`kv get` keep working."""
    d = tmp_path / "kv3"
    up = kv(env, "cluster", "up", "--shards", "1", "--replicas", "3", "--dir", str(d))
    try:
        assert up.returncode == 0, up.stderr
        assert kv(env, "put", "before", "1").returncode == 0
        rows = json.loads(kv(env, "cluster", "status", "--json").stdout)
        old = next(r for r in rows if r["role"] == "leader")
        assert kv(env, "cluster", "kill", old["id"]).returncode == 0
        put = kv(env, "put", "after", "2")
        assert put.returncode == 0, put.stderr
        assert kv(env, "get", "before").stdout.strip() == "1"
        assert kv(env, "next", "after").stdout.strip() == "before\t1"
        assert kv(env, "prev", "before").stdout.strip() == "after\t2"
        rows = json.loads(kv(env, "cluster", "status", "--json").stdout)
        roles = {r["id"]: r["role"] for r in rows}
        assert roles[old["id"]] == "down" and list(roles.values()).count("leader") == 1
        assert next(r for r in rows if r["role"] == "leader")["term"] > old["term"]
    finally:
        kv(env, "--cluster", str(d / "cluster.toml"), "cluster", "down")


def test_a_broken_cluster_file_is_one_line_and_exit_code_2(tmp_path: Path, env: dict[str, str]) -> None:
    """A cluster file with a duplicate shard, or an unknown field, is refused before anything is sent."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[shard]]\nname = "s0"\nreplicas = [{ id = "n1", address = "127.0.0.1:1" }]\n' * 2)
    done = kv(env, "--cluster", str(bad), "put", "a", "1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"kv: error: {bad}: top level: shard name 's0' appears more than once"]
    bad.write_text('[[shard]]\nname = "s0"\nnodes = []\n')
    done = kv(env, "--cluster", str(bad), "get", "a")
    assert done.returncode == 2 and "unknown field 'shard[0].nodes'" in done.stderr
