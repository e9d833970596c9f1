"""A real `kv node` process on loopback, driven by the client library and the kv CLI.

These start operating-system processes: few, bounded in time, always cleaned up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from kvstore import errors, limits
from kvstore.client.client import Client, ClientOptions
from kvstore.server.launcher import free_port
from kvstore.trace import read_trace
from kvstore.wire import kv_pb2, kv_pb2_grpc

pytestmark = pytest.mark.process

KV = [sys.executable, "-m", "kvstore_cli"]


def kv(*args: str, cluster: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the kv CLI as a user would."""
    prefix = ["--cluster", str(cluster)] if cluster else []
    return subprocess.run([*KV, *prefix, *args], capture_output=True, text=True, timeout=timeout)


def test_client_puts_gets_deletes_and_cas_against_a_real_node(running_node) -> None:  # type: ignore[no-untyped-def]
    """The whole KV surface works over gRPC: previous values, existence, compare-and-set, scans."""
    with Client(str(running_node.cluster)) as c:
        assert c.put(b"a", b"1") is None
        assert c.put(b"a", b"2") == b"1"
        assert c.get(b"a") == b"2"
        assert c.get(b"missing") is None
        assert c.cas(b"a", b"1", b"x").swapped is False
        result = c.cas(b"a", b"2", b"3")
        assert (result.swapped, result.current) == (True, b"2")
        assert c.cas(b"new", None, b"fresh").swapped is True
        for k in [b"b", b"c", b"d"]:
            c.put(k, k.upper())
        assert [k for k, _ in c.scan(b"b", b"d")] == [b"b", b"c"]
        assert [k for k, _ in c.scan(reverse=True, limit=2)] == [b"new", b"d"]
        assert c.delete(b"a") is True
        assert c.delete(b"a") is False
        assert c.get(b"a") is None
        assert c.status(running_node.address).keys == 4


def test_server_refuses_oversized_keys_even_from_a_client_that_does_not_check(running_node) -> None:  # type: ignore[no-untyped-def]
    """Limits are enforced at the server too: a raw request gets a typed error, and nothing is stored."""
    with grpc.insecure_channel(running_node.address) as ch:
        stub = kv_pb2_grpc.KVStub(ch)
        big = b"k" * (limits.MAX_KEY_BYTES + 1)
        resp = stub.Put(kv_pb2.PutRequest(key=big, value=b"v"), timeout=10)
        assert resp.error.code == kv_pb2.KEY_TOO_LARGE
        assert resp.error.definite
        empty = stub.Get(kv_pb2.GetRequest(key=b""), timeout=10)
        assert empty.error.code == kv_pb2.INVALID_ARGUMENT
        assert stub.Status(kv_pb2.StatusRequest(), timeout=10).keys == 0


def test_cli_round_trip_with_documented_exit_codes(running_node) -> None:  # type: ignore[no-untyped-def]
    """put, get, del and cas through `kv` exit 0 on success and 1 for not found / not swapped."""
    cluster = running_node.cluster
    assert kv("put", "greeting", "hello", cluster=cluster).returncode == 0
    got = kv("get", "greeting", cluster=cluster)
    assert (got.returncode, got.stdout.strip()) == (0, "hello")
    assert kv("--json", "get", "greeting", cluster=cluster).stdout.strip() == '{"found": true, "value": "hello"}'
    assert kv("--encoding", "hex", "get", "6772656574696e67", cluster=cluster).stdout.strip() == "68656c6c6f"
    assert kv("cas", "greeting", "nope", "x", cluster=cluster).returncode == 1
    assert kv("cas", "greeting", "hello", "x", cluster=cluster).returncode == 0
    assert kv("del", "greeting", cluster=cluster).returncode == 0
    assert kv("get", "greeting", cluster=cluster).returncode == 1
    assert kv("delete", "greeting", cluster=cluster).returncode == 1


def test_cli_oversized_key_is_one_line_and_exit_code_2(running_node) -> None:  # type: ignore[no-untyped-def]
    """An oversized key gives one clear line on stderr, no traceback, and nothing is written."""
    done = kv("put", "k" * 5000, "v", cluster=running_node.cluster)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["kv: error: key size is 5000 bytes, over the limit of 4096 bytes"]
    assert "Traceback" not in done.stderr
    with Client(str(running_node.cluster)) as c:
        assert c.status(running_node.address).keys == 0


def test_cli_against_a_node_that_is_not_running_is_one_line_and_exit_code_3(tmp_path: Path) -> None:
    """Nothing listens on the port: a definite failure, reported plainly."""
    cluster = tmp_path / "cluster.toml"
    cluster.write_text(f'[[shard]]\nname = "s0"\nreplicas = [{{ id = "n1", address = "127.0.0.1:{free_port()}" }}]\n')
    done = kv("--timeout", "1", "get", "a", cluster=cluster)
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kv: error: cannot reach node at 127.0.0.1:")


def test_cli_wrong_config_file_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """A node config with an unknown field, and a missing cluster file, are each one line, exit 2."""
    bad = tmp_path / "node.toml"
    bad.write_text('[node]\nid = "n1"\nlisten = "127.0.0.1:1"\nlisten_port = 3\n')
    done = kv("node", "--config", str(bad))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"kv: error: {bad}: unknown field 'node.listen_port' (known: data_dir, id, listen, shard)"
    ]
    missing = kv("get", "a", cluster=tmp_path / "nope.toml")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"kv: error: {tmp_path / 'nope.toml'}: no such file"]
    env = {"PATH": "/usr/bin", "KV_STATE_DIR": str(tmp_path / "no-state")}
    unset = subprocess.run([*KV, "get", "a"], capture_output=True, text=True, timeout=60, env=env)
    assert unset.returncode == 2
    assert "no cluster file" in unset.stderr


def test_shutdown_rpc_stops_the_node_cleanly_and_traces_it(running_node) -> None:  # type: ignore[no-untyped-def]
    """`kv shutdown` makes the node exit 0; its trace shows start, shutdown request and stop in order."""
    with Client(str(running_node.cluster)) as c:
        c.put(b"k", b"v")  # answered only once the node has elected itself (the client retries until then)
    assert kv("shutdown", "n1", cluster=running_node.cluster).returncode == 0
    assert running_node.process.wait(15) == 0
    events = [e.event for e in read_trace(str(running_node.data_dir / "trace.jsonl"))]
    lifecycle = [e for e in events if e in ("node_started", "shutdown_requested", "node_stopped")]
    assert lifecycle == ["node_started", "shutdown_requested", "node_stopped"]
    assert "became_leader" in events, "a single-node group elects itself"
    with Client(str(running_node.cluster), options=ClientOptions(deadline_s=1)) as c, pytest.raises(errors.Unavailable):
        c.get(b"a")


def test_a_second_node_on_the_same_data_directory_is_refused_and_the_first_keeps_serving(running_node) -> None:  # type: ignore[no-untyped-def]
    """Two processes must never share a Raft log and an engine: the second exits with one line naming the first."""
    with Client(str(running_node.cluster)) as c:
        c.put(b"before", b"1")
    second = subprocess.run(
        [*KV, "node", "--config", str(running_node.config)], capture_output=True, text=True, timeout=60
    )
    assert second.returncode != 0
    err = second.stderr.strip()
    assert f"is in use by another kv node (pid {running_node.process.pid})" in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert running_node.process.alive()
    with Client(str(running_node.cluster)) as c:
        assert c.get(b"before") == b"1"
        c.put(b"after", b"2")
        assert c.get(b"after") == b"2"
