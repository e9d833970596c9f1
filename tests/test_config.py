"""Configuration files: typed, validated, and every mistake named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvstore.client.cluster import ClusterMap, ReplicaSpec, ShardSpec, dump_cluster, load_cluster
from kvstore.config import load_node_config
from kvstore.errors import ConfigError

GOOD = """
[node]
id = "n1"
listen = "127.0.0.1:7001"
data_dir = "data/n1"

[[peers]]
id = "n2"
address = "127.0.0.1:7002"

[raft]
tick_ms = 20
"""


def write(tmp_path: Path, text: str, name: str = "node.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_valid_node_config_loads_into_typed_dataclasses(tmp_path: Path) -> None:
    """Fields land in their sections; unset fields take their defaults."""
    cfg = load_node_config(write(tmp_path, GOOD))
    assert cfg.node.id == "n1"
    assert cfg.peers[0].address == "127.0.0.1:7002"
    assert cfg.raft.tick_ms == 20
    assert cfg.raft.election_timeout_ticks == 10
    assert cfg.storage.sync == "always"


def test_storage_level_shape_reaches_the_engine_options(tmp_path: Path) -> None:
    """[storage] engine knobs load, and engine_options() hands exactly them to Engine.open (defaults = engine's)."""
    from kvstore.lsm.engine import EngineOptions

    text = GOOD + "\n[storage]\nmemtable_bytes = 65536\nl0_compaction_trigger_files = 1\nlevel1_target_bytes = 1\n"
    options = load_node_config(write(tmp_path, text)).storage.engine_options()
    assert options["memtable_bytes"] == 65536
    assert (options["l0_compaction_trigger_files"], options["level1_target_bytes"]) == (1, 1)
    EngineOptions(**options).validate()
    defaults = load_node_config(write(tmp_path, GOOD, "plain.toml")).storage.engine_options()
    engine = EngineOptions()
    assert defaults == {name: getattr(engine, name) for name in defaults}


def test_relative_data_dir_is_resolved_against_the_config_file(tmp_path: Path) -> None:
    """A config works from any working directory."""
    cfg = load_node_config(write(tmp_path, GOOD))
    assert cfg.node.data_dir == str(tmp_path / "data" / "n1")
    assert cfg.trace_path() == str(tmp_path / "data" / "n1" / "trace.jsonl")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "\n[bogus]\nx = 1\n", "unknown field 'bogus'"),
        (GOOD.replace("tick_ms = 20", 'tick_ms = "fast"'), "raft.tick_ms must be an integer"),
        (GOOD.replace("tick_ms = 20", "tick_ms = true"), "raft.tick_ms must be an integer"),
        (GOOD.replace('id = "n1"\n', ""), "missing required field 'node.id'"),
        (GOOD.replace("127.0.0.1:7001", "nowhere"), "not of the form host:port"),
        (GOOD.replace("127.0.0.1:7001", "127.0.0.1:99999"), "out of range"),
        (GOOD.replace("tick_ms = 20", "tick_ms = 0"), "tick_ms must be positive"),
        (GOOD + '\n[storage]\nsync = "sometimes"\n', "storage.sync must be one of"),
        (GOOD + "\n[storage]\nlevel_size_ratio = 1\n", "level_size_ratio must be at least 2"),
        (GOOD + "\n[storage]\nl0_compaction_trigger_files = 12\n", "l0_compaction_trigger_files must be below"),
        (GOOD + "\n[storage]\nlevel1_target_bytes = 0\n", "level1_target_bytes must be positive"),
        (GOOD.replace('id = "n2"', 'id = "n1"'), "must all be different"),
        ("[node\n", "not valid TOML"),
        (GOOD.replace("[[peers]]", "peers = 3\n[[peerz]]"), "unknown field"),
    ],
)
def test_invalid_node_configs_give_a_config_error_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    """Every mistake is a ConfigError with the file name and what is wrong, never a traceback."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert message in str(info.value)
    assert path in str(info.value)


def test_missing_and_unreadable_config_files_are_config_errors(tmp_path: Path) -> None:
    """No file, a directory, and binary junk are each named plainly."""
    with pytest.raises(ConfigError, match="no such file"):
        load_node_config(str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="is a directory"):
        load_node_config(str(tmp_path))
    junk = tmp_path / "junk.toml"
    junk.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError):
        load_node_config(str(junk))


def test_cluster_file_round_trips_through_dump_and_load(tmp_path: Path) -> None:
    """What `kv cluster up` writes, the client reads back unchanged."""
    cluster = ClusterMap(
        [
            ShardSpec("s0", [ReplicaSpec("n1", "127.0.0.1:7001"), ReplicaSpec("n2", "127.0.0.1:7002")]),
            ShardSpec("s1", [ReplicaSpec("n3", "127.0.0.1:7003", config="n3.toml")]),
        ]
    )
    path = write(tmp_path, dump_cluster(cluster), "cluster.toml")
    assert load_cluster(path) == cluster


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no [[shard]] entries"),
        ('[[shard]]\nname = "s0"\nreplicas = []\n', "has no replicas"),
        ('[[shard]]\nname = "s0"\nreplicas = [{ id = "n1", address = "a:1" }]\n' * 2, "shard name 's0' appears"),
        (
            '[[shard]]\nname = "s0"\nreplicas = [{ id = "n1", address = "a:1" }, { id = "n1", address = "a:2" }]\n',
            "node id 'n1' appears",
        ),
        (
            '[[shard]]\nname = "s0"\nreplicas = [{ id = "n1", adress = "a:1" }]\n',
            "unknown field 'shard[0].replicas[0].adress'",
        ),
    ],
)
def test_invalid_cluster_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    """Unknown shard fields, duplicates and empty shards are ConfigErrors naming the problem."""
    with pytest.raises(ConfigError) as info:
        load_cluster(write(tmp_path, text, "cluster.toml"))
    assert message in str(info.value)


def test_a_planted_bug_is_refused_unless_explicitly_allowed(tmp_path: Path) -> None:
    """A broken node never starts by accident: planted_bug needs allow_planted_bugs, and a known name."""
    with pytest.raises(ConfigError, match="allow_planted_bugs is not true"):
        load_node_config(write(tmp_path, GOOD + '\n[testing]\nplanted_bug = "no-dedup"\n'))
    with pytest.raises(ConfigError, match="unknown planted_bug"):
        load_node_config(write(tmp_path, GOOD + '\n[testing]\nallow_planted_bugs = true\nplanted_bug = "typo"\n'))
    cfg = load_node_config(write(tmp_path, GOOD + '\n[testing]\nallow_planted_bugs = true\nplanted_bug = "no-dedup"\n'))
    assert cfg.testing.planted_bug == "no-dedup"


def test_per_operation_trace_events_are_dropped_unless_the_config_asks_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[trace] per_operation` decides whether commit and read-round events reach the node's trace file."""
    from kvstore.server.node import PER_OPERATION_EVENTS, _raft_tracer
    from kvstore.trace import MemoryTracer, TraceEvent

    monkeypatch.delenv("KVSTORE_TRACE_PER_OPERATION", raising=False)
    cfg = load_node_config(write(tmp_path, GOOD + "\n[trace]\nper_operation = true\n"))
    assert cfg.trace.per_operation is True
    assert load_node_config(write(tmp_path, GOOD, "default.toml")).trace.per_operation is False
    events = [
        TraceEvent(time=0.0, node="n1", term=1, role="leader", event=name, fields={})
        for name in sorted(PER_OPERATION_EVENTS | {"became_leader"})
    ]
    for per_operation, expected in [
        (False, ["became_leader"]),
        (True, sorted(PER_OPERATION_EVENTS | {"became_leader"})),
    ]:
        sink = MemoryTracer()
        tracer = _raft_tracer(sink, per_operation=per_operation)
        for e in events:
            tracer.emit(e)
        assert sorted(e.event for e in sink.events) == expected
