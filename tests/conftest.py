"""Shared fixtures: a real node process on loopback, always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvstore.client.cluster import ClusterMap, ReplicaSpec, ShardSpec, dump_cluster
from kvstore.server.launcher import NodeProcess, free_port


@dataclass
class RunningNode:
    """A node child process and the files that describe it."""

    process: NodeProcess
    address: str
    config: Path
    cluster: Path
    data_dir: Path


@pytest.fixture
def running_node(tmp_path: Path) -> Iterator[RunningNode]:
    """Start `kv node` as a real process; stop it (escalating to SIGKILL) whatever the test does."""
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "n1.toml"
    config.write_text(f'[node]\nid = "n1"\nlisten = "{address}"\ndata_dir = "n1"\n')
    cluster = tmp_path / "cluster.toml"
    cluster.write_text(dump_cluster(ClusterMap([ShardSpec("s0", [ReplicaSpec("n1", address)])])))
    node = NodeProcess(str(config), address, log_path=str(tmp_path / "n1.log"))
    node.start()
    try:
        node.wait_ready(timeout_s=30)
        yield RunningNode(node, address, config, cluster, tmp_path / "n1")
    finally:
        node.stop(grace_s=5)
        assert not node.alive(), "the node process outlived the test"
