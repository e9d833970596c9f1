# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A full session window evicts the newest result instead of the oldest: the retry most likely to arrive is applied again."""

FILE = "kvstore/server/state_machine.py"
CAUGHT_BY = ['test_the_session_window_keeps_the_most_recent_commands']


class KVStateMachine:
    def _record_session(self, client_id: int, seq: int, result: object, index: int, batch: WriteBatch) -> None:
        """Remember ``result`` for (client, seq) in memory and in ``batch``; evict as needed."""
        if client_id == 0:
            return
        entry = self._clients.pop(client_id, None)
        window: OrderedDict[int, Any] = entry[1] if entry else OrderedDict()
        if entry is None and len(self._clients) >= self.max_clients:
            old_id, (_, old_window) = self._clients.popitem(last=False)
            for old_seq in old_window:
                batch.delete(_session_key(old_id, old_seq))
            batch.delete(_client_key(old_id))
        stored = _freeze(result)
        if len(window) >= self.window:
            dropped, _ = window.popitem(last=True)  # BUG: evicts the most recent command
            batch.delete(_session_key(client_id, dropped))
        window[seq] = stored
        batch.put(_session_key(client_id, seq), msgpack.packb(stored, use_bin_type=True))
        self._clients[client_id] = (index, window)
        batch.put(_client_key(client_id), msgpack.packb([index, list(window)], use_bin_type=True))
