"""The replicated key-value state machine used by the simulator.

Commands are JSON objects (``{"id": 7, "f": "write", "key": "k1", "value": 3}``
or ``"f": "cas"`` with ``"expected"``/``"new"``), so a trace or a snapshot
reads as text. Reads do not go through the log (ReadIndex serves them). Any other entry
data (tests propose raw text) is applied as a no-op.
Implements :class:`kvstore.raft.StateMachine`.
"""

from __future__ import annotations

import json
from typing import Any

from kvstore.invariants import invariant
from kvstore.raft.messages import Entry, EntryType


def encode_command(op_id: int, f: str, key: str, value: Any) -> bytes:
    """Encode a client command: ``value`` is the written value, or ``[expected, new]`` for cas."""
    if f == "cas":
        return json.dumps({"id": op_id, "f": f, "key": key, "expected": value[0], "new": value[1]}).encode()
    return json.dumps({"id": op_id, "f": f, "key": key, "value": value}).encode()


def decode_command(data: bytes) -> dict[str, Any] | None:
    """The command object, or None if ``data`` is not a JSON object (tests propose raw text)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def command_id(entry: Entry) -> int | None:
    """The client op id of a NORMAL entry, or None for other entries."""
    if entry.type != EntryType.NORMAL or not entry.data:
        return None
    obj = decode_command(entry.data)
    op_id = obj.get("id") if obj else None
    return int(op_id) if op_id is not None else None


class KVStateMachine:
    """A dict of str -> JSON value, plus the last applied index."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.applied_index = 0

    def apply(self, entry: Entry) -> object:
        """Apply one committed entry; returns None for writes, a bool for cas."""
        invariant(entry.index == self.applied_index + 1, "entries are applied in order, once")
        self.applied_index = entry.index
        if entry.type != EntryType.NORMAL or not entry.data:
            return None
        cmd = decode_command(entry.data)
        if cmd is None:
            return None  # opaque data: counted as applied, changes nothing
        f = cmd.get("f")
        if f == "write":
            self.data[cmd["key"]] = cmd["value"]
            return None
        if f == "cas":
            if self.data.get(cmd["key"]) == cmd["expected"]:
                self.data[cmd["key"]] = cmd["new"]
                return True
            return False
        return None

    def read(self, key: str) -> Any:
        """The current value of ``key`` (None if absent)."""
        return self.data.get(key)

    def snapshot(self) -> bytes:
        """JSON image of the data and the applied index."""
        return json.dumps({"applied": self.applied_index, "data": self.data}, sort_keys=True).encode()

    def restore(self, data: bytes) -> None:
        """Replace everything with a snapshot image."""
        obj: dict[str, Any] = json.loads(data) if data else {"applied": 0, "data": {}}
        self.data = dict(obj["data"])
        self.applied_index = int(obj["applied"])
