# ruff: noqa  (a patch fragment: names come from the file it patches)
"""Session results kept in memory only: after a restart (or on a replica restored from a snapshot) a retry is applied again."""

FILE = "kvstore/server/state_machine.py"
CAUGHT_BY = ['test_sessions_and_applied_index_survive_a_restart', 'test_a_retry_after_a_restart_is_still_recognised']


class KVStateMachine:
    def _record_session(self, client_id: int, seq: int, result: object, index: int, batch: WriteBatch) -> None:
        """Remember ``result`` for (client, seq) in memory and in ``batch``; evict as needed."""
        if client_id == 0:
            return
        entry = self._clients.pop(client_id, None)
        window: OrderedDict[int, Any] = entry[1] if entry else OrderedDict()
        if entry is None and len(self._clients) >= self.max_clients:
            self._clients.popitem(last=False)
        window[seq] = _freeze(result)  # BUG: nothing goes into the batch, so nothing reaches the engine
        while len(window) > self.window:
            window.popitem(last=False)
        self._clients[client_id] = (index, window)
