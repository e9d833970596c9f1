"""The cluster file: which shards exist and where their replicas listen.

A cluster file is TOML; ``kv cluster up`` writes one, and a person can write
one by hand::

    # cluster.toml
    [[shard]]
    name = "s0"
    replicas = [
      { id = "n1", address = "127.0.0.1:7001" },
      { id = "n2", address = "127.0.0.1:7002" },
      { id = "n3", address = "127.0.0.1:7003" },
    ]

    [[shard]]
    name = "s1"
    replicas = [{ id = "n4", address = "127.0.0.1:7004" }]

Rules, each checked with a clear :class:`~kvstore.errors.ConfigError` naming
the file: at least one shard; shard names unique; every shard has at least one
replica; node ids and addresses unique across the whole cluster; addresses of
the form ``host:port``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from kvstore.config import load_dataclass, parse_address, read_toml
from kvstore.errors import ConfigError
from kvstore.limits import MAX_RING_SHARDS, MAX_SHARD_NAME_BYTES

# Where the cluster file is looked for when --cluster is not given.
CLUSTER_ENV_VAR = "KV_CLUSTER"


@dataclass(frozen=True, slots=True)
class ReplicaSpec:
    """One node of a shard."""

    id: str
    address: str
    # Optional: the node's own config file (kv cluster up fills it in).
    config: str = ""

    def validate(self) -> None:
        """The address must be host:port."""
        parse_address(self.address)


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """One Raft group: a name and its replicas."""

    name: str
    replicas: list[ReplicaSpec] = field(default_factory=list)

    def validate(self) -> None:
        """A shard needs a name and at least one replica."""
        if not self.name:
            raise ValueError("shard name must not be empty")
        if len(self.name.encode()) > MAX_SHARD_NAME_BYTES:
            raise ValueError(f"shard name {self.name[:20]!r}... is longer than {MAX_SHARD_NAME_BYTES} bytes")
        if not self.replicas:
            raise ValueError(f"shard {self.name!r} has no replicas")


@dataclass(frozen=True, slots=True)
class ClusterMap:
    """Every shard of the cluster, in file order."""

    shard: list[ShardSpec] = field(default_factory=list)

    @property
    def shards(self) -> list[ShardSpec]:
        """The shards (plural alias of the TOML table name)."""
        return self.shard

    def validate(self) -> None:
        """Names, ids and addresses are unique; at least one shard."""
        if not self.shard:
            raise ValueError("the cluster has no [[shard]] entries")
        if len(self.shard) > MAX_RING_SHARDS:
            raise ValueError(f"{len(self.shard)} shards is more than the limit of {MAX_RING_SHARDS}")
        _unique("shard name", [s.name for s in self.shard])
        _unique("node id", [r.id for s in self.shard for r in s.replicas])
        _unique("address", [r.address for s in self.shard for r in s.replicas])

    def shard_named(self, name: str) -> ShardSpec:
        """The shard called ``name``.

        Raises:
            ConfigError: no such shard.
        """
        for s in self.shard:
            if s.name == name:
                return s
        raise ConfigError(f"no shard named {name!r} in the cluster (shards: {', '.join(self.names())})")

    def names(self) -> list[str]:
        """Shard names in file order."""
        return [s.name for s in self.shard]

    def replica(self, node_id: str) -> tuple[ShardSpec, ReplicaSpec]:
        """The shard and replica entry of node ``node_id``.

        Raises:
            ConfigError: no such node.
        """
        for s in self.shard:
            for r in s.replicas:
                if r.id == node_id:
                    return s, r
        raise ConfigError(f"no node {node_id!r} in the cluster")


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what} {v!r} appears more than once")
        seen.add(v)


def load_cluster(path: str) -> ClusterMap:
    """Read and validate a cluster file.

    Raises:
        ConfigError: unreadable, not TOML, unknown field, or a broken rule above.
    """
    return load_dataclass(ClusterMap, read_toml(path), source=path)


def dump_cluster(cluster: ClusterMap) -> str:
    """Render a cluster map as TOML that :func:`load_cluster` reads back."""
    lines = ["# kvstore cluster file: shards and their replicas' addresses.", ""]
    for s in cluster.shard:
        lines += ["[[shard]]", f"name = {json.dumps(s.name)}", "replicas = ["]
        for r in s.replicas:
            extra = f", config = {json.dumps(r.config)}" if r.config else ""
            lines.append(f"  {{ id = {json.dumps(r.id)}, address = {json.dumps(r.address)}{extra} }},")
        lines += ["]", ""]
    return "\n".join(lines)


# Where `kv cluster up` records the cluster it started, so a plain `kv put a 1`
# finds it (override the folder with $KV_STATE_DIR, e.g. in tests).
STATE_DIR_ENV_VAR = "KV_STATE_DIR"


def state_file() -> Path:
    """The file that remembers the most recently started local cluster."""
    base = os.environ.get(STATE_DIR_ENV_VAR) or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "kvstore"
    )
    return Path(base) / "current-cluster"


def remember_cluster(cluster_file: Path) -> None:
    """Record ``cluster_file`` as the default for later ``kv`` commands."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(cluster_file.resolve()) + "\n")


def remembered_cluster() -> str | None:
    """The cluster file recorded by the last ``kv cluster up``, if it still exists."""
    try:
        recorded = state_file().read_text().strip()
    except OSError:
        return None
    return recorded if recorded and os.path.exists(recorded) else None


def find_cluster_file(explicit: str | None) -> str:
    """The cluster file to use: ``explicit``, else ``$KV_CLUSTER``, else the last ``kv cluster up``'s.

    Raises:
        ConfigError: none of them is there.
    """
    path = explicit or os.environ.get(CLUSTER_ENV_VAR) or remembered_cluster()
    if not path:
        raise ConfigError(
            f"no cluster file: pass --cluster FILE, set {CLUSTER_ENV_VAR}, or start one with `kv cluster up`"
        )
    return path
