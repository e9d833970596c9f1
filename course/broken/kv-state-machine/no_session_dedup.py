# ruff: noqa  (a patch fragment: names come from the file it patches)
"""No session de-duplication: a client's retry of a command that already committed is applied a second time."""

FILE = "kvstore/server/state_machine.py"
CAUGHT_BY = ['test_a_retried_command_is_applied_once_and_answered_with_its_first_result', 'test_retries_of_every_kind_of_command_are_applied_once']


class KVStateMachine:
    def _apply_command(self, entry: Entry, batch: WriteBatch) -> object:
        """Apply a NORMAL entry into ``batch``: de-duplicate, execute, remember the result."""
        try:
            cmd = decode_command(entry.data)
        except errors.InvalidArgument as exc:
            return exc
        result = self._execute(cmd, batch)  # BUG: never asks whether (client, seq) was applied before
        self._record_session(cmd.client_id, cmd.seq, result, entry.index, batch)
        return result
