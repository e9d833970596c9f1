"""The history format: reading, writing, pairing invocations with completions, nemesis intervals."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from jepsen_lite.history import (
    NEMESIS_PROCESS,
    Event,
    HistoryError,
    HistoryRecorder,
    load_jsonl,
    pair_events,
    parse_jsonl,
    write_jsonl,
)
from jepsen_lite.testing import HistoryBuilder

from kvstore.invariants import InvariantViolation


def _line(**fields: object) -> str:
    base: dict[str, object] = {
        "index": 0, "time": 0.0, "process": 0, "type": "invoke", "f": "read", "key": "k", "value": None,
        "node": None, "error": None,
    }
    base.update(fields)
    return json.dumps(base)


def test_jsonl_round_trip_preserves_every_field() -> None:
    """Writing events and reading them back gives equal events, field for field."""
    events = [
        Event(0, 0.5, 3, "invoke", "cas", "k1", [1, 2], None, None),
        Event(1, 0.75, NEMESIS_PROCESS, "info", "nemesis", "bitflip", {"node": "n2"}, None, None),
        Event(2, 1.25, 3, "info", "cas", "k1", [1, 2], "n1", "timeout"),
    ]
    out = io.StringIO()
    write_jsonl(events, out)
    assert parse_jsonl(out.getvalue().splitlines()) == events
    assert list(json.loads(out.getvalue().splitlines()[0])) == list(Event.__dataclass_fields__)


def test_pairing_matches_each_completion_to_its_process_invocation() -> None:
    """Interleaved operations of two processes pair by process, with their times and outputs."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 5)
    b.invoke(1, "read", "x")
    b.ok(1, 5)
    b.ok(0)
    ops = b.history().operations
    assert [(op.process, op.f, op.status, op.output, op.call_time, op.return_time) for op in ops] == [
        (0, "write", "ok", 5, 0.0, 3.0),
        (1, "read", "ok", 5, 1.0, 2.0),
    ]


def test_info_and_missing_completions_stay_open_until_the_end() -> None:
    """An info completion and an invocation never completed both give an open (info) operation."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.info(0)
    b.invoke(1, "write", "x", 2)
    ops = b.history().operations
    assert [op.status for op in ops] == ["info", "info"]
    assert all(math.isinf(op.return_time) for op in ops)
    assert ops[0].return_index == 1 and ops[1].return_index is None


def test_a_process_that_saw_info_may_not_issue_again() -> None:
    """After info, the same process id issuing again is a malformed history."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.info(0)
    b.invoke(0, "read", "x")
    with pytest.raises(HistoryError, match="already saw info"):
        b.history()


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([Event(0, 0, 0, "invoke", "read", "x"), Event(1, 1, 0, "invoke", "read", "x")], "still in flight"),
        ([Event(0, 0, 0, "ok", "read", "x")], "never invoked"),
        ([Event(0, 0, 0, "invoke", "read", "x"), Event(1, 1, 0, "ok", "read", "y")], "but invoked"),
    ],
)
def test_pairing_rejects_impossible_sequences(events: list[Event], message: str) -> None:
    """Double invocations, orphan completions and completions of another key are refused."""
    with pytest.raises(HistoryError, match=message):
        pair_events(events)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"index": 0, "time": 0, "process": 0, "type": "invoke"}), "missing field"),
        (_line(type="done"), "type must be one of"),
        (_line(time="soon"), "time must be"),
        (_line(time=float("nan")), "time must be"),
        (_line(process=1.5), "process must be"),
        (_line(index=True), "index must be"),
        (_line(key=7), "key must be a string"),
        (_line(node=3), "node must be"),
    ],
)
def test_malformed_lines_are_reported_with_their_line_number(line: str, message: str) -> None:
    """Every malformed line gives a HistoryError naming line 2 (after a good first line)."""
    with pytest.raises(HistoryError, match=message) as info:
        parse_jsonl([_line(index=-1), line])
    assert info.value.line == 2
    assert str(info.value).startswith("line 2:")


def test_index_must_increase_and_time_must_not_go_backwards() -> None:
    """Out-of-order indexes and backwards clocks are refused."""
    with pytest.raises(HistoryError, match="does not increase"):
        parse_jsonl([_line(index=3), _line(index=3, time=1.0)])
    with pytest.raises(HistoryError, match="goes backwards"):
        parse_jsonl([_line(index=0, time=2.0), _line(index=1, time=1.0)])


def test_blank_lines_are_ignored() -> None:
    """A trailing newline or a blank line is not an event."""
    assert len(parse_jsonl([_line(), "", "   "])) == 1


def test_nemesis_intervals_pair_starts_with_heals() -> None:
    """Starts pair with heals of the same name; unhealed faults last forever; info is an instant."""
    b = HistoryBuilder()
    b.fault("partition", "invoke", value={"groups": [["n1"], ["n2", "n3"]]})
    b.fault("kill n2", "invoke")
    b.fault("bitflip", "info")
    b.fault("partition", "ok")
    spans = {s.name: (s.start_time, s.end_time) for s in b.history().nemesis}
    assert spans == {"partition": (0.0, 3.0), "kill n2": (1.0, math.inf), "bitflip": (2.0, 2.0)}
    assert b.history().operations == ()


def test_nemesis_process_may_be_written_as_a_string() -> None:
    """process "nemesis" reads as -1, and nemesis events never become client operations."""
    events = parse_jsonl([_line(process="nemesis", f="nemesis", key="partition")])
    assert events[0].process == NEMESIS_PROCESS and events[0].is_nemesis
    assert pair_events(events).operations == ()


def test_unreadable_or_binary_files_raise_history_error(tmp_path: Path) -> None:
    """A missing file and a non-UTF-8 file are HistoryErrors, not OSError or UnicodeDecodeError."""
    with pytest.raises(HistoryError, match="cannot read"):
        load_jsonl(tmp_path / "missing.jsonl")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(HistoryError, match="not UTF-8"):
        load_jsonl(binary)


def test_recorder_streams_events_that_read_back_as_the_same_history() -> None:
    """Events recorded live are written as JSON lines at once and read back equal, with indexes and clock times."""
    ticks = iter([100.0, 100.5, 101.0, 101.0, 102.0, 103.5])
    out = io.StringIO()
    rec = HistoryRecorder(out, clock=lambda: next(ticks))
    p = rec.new_process()
    rec.invoke(p, "write", "k", 1)
    rec.nemesis("partition", "invoke", {"isolated": "n1"})
    rec.complete(p, "info", error="timeout")
    q = rec.new_process()
    rec.invoke(q, "read", "k")
    rec.complete(q, "ok", 1, node="n2")
    rec.check_invariants()
    events = parse_jsonl(out.getvalue().splitlines())
    assert events == rec.events()
    assert [(e.index, e.time, e.process, e.type) for e in events] == [
        (0, 0.5, 0, "invoke"), (1, 1.0, -1, "invoke"), (2, 1.0, 0, "info"), (3, 2.0, 1, "invoke"), (4, 3.5, 1, "ok")
    ]
    ops = rec.history().operations
    assert [(op.process, op.status, op.error) for op in ops] == [(0, "info", "timeout"), (1, "ok", None)]


def test_recorder_refuses_calls_that_break_the_history_rules() -> None:
    """Double invoke, completing nothing, and reusing a process after info are harness bugs (InvariantViolation)."""
    rec = HistoryRecorder()
    rec.invoke(0, "read", "k")
    with pytest.raises(InvariantViolation, match="in flight"):
        rec.invoke(0, "read", "k")
    with pytest.raises(InvariantViolation, match="never invoked"):
        rec.complete(1, "ok")
    rec.complete(0, "info")
    with pytest.raises(InvariantViolation, match="saw info"):
        rec.invoke(0, "read", "k")
    with pytest.raises(InvariantViolation, match="ok, fail or info"):
        rec.complete(0, "invoke")


def test_a_byte_order_mark_and_windows_line_endings_are_tolerated(tmp_path: Path) -> None:
    """A history saved by a Windows editor (BOM, CRLF) reads the same as a plain one."""
    line = json.dumps({"index": 0, "time": 0.0, "process": 0, "type": "invoke", "f": "read", "key": "k"})
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (line + "\r\n").encode())
    assert [e.f for e in load_jsonl(path).events] == ["read"]
