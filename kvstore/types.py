"""Small value types shared by the client, the server and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CasResult:
    """Outcome of a compare-and-set: whether it swapped, and the value before."""

    swapped: bool
    current: bytes | None


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What a node reports about itself (mirrors ``StatusResponse``)."""

    node_id: str
    shard: str
    role: str
    term: int = 0
    leader_id: str = ""
    commit_index: int = 0
    applied_index: int = 0
    log_bytes: int = 0
    keys: int = 0
    disk_bytes: int = 0
    level_files: list[int] = field(default_factory=list)
    engine: str = ""
