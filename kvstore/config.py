"""Configuration: TOML files mapped onto typed, frozen dataclasses.

A node's configuration file (``kv node --config FILE``) looks like::

    [node]
    id = "n1"                    # unique within the cluster
    listen = "127.0.0.1:7001"    # host:port the gRPC server binds
    data_dir = "data/n1"         # relative paths are relative to the file

    [[peers]]                    # the other members of this node's Raft group
    id = "n2"
    address = "127.0.0.1:7002"

    [raft]
    tick_ms = 50

    [storage]
    sync = "always"

Every section and field is optional except ``[node]`` ``id`` and ``listen``;
defaults are the dataclass defaults below. An unknown section or field, a
value of the wrong type, or an invalid value is a :class:`ConfigError` that
names the file and the dotted field (``raft.tick_ms``), never a traceback.

:func:`load_dataclass` is the generic mapper; other files (the cluster file of
:mod:`kvstore.client.cluster`) reuse it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from kvstore.errors import ConfigError
from kvstore.limits import MAX_CONFIG_FILE_BYTES

T = TypeVar("T")


# --------------------------------------------------------------------------
# The node configuration.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeSection:
    """Who this node is and where it listens."""

    id: str
    listen: str
    data_dir: str = "data"
    shard: str = "s0"

    def validate(self) -> None:
        """Check values the type system cannot."""
        if not self.id or not self.id.replace("-", "").replace("_", "").isalnum():
            raise ValueError("id must be non-empty letters, digits, '-' or '_'")
        parse_address(self.listen)


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """Another member of this node's Raft group."""

    id: str
    address: str

    def validate(self) -> None:
        """Check the address has the form host:port."""
        parse_address(self.address)


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Timing of the Raft runtime, in ticks of ``tick_ms`` milliseconds."""

    tick_ms: int = 50
    election_timeout_ticks: int = 10
    heartbeat_ticks: int = 2
    pre_vote: bool = True
    check_quorum: bool = True
    snapshot_threshold_entries: int = 10_000

    def validate(self) -> None:
        """Election timeout must comfortably exceed the heartbeat interval."""
        if self.tick_ms <= 0:
            raise ValueError("tick_ms must be positive")
        if self.heartbeat_ticks <= 0:
            raise ValueError("heartbeat_ticks must be positive")
        if self.election_timeout_ticks <= 2 * self.heartbeat_ticks:
            raise ValueError("election_timeout_ticks must exceed 2 * heartbeat_ticks")
        if self.snapshot_threshold_entries <= 0:
            raise ValueError("snapshot_threshold_entries must be positive")


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Durability settings.

    ``sync``: ``"always"`` fsyncs before every acknowledgement (the default and
    the only mode that survives power loss); ``"batch"`` groups fsyncs;
    ``"never"`` leaves flushing to the OS (benchmarks only).
    """

    sync: Literal["always", "batch", "never"] = "always"
    memtable_bytes: int = 4 * 1024 * 1024
    # The engine's level shape (kvstore.lsm.engine.EngineOptions; defaults equal the engine's). Small values
    # give a short test run several levels, e.g. jepsen-lite's run for the planted bug early-tombstone-drop.
    table_target_bytes: int = 2 * 1024 * 1024
    l0_compaction_trigger_files: int = 4
    level1_target_bytes: int = 10 * 1024 * 1024
    level_size_ratio: int = 10

    def validate(self) -> None:
        """Memtable must hold at least one maximal entry; level shape values must be usable by the engine."""
        if self.memtable_bytes < 64 * 1024:
            raise ValueError("memtable_bytes must be at least 65536")
        for name in ("table_target_bytes", "l0_compaction_trigger_files", "level1_target_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.l0_compaction_trigger_files >= 12:  # the engine's l0_stall_files: the trigger must stay below it
            raise ValueError("l0_compaction_trigger_files must be below 12")
        if self.level_size_ratio < 2:
            raise ValueError("level_size_ratio must be at least 2")

    def engine_options(self) -> dict[str, int]:
        """The keyword options for ``Engine.open`` (``KVStateMachine.open``) that this section sets."""
        return {
            "memtable_bytes": self.memtable_bytes,
            "table_target_bytes": self.table_target_bytes,
            "l0_compaction_trigger_files": self.l0_compaction_trigger_files,
            "level1_target_bytes": self.level1_target_bytes,
            "level_size_ratio": self.level_size_ratio,
        }


@dataclass(frozen=True, slots=True)
class TraceConfig:
    """Where trace events go (JSON lines); empty path means ``DATA_DIR/trace.jsonl``.

    ``per_operation``: also trace the events the Raft core emits once per commit or per
    read round (``commit_advanced``, ``read_round_started``, ``reads_confirmed``). Off by
    default: each is a flushed line, a write system call per operation on every node.
    Elections, role changes, snapshots and errors are always traced.
    """

    path: str = ""
    enabled: bool = True
    per_operation: bool = False


@dataclass(frozen=True, slots=True)
class TestingConfig:
    """Switches for fault injection and planted bugs. Off by default; never for production.

    ``allow_fault_injection``: accept the InjectFaults admin RPC (the test
    harness's partitions, drops and delays).
    ``power_loss_journal``: journal every fsync, so that a harness can simulate
    power loss after killing the node (:mod:`kvstore.server.power_loss`).
    ``planted_bug``: break one rule on purpose (:mod:`kvstore.server.planted`);
    refused unless ``allow_planted_bugs`` is true as well.
    """

    allow_fault_injection: bool = False
    power_loss_journal: bool = False
    allow_planted_bugs: bool = False
    planted_bug: str = ""

    def validate(self) -> None:
        """A planted bug must be known and explicitly allowed."""
        if not self.planted_bug:
            return
        from kvstore.server.planted import PLANTED_BUGS

        if self.planted_bug not in PLANTED_BUGS:
            raise ValueError(f"unknown planted_bug {self.planted_bug!r} (known: {', '.join(sorted(PLANTED_BUGS))})")
        if not self.allow_planted_bugs:
            raise ValueError("planted_bug is set but allow_planted_bugs is not true: refusing to run a broken node")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a node process needs, read from one TOML file."""

    node: NodeSection
    peers: list[PeerConfig] = field(default_factory=list)
    raft: RaftConfig = field(default_factory=RaftConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    trace: TraceConfig = field(default_factory=TraceConfig)
    testing: TestingConfig = field(default_factory=TestingConfig)

    def validate(self) -> None:
        """Peer ids are unique and differ from this node's id."""
        ids = [self.node.id] + [p.id for p in self.peers]
        if len(set(ids)) != len(ids):
            raise ValueError("node id and peer ids must all be different")

    def trace_path(self) -> str:
        """The trace file this node writes."""
        return self.trace.path or os.path.join(self.node.data_dir, "trace.jsonl")


def load_node_config(path: str) -> NodeConfig:
    """Read and validate a node configuration file.

    Relative ``data_dir`` and ``trace.path`` are resolved against the file's
    directory, so a config works from any working directory.

    Raises:
        ConfigError: missing or unreadable file, bad TOML, unknown or invalid field.
    """
    data = read_toml(path)
    cfg = load_dataclass(NodeConfig, data, source=path)
    base = os.path.dirname(os.path.abspath(path))
    node = dataclasses.replace(cfg.node, data_dir=os.path.join(base, cfg.node.data_dir))
    trace = cfg.trace
    if trace.path:
        trace = dataclasses.replace(trace, path=os.path.join(base, trace.path))
    return dataclasses.replace(cfg, node=node, trace=trace)


# --------------------------------------------------------------------------
# Generic TOML -> dataclass mapping.
# --------------------------------------------------------------------------


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"``; raise ValueError with a readable message if malformed."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"address {address!r} is not of the form host:port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} in {address!r} is out of range")
    return host.strip("[]"), port


def read_toml(path: str) -> dict[str, Any]:
    """Read a small TOML file, turning every failure into a ConfigError."""
    try:
        size = os.path.getsize(path)
        if size > MAX_CONFIG_FILE_BYTES:
            raise ConfigError(f"{path}: {size} bytes is too large for a config file")
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8 text") from None


def load_dataclass(cls: type[T], data: object, *, source: str, where: str = "") -> T:
    """Build dataclass ``cls`` from parsed TOML ``data``, checking every field.

    After construction, a ``validate()`` method on the dataclass (if any) is
    called; a ValueError from it becomes a ConfigError naming the section.

    Raises:
        ConfigError: naming ``source`` and the dotted field path.
    """
    label = where or "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {label} must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{source}: unknown field {_dotted(where, unknown[0])!r} (known: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = _dotted(where, name)
        if name not in data:
            no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if no_default:
                raise ConfigError(f"{source}: missing required field {dotted!r}")
            continue
        kwargs[name] = _convert(hints[name], data[name], source=source, where=dotted)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(f"{source}: {label}: {exc}") from None
    return obj


def _dotted(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _convert(tp: Any, value: object, *, source: str, where: str) -> Any:
    """Check (and where needed build) one value against its annotated type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return load_dataclass(typing.cast(type[Any], tp), value, source=source, where=where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {where} must be a list")
        return [_convert(args[0], v, source=source, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: {where} must be one of {choices}, not {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None) and value is None:
                return None
        non_none = [a for a in args if a is not type(None)]
        return _convert(non_none[0], value, source=source, where=where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, float, bool):
        # bool is a subclass of int in Python; TOML keeps them apart, so do we.
        if type(value) is not tp:
            raise ConfigError(f"{source}: {where} must be {_type_name(tp)}, not {_type_name(type(value))} ({value!r})")
        return value
    raise ConfigError(f"{source}: {where} has an unsupported type {tp!r}")  # pragma: no cover


def _type_name(tp: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, tp.__name__)
