# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A retry is not re-applied but is answered from the current state instead of with its first result."""

FILE = "kvstore/server/state_machine.py"
CAUGHT_BY = ['test_retries_of_every_kind_of_command_are_applied_once']


class KVStateMachine:
    def _apply_command(self, entry: Entry, batch: WriteBatch) -> object:
        """Apply a NORMAL entry into ``batch``: de-duplicate, execute, remember the result."""
        try:
            cmd = decode_command(entry.data)
        except errors.InvalidArgument as exc:
            return exc
        done, remembered = self.lookup_session(cmd.client_id, cmd.seq)
        if done:
            current = self.engine.get(DATA + cmd.key)  # BUG: the client must get the first answer
            if cmd.op == "put":
                return current
            if cmd.op == "del":
                return current is not None
            return CasResult(current == cmd.expected, current)
        result = self._execute(cmd, batch)
        self._record_session(cmd.client_id, cmd.seq, result, entry.index, batch)
        return result
