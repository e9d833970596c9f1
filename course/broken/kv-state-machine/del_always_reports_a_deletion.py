# ruff: noqa  (a patch fragment: names come from the file it patches)
"""``del`` answers True whether or not the key existed (and writes a needless tombstone): clients cannot tell a no-op."""

FILE = "kvstore/server/state_machine.py"
CAUGHT_BY = ['test_commands_return_the_results_clients_expect', 'test_a_log_with_retries_gives_the_models_results_and_state']


class KVStateMachine:
    def _execute(self, cmd: Command, batch: WriteBatch) -> object:
        """Run one command against the current state, adding its writes to ``batch``."""
        current = self.engine.get(DATA + cmd.key)
        if cmd.op == "put":
            invariant(cmd.value is not None, "a put carries a value")
            batch.put(DATA + cmd.key, cmd.value or b"")
            return current
        if cmd.op == "del":
            batch.delete(DATA + cmd.key)
            return True  # BUG: the answer is whether the key existed
        if current == cmd.expected:
            batch.put(DATA + cmd.key, cmd.value or b"")
            return CasResult(True, current)
        return CasResult(False, current)
