"""The replicated KV state machine: results, exactly-once sessions, restart, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import errors
from kvstore.raft.messages import Entry, EntryType
from kvstore.server.state_machine import Command, KVStateMachine, decode_command, encode_command
from kvstore.types import CasResult


class Feeder:
    """Applies commands as consecutive log entries."""

    def __init__(self, sm: KVStateMachine) -> None:
        self.sm = sm

    def apply(self, cmd: Command | bytes, *, kind: EntryType = EntryType.NORMAL) -> object:
        data = cmd if isinstance(cmd, bytes) else encode_command(cmd)
        return self.sm.apply(Entry(1, self.sm.applied_index + 1, kind, data))


def open_sm(path: Path) -> KVStateMachine:
    return KVStateMachine.open(str(path), background=False)


def test_commands_return_the_results_clients_expect(tmp_path: Path) -> None:
    """put returns the previous value, del whether the key existed, cas whether it swapped."""
    sm = open_sm(tmp_path / "e")
    f = Feeder(sm)
    assert f.apply(Command("put", b"a", b"1")) is None
    assert f.apply(Command("put", b"a", b"2")) == b"1"
    assert f.apply(Command("cas", b"a", b"3", b"nope")) == CasResult(False, b"2")
    assert f.apply(Command("cas", b"a", b"3", b"2")) == CasResult(True, b"2")
    assert f.apply(Command("cas", b"b", b"new", None)) == CasResult(True, None)
    assert f.apply(Command("del", b"a")) is True
    assert f.apply(Command("del", b"a")) is False
    assert f.apply(b"", kind=EntryType.NOOP) is None
    assert sm.get(b"b") == b"new" and sm.get(b"a") is None
    assert sm.applied_index == 8
    sm.close()


def test_a_retried_command_is_applied_once_and_answered_with_its_first_result(tmp_path: Path) -> None:
    """The same (client_id, seq) proposed twice changes the state once; both get the same answer."""
    sm = open_sm(tmp_path / "e")
    f = Feeder(sm)
    f.apply(Command("put", b"k", b"v0"))
    first = f.apply(Command("cas", b"k", b"v1", b"v0", client_id=7, seq=1))
    f.apply(Command("put", b"k", b"v0", client_id=8, seq=1))  # someone resets the value
    retry = f.apply(Command("cas", b"k", b"v1", b"v0", client_id=7, seq=1))
    assert first == retry == CasResult(True, b"v0")
    assert sm.get(b"k") == b"v0", "the retry did not swap a second time"
    sm.close()


def test_sessions_and_applied_index_survive_a_restart(tmp_path: Path) -> None:
    """After reopening, the node knows where to replay from and still de-duplicates retries."""
    sm = open_sm(tmp_path / "e")
    f = Feeder(sm)
    f.apply(Command("put", b"x", b"1", client_id=3, seq=1))
    f.apply(Command("put", b"x", b"2", client_id=3, seq=2))
    sm.close()
    sm = open_sm(tmp_path / "e")
    assert sm.applied_index == 2
    assert sm.lookup_session(3, 1) == (True, None)
    assert sm.lookup_session(3, 2) == (True, b"1")
    assert Feeder(sm).apply(Command("put", b"x", b"9", client_id=3, seq=2)) == b"1"
    assert sm.get(b"x") == b"2"
    sm.close()


def test_session_windows_and_client_count_are_bounded_and_evict_deterministically(tmp_path: Path) -> None:
    """Old commands fall out of a client's window; the least recently active client is evicted."""
    sm = open_sm(tmp_path / "e")
    sm.window, sm.max_clients = 3, 2
    f = Feeder(sm)
    for seq in range(1, 6):
        f.apply(Command("put", b"k", b"%d" % seq, client_id=1, seq=seq))
    done, result = sm.lookup_session(1, 1)
    assert done and isinstance(result, errors.OutcomeUnknown), "too old to know: said so, not re-applied"
    assert sm.lookup_session(1, 5)[0]
    f.apply(Command("put", b"k", b"a", client_id=2, seq=1))
    f.apply(Command("put", b"k", b"b", client_id=3, seq=1))  # evicts client 1 (least recently active)
    assert sm.session_count() == 2
    assert sm.lookup_session(1, 5) == (False, None)
    sm.check_invariants()
    sm.close()
    reopened = open_sm(tmp_path / "e")
    assert reopened.session_count() == 2 and reopened.lookup_session(3, 1)[0]
    reopened.close()


def test_a_malformed_command_changes_nothing_but_is_counted_as_applied(tmp_path: Path) -> None:
    """Garbage in the log (a buggy client library) cannot crash or diverge replicas."""
    sm = open_sm(tmp_path / "e")
    result = Feeder(sm).apply(b"\xc1not msgpack")
    assert isinstance(result, errors.InvalidArgument)
    assert sm.applied_index == 1 and sm.scan(None, None, reverse=False, limit=10) == []
    sm.close()


def test_checkpoint_restore_gives_an_identical_state(tmp_path: Path) -> None:
    """A snapshot (engine checkpoint) installed elsewhere holds the same data, index and sessions."""
    a = open_sm(tmp_path / "a")
    f = Feeder(a)
    for i in range(50):
        f.apply(Command("put", b"k%02d" % i, b"v%d" % i, client_id=5, seq=i + 1))
    a.checkpoint(str(tmp_path / "snap"))
    b = open_sm(tmp_path / "b")
    Feeder(b).apply(Command("put", b"junk", b"x"))
    b.restore_from(str(tmp_path / "snap"))
    assert b.applied_index == 50
    assert b.scan(None, None, reverse=False, limit=100) == a.scan(None, None, reverse=False, limit=100)
    assert b.lookup_session(5, 50) == (True, None)
    a.close()
    b.close()


def test_command_encoding_round_trips_and_rejects_garbage() -> None:
    """encode/decode are inverse; malformed input is InvalidArgument, never another exception."""
    for cmd in [
        Command("put", b"k", b"v", None, 1, 2),
        Command("del", b"k", None, None, 0, 0),
        Command("cas", b"k", b"new", None, 9, 9),
        Command("cas", b"k", b"n", b"old", 1, 1),
    ]:
        assert decode_command(encode_command(cmd)) == cmd
    for junk in [b"", b"\x93\xa3put", b"\x91\xa4nope", b"\xff"]:
        with pytest.raises(errors.InvalidArgument):
            decode_command(junk)


ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "del", "cas"]),
        st.binary(min_size=1, max_size=2),
        st.binary(max_size=2),
        st.integers(0, 3),
        st.integers(1, 4),
    ),
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(ops)
def test_two_replicas_applying_the_same_log_end_in_the_same_state(tmp_path_factory, commands) -> None:  # type: ignore[no-untyped-def]
    """Determinism: the same entries in the same order give the same data, results and sessions."""
    states, results = [], []
    for name in ("r1", "r2"):
        sm = open_sm(tmp_path_factory.mktemp(name))
        f = Feeder(sm)
        out = []
        for op, key, value, cid, seq in commands:
            cmd = Command(op, key, value if op != "del" else None, (value or None) if op == "cas" else None, cid, seq)
            out.append(repr(f.apply(cmd)))
        states.append(sm.scan(None, None, reverse=False, limit=1000))
        results.append(out)
        sm.close()
    assert states[0] == states[1] and results[0] == results[1]


def test_the_planted_no_dedup_bug_applies_a_retry_twice(tmp_path: Path) -> None:
    """The planted bug really breaks exactly-once (so a harness that misses it is itself broken)."""
    sm = open_sm(tmp_path / "e")
    sm.dedup = False
    f = Feeder(sm)
    f.apply(Command("put", b"k", b"v0"))
    f.apply(Command("cas", b"k", b"v1", b"v0", client_id=7, seq=1))
    f.apply(Command("put", b"k", b"v0", client_id=8, seq=1))
    retry = f.apply(Command("cas", b"k", b"v1", b"v0", client_id=7, seq=1))
    assert retry == CasResult(True, b"v0") and sm.get(b"k") == b"v1", "applied a second time"
    sm.close()


def test_the_largest_user_key_fits_behind_the_namespace_prefix(tmp_path: Path) -> None:
    """A key of exactly MAX_KEY_BYTES is stored and read back (the engine allows room for the prefix)."""
    from kvstore.limits import MAX_KEY_BYTES

    sm = open_sm(tmp_path / "e")
    big = b"k" * MAX_KEY_BYTES
    Feeder(sm).apply(Command("put", big, b"v", client_id=1, seq=1))
    assert sm.get(big) == b"v"
    assert sm.scan(None, None, reverse=False, limit=5) == [(big, b"v")]
    sm.close()


def test_an_interrupted_snapshot_install_is_finished_or_undone_at_open(tmp_path: Path) -> None:
    """A crash inside restore_from leaves either the old state or the new one, never a mix."""
    import shutil

    from kvstore.server.state_machine import recover_engine_dir

    old = open_sm(tmp_path / "e")
    Feeder(old).apply(Command("put", b"k", b"old"))
    old.close()
    new = open_sm(tmp_path / "n")
    Feeder(new).apply(Command("put", b"k", b"new"))
    Feeder(new).apply(Command("put", b"k2", b"new"))
    new.checkpoint(str(tmp_path / "snap"))
    new.close()
    engine = tmp_path / "e"
    # Crash during the copy: a partial PATH.incoming beside the old state -> the old state survives.
    shutil.copytree(tmp_path / "snap", f"{engine}.incoming")
    next(p for p in Path(f"{engine}.incoming").iterdir() if p.suffix == ".sst").unlink()
    recover_engine_dir(str(engine))
    reopened = open_sm(engine)
    assert reopened.get(b"k") == b"old" and not Path(f"{engine}.incoming").exists()
    reopened.close()
    # Crash between the two renames: PATH.old and a complete PATH.incoming -> the new state wins.
    shutil.copytree(tmp_path / "snap", f"{engine}.incoming")
    engine.rename(f"{engine}.old")
    restored = open_sm(engine)
    assert restored.get(b"k") == b"new" and restored.applied_index == 2
    assert not Path(f"{engine}.old").exists()
    restored.close()


_OPS = st.sampled_from(["put", "del", "cas"])
_KEYS = st.sampled_from([b"a", b"b", b"c"])
_VALUES = st.sampled_from([b"1", b"2", b"3"])
_COMMANDS = st.lists(
    st.tuples(_OPS, _KEYS, _VALUES, st.one_of(st.none(), _VALUES), st.integers(0, 3), st.integers(1, 6)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(commands=_COMMANDS, cuts=st.lists(st.integers(1, 40), max_size=6))
def test_apply_batch_gives_the_results_and_state_of_applying_one_by_one(
    tmp_path_factory: pytest.TempPathFactory,
    commands: list[tuple[str, bytes, bytes, bytes | None, int, int]],
    cuts: list[int],
) -> None:
    """Runs applied with apply_batch (commands reading keys written earlier in the same run, retries
    inside a run) answer and end exactly like the same entries applied one at a time, also after reopening."""
    entries = [
        Entry(1, i + 1, EntryType.NORMAL, encode_command(Command(op, key, value, expected, client_id=cid, seq=seq)))
        for i, (op, key, value, expected, cid, seq) in enumerate(commands)
    ]
    one = open_sm(tmp_path_factory.mktemp("one"))
    expected_results = [one.apply(e) for e in entries]
    path = tmp_path_factory.mktemp("runs")
    runs = open_sm(path)
    results: list[object] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(entries)]:
        results += runs.apply_batch(entries[start:cut])
        start = max(start, cut)
    assert results == expected_results
    assert runs.applied_index == one.applied_index == len(entries)
    assert runs.scan(None, None, reverse=False, limit=100) == one.scan(None, None, reverse=False, limit=100)
    runs.close()
    reopened = open_sm(path)
    assert reopened.applied_index == len(entries)
    assert reopened.session_count() == one.session_count()
    for *_, cid, seq in commands:
        assert reopened.lookup_session(cid, seq) == one.lookup_session(cid, seq)
    assert reopened.scan(None, None, reverse=False, limit=100) == one.scan(None, None, reverse=False, limit=100)
    reopened.close()
    one.close()
