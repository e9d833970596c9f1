"""Hidden tests of the kv-state-machine lab: exactly-once client sessions, against a model written from the spec.

Mistakes they look for: no de-duplication (a retry applied twice), a retry answered from the current state
instead of with its first result, sessions kept in memory only (lost at restart and in snapshots), and a
session window that evicts the newest results instead of the oldest. Randomized tests run over fixed seeds
and print them.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kvstore import errors
from kvstore.raft.messages import Entry, EntryType
from kvstore.server.state_machine import Command, KVStateMachine, encode_command
from kvstore.types import CasResult


def open_sm(path: Path) -> KVStateMachine:
    return KVStateMachine.open(str(path), background=False)


def apply(sm: KVStateMachine, cmd: Command) -> object:
    """Apply ``cmd`` as the next committed log entry; return its result."""
    return sm.apply(Entry(1, sm.applied_index + 1, EntryType.NORMAL, encode_command(cmd)))


class Model:
    """The spec: put returns the old value, del whether the key existed, cas a CasResult; a (client, seq)
    seen before is not executed again and gets its first result."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.results: dict[tuple[int, int], object] = {}

    def apply(self, cmd: Command) -> object:
        if cmd.client_id and (cmd.client_id, cmd.seq) in self.results:
            return self.results[(cmd.client_id, cmd.seq)]
        current = self.data.get(cmd.key)
        result: object
        if cmd.op == "put":
            self.data[cmd.key] = cmd.value or b""
            result = current
        elif cmd.op == "del":
            self.data.pop(cmd.key, None)
            result = current is not None
        else:
            swapped = current == cmd.expected
            if swapped:
                self.data[cmd.key] = cmd.value or b""
            result = CasResult(swapped, current)
        if cmd.client_id:
            self.results[(cmd.client_id, cmd.seq)] = result
        return result


def test_retries_of_every_kind_of_command_are_applied_once(tmp_path: Path) -> None:
    """A put, a del and a cas, each retried after another client changed the key: each retry is answered with
    the first result and the state shows one application."""
    sm = open_sm(tmp_path / "sm")
    apply(sm, Command("put", b"k", b"v0"))
    first_put = apply(sm, Command("put", b"k", b"mine", client_id=1, seq=1))
    apply(sm, Command("put", b"k", b"theirs", client_id=2, seq=1))
    assert apply(sm, Command("put", b"k", b"mine", client_id=1, seq=1)) == first_put == b"v0"
    assert sm.get(b"k") == b"theirs", "the retried put did not overwrite a later write"
    first_del = apply(sm, Command("del", b"k", client_id=1, seq=2))
    apply(sm, Command("put", b"k", b"again", client_id=2, seq=2))
    assert apply(sm, Command("del", b"k", client_id=1, seq=2)) is first_del is True
    assert sm.get(b"k") == b"again", "the retried del did not delete a later write"
    first_cas = apply(sm, Command("cas", b"k", b"swapped", b"again", client_id=1, seq=3))
    apply(sm, Command("put", b"k", b"again", client_id=2, seq=3))
    assert apply(sm, Command("cas", b"k", b"swapped", b"again", client_id=1, seq=3)) == first_cas
    assert first_cas == CasResult(True, b"again") and sm.get(b"k") == b"again"
    sm.close()


def test_a_retry_after_a_restart_is_still_recognised(tmp_path: Path) -> None:
    """Sessions are state: after reopening, and on a replica restored from a checkpoint, a retry of an applied
    command is answered with its first result and not applied again."""
    sm = open_sm(tmp_path / "a")
    apply(sm, Command("put", b"n", b"1", client_id=9, seq=1))
    apply(sm, Command("put", b"n", b"2", client_id=8, seq=1))
    sm.checkpoint(str(tmp_path / "snap"))
    sm.close()
    sm = open_sm(tmp_path / "a")
    assert apply(sm, Command("put", b"n", b"1", client_id=9, seq=1)) is None
    assert sm.get(b"n") == b"2"
    sm.close()
    other = open_sm(tmp_path / "b")
    other.restore_from(str(tmp_path / "snap"))
    assert apply(other, Command("put", b"n", b"1", client_id=9, seq=1)) is None
    assert other.get(b"n") == b"2"
    other.close()


def test_the_session_window_keeps_the_most_recent_commands(tmp_path: Path) -> None:
    """With a window of 4, after ten commands the last four are remembered with their results, and an older
    one is reported as applied-with-unknown-outcome, never applied again."""
    sm = open_sm(tmp_path / "sm")
    sm.window = 4
    results = {seq: apply(sm, Command("put", b"w", b"%d" % seq, client_id=4, seq=seq)) for seq in range(1, 11)}
    for seq in range(7, 11):
        assert apply(sm, Command("put", b"w", b"%d" % seq, client_id=4, seq=seq)) == results[seq], seq
    old = apply(sm, Command("put", b"w", b"2", client_id=4, seq=2))
    assert isinstance(old, errors.OutcomeUnknown)
    assert sm.get(b"w") == b"10"
    sm.check_invariants()
    sm.close()


@pytest.mark.parametrize("seed", [501, 502, 503])
def test_a_log_with_retries_gives_the_models_results_and_state(tmp_path: Path, seed: int) -> None:
    """A seeded log of puts, dels and cas from several clients, a quarter of them retries of earlier commands
    still in the window: every result and the final state equal the model's."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    sm = open_sm(tmp_path / "sm")
    model = Model()
    issued: list[Command] = []
    next_seq = {c: 1 for c in (1, 2, 3)}
    for n in range(300):
        if issued and rng.random() < 0.25:
            recent = [c for c in issued[-20:] if next_seq[c.client_id] - c.seq <= 8]
            cmd = rng.choice(recent or issued[-1:])
        else:
            client = rng.choice((1, 2, 3))
            key = b"k%d" % rng.randrange(6)
            op = rng.choice(("put", "put", "del", "cas"))
            value = b"v%d" % rng.randrange(1000)
            expected = rng.choice((None, b"v%d" % rng.randrange(1000), model.data.get(key)))
            cmd = Command(op, key, None if op == "del" else value, expected if op == "cas" else None, client,
                          next_seq[client])
            next_seq[client] += 1
            issued.append(cmd)
        assert apply(sm, cmd) == model.apply(cmd), f"command {n}: {cmd}"
    assert dict(sm.scan(None, None, reverse=False, limit=1000)) == model.data
    sm.close()
