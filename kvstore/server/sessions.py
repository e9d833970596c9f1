"""Client sessions: apply each write once, however often it is retried.

Theory of operation. Every write carries ``(client_id, seq)``. A client re-sends
the *same* pair when it retries, so the state machine can recognise a
duplicate and answer it with the original result instead of applying it again
(Raft paper §8; Ongaro's thesis §6.3). For each client the table keeps the
results of its last ``SESSION_WINDOW_COMMANDS`` commands (a window, so an
asynchronous client may have several writes in flight); clients are evicted
least-recently-used beyond ``MAX_CLIENT_SESSIONS``.

Determinism: on a Raft replica the table changes only when a committed command
is applied, so every replica holds the same table; it is part of snapshots
(:meth:`SessionTable.to_state` / :meth:`SessionTable.from_state`).

``client_id = 0`` means "no session": such a write is applied every time.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from kvstore import errors
from kvstore.invariants import invariant
from kvstore.limits import MAX_CLIENT_SESSIONS, SESSION_WINDOW_COMMANDS


class SessionTable:
    """Recent results per client, bounded in clients and in commands per client."""

    def __init__(
        self, *, max_clients: int = MAX_CLIENT_SESSIONS, window_commands: int = SESSION_WINDOW_COMMANDS
    ) -> None:
        self.max_clients = max_clients
        self.window_commands = window_commands
        # client_id -> OrderedDict(seq -> result), oldest seq first; clients in LRU order.
        self._clients: OrderedDict[int, OrderedDict[int, Any]] = OrderedDict()
        self.evicted_clients = 0

    def __len__(self) -> int:
        return len(self._clients)

    def lookup(self, client_id: int, seq: int) -> tuple[bool, Any]:
        """Return ``(True, result)`` if this command was already applied, else ``(False, None)``.

        Raises:
            OutcomeUnknown: the command is older than the client's window: it
                may have been applied, and its result is no longer known.
        """
        if client_id == 0:
            return False, None
        window = self._clients.get(client_id)
        if window is None:
            return False, None
        if seq in window:
            return True, window[seq]
        if window and seq < next(iter(window)) and len(window) >= self.window_commands:
            raise errors.OutcomeUnknown(
                f"command {seq} of client {client_id:#x} is older than the session window; its outcome is unknown"
            )
        return False, None

    def record(self, client_id: int, seq: int, result: Any) -> None:
        """Remember the result of an applied command (no-op without a session)."""
        if client_id == 0:
            return
        window = self._clients.pop(client_id, None)
        if window is None:
            window = OrderedDict()
            if len(self._clients) >= self.max_clients:
                self._clients.popitem(last=False)
                self.evicted_clients += 1
        self._clients[client_id] = window  # most recently used last
        window[seq] = result
        window.move_to_end(seq)
        while len(window) > self.window_commands:
            window.popitem(last=False)

    def to_state(self) -> list[list[Any]]:
        """A plain, msgpack-able copy (for snapshots): ``[[client_id, [[seq, result], ...]], ...]``."""
        return [[cid, [[s, r] for s, r in w.items()]] for cid, w in self._clients.items()]

    @classmethod
    def from_state(cls, state: list[list[Any]], **kwargs: int) -> SessionTable:
        """Rebuild a table written by :meth:`to_state`."""
        table = cls(**kwargs)
        for cid, entries in state:
            table._clients[int(cid)] = OrderedDict((int(s), r) for s, r in entries)
        table.check_invariants()
        return table

    def check_invariants(self) -> None:
        """Bounded in clients and in commands per client; no empty windows."""
        invariant(len(self._clients) <= self.max_clients, "session table holds at most max_clients clients")
        for window in self._clients.values():
            invariant(0 < len(window) <= self.window_commands, "each session window is non-empty and bounded")
