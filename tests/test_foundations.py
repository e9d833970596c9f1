"""Errors, limits, invariants and trace events: the foundations every part uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kvstore import errors, limits
from kvstore.invariants import InvariantViolation, invariant
from kvstore.trace import JsonLinesTracer, MemoryTracer, TraceEvent, read_trace
from kvstore.wire import kv_pb2
from kvstore.wire.convert import error_from_proto, error_to_proto


def test_every_error_is_a_kverror_with_a_code_and_a_definite_flag() -> None:
    """The tree has one root, and each class says whether the operation certainly did not happen."""
    classes = errors.all_error_classes()
    assert len(classes) > 10
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), "error codes are unique"
    for cls in classes:
        assert issubclass(cls, errors.KVError)
        assert isinstance(cls.definite, bool)


def test_timeouts_and_storage_failures_are_indeterminate_and_refusals_definite() -> None:
    """A client may retry a definite error freely, but not an indeterminate one."""
    assert not errors.OutcomeUnknown("x").definite
    assert not errors.DeadlineExceeded("x").definite
    assert not errors.StorageError("disk full").definite
    assert errors.NotLeaderError("a:1").definite
    assert errors.KeyTooLargeError(5000, 4096).definite
    assert errors.ShuttingDown("bye").definite


def test_invariant_violation_is_not_an_operating_error() -> None:
    """A broken invariant is a bug; code catching KVError must not swallow it."""
    assert not issubclass(InvariantViolation, errors.KVError)
    with pytest.raises(InvariantViolation, match="commit index never decreases"):
        invariant(False, "commit index never decreases")
    invariant(True, "never raised")


def test_invariant_still_fires_under_python_dash_o() -> None:
    """Unlike assert, invariant() is not compiled away by `python -O`."""
    code = "from kvstore.invariants import invariant\ninvariant(1 == 2, 'still checked')"
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "still checked" in done.stderr


@pytest.mark.parametrize(
    ("check", "arg", "error"),
    [
        (limits.check_key, b"k" * (limits.MAX_KEY_BYTES + 1), errors.KeyTooLargeError),
        (limits.check_key, b"", errors.InvalidArgument),
        (limits.check_key, "text", errors.InvalidArgument),
        (limits.check_value, b"v" * (limits.MAX_VALUE_BYTES + 1), errors.ValueTooLargeError),
        (limits.check_value, 42, errors.InvalidArgument),
    ],
)
def test_limits_refuse_bad_keys_and_values_with_typed_errors(check, arg, error) -> None:  # type: ignore[no-untyped-def]
    """Each limit gives its own error class, never a crash or a truncation."""
    with pytest.raises(error):
        check(arg)


def test_limits_accept_values_exactly_at_the_limit() -> None:
    """The limits are inclusive: the largest allowed key and value pass."""
    limits.check_key(b"k" * limits.MAX_KEY_BYTES)
    limits.check_value(b"v" * limits.MAX_VALUE_BYTES)
    limits.check_value(b"")
    limits.check_batch(limits.MAX_BATCH_OPS, limits.MAX_BATCH_BYTES)
    with pytest.raises(errors.BatchTooLargeError, match="operations"):
        limits.check_batch(limits.MAX_BATCH_OPS + 1, 0)


def test_limit_error_message_names_the_size_and_the_limit() -> None:
    """The message tells a user what was too large and by how much."""
    exc = errors.KeyTooLargeError(5000, 4096)
    assert str(exc) == "key size is 5000 bytes, over the limit of 4096 bytes"
    assert (exc.size, exc.limit) == (5000, 4096)


def test_every_named_limit_has_a_comment_saying_why() -> None:
    """'Put a limit on everything' -- and say why that number."""
    lines = Path(limits.__file__).read_text().splitlines()
    for i, line in enumerate(lines):
        if line and line[0].isupper() and " = " in line and line.split(" = ")[0].isupper():
            name = line.split(" = ")[0]
            if name in {"KiB", "MiB"}:
                continue
            block_above = lines[max(0, i - 1)].strip()
            assert block_above.startswith("#") or lines[i - 1].split(" = ")[0].isupper(), f"{name} lacks a comment"


@pytest.mark.parametrize(
    "exc",
    [
        errors.NotLeaderError("127.0.0.1:7002"),
        errors.KeyTooLargeError(5000, 4096),
        errors.ShuttingDown("going away"),
        errors.OutcomeUnknown("lost"),
        errors.CorruptionError("/data/000001.sst", 4096, "bad checksum"),
        errors.Unavailable("stall"),
    ],
)
def test_errors_keep_class_message_and_definiteness_across_the_wire(exc: errors.KVError) -> None:
    """error_to_proto and error_from_proto are inverse on class, message, definite and leader hint."""
    back = error_from_proto(error_to_proto(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.definite == exc.definite
    if isinstance(exc, errors.NotLeaderError):
        assert isinstance(back, errors.NotLeaderError)
        assert back.leader_hint == exc.leader_hint


def test_unknown_wire_error_code_decodes_as_outcome_unknown() -> None:
    """A code from a newer server is treated as the cautious answer, not a crash."""
    back = error_from_proto(kv_pb2.Error(code=999, message="new kind"))  # type: ignore[arg-type]
    assert isinstance(back, errors.OutcomeUnknown)
    assert "new kind" in str(back)


def test_trace_event_round_trips_through_json_lines(tmp_path: Path) -> None:
    """What a tracer writes, read_trace reads back; bytes become text or hex."""
    path = tmp_path / "trace.jsonl"
    tracer = JsonLinesTracer.open(str(path))
    first = TraceEvent(1.5, "n1", 3, "leader", "became_leader", {"votes": 2, "key": b"abc", "raw": b"\xff"})
    tracer.emit(first)
    tracer.emit(TraceEvent(2.0, "n2", 3, "follower", "append", {}))
    tracer.close()
    events = read_trace(str(path))
    assert [e.event for e in events] == ["became_leader", "append"]
    assert events[0].fields == {"votes": 2, "key": "abc", "raw": "0xff"}
    assert (events[0].time, events[0].node, events[0].term, events[0].role) == (1.5, "n1", 3, "leader")


def test_trace_reader_ignores_a_torn_last_line(tmp_path: Path) -> None:
    """A process killed mid-write leaves half a line; the reader stops there without error."""
    path = tmp_path / "trace.jsonl"
    good = TraceEvent(1.0, "n1", 1, "follower", "tick", {}).to_json()
    path.write_text(good + "\n" + good[: len(good) // 2])
    assert len(read_trace(str(path))) == 1


def test_memory_tracer_keeps_events_in_order() -> None:
    """The simulator's tracer records everything it is given, in order."""
    t = MemoryTracer()
    for i in range(3):
        t.emit(TraceEvent(float(i), "n1", 0, "", f"e{i}", {}))
    assert [e.event for e in t.events] == ["e0", "e1", "e2"]
