"""Checking a mixed history and writing a run folder's reports; the replicas-agree checker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jepsen_lite.history import HistoryError, load_jsonl
from jepsen_lite.models import RegisterModel
from jepsen_lite.replicas import AGREE, DISAGREE, UNKNOWN, check_replicas
from jepsen_lite.report import check_history, write_reports
from jepsen_lite.testing import HistoryBuilder


def _mixed(*, lose_element: bool, stale_read: bool) -> HistoryBuilder:
    b = HistoryBuilder()
    b.invoke(0, "write", "r", 1)
    b.ok(0)
    b.invoke(1, "add", "s", "a")
    b.ok(1)
    b.fault("partition", "invoke")
    b.invoke(0, "read", "r")
    b.ok(0, None if stale_read else 1)
    b.fault("partition", "ok")
    b.invoke(1, "read-set", "s")
    b.ok(1, [] if lose_element else ["a"])
    return b


@pytest.mark.parametrize(
    ("lose_element", "stale_read", "verdict", "lin", "sets"),
    [
        (False, False, "linearizable", "linearizable", "valid"),
        (True, False, "not-linearizable", "linearizable", "invalid"),
        (False, True, "not-linearizable", "not-linearizable", "valid"),
    ],
)
def test_each_operation_goes_to_its_checker_and_verdicts_combine(
    lose_element: bool, stale_read: bool, verdict: str, lin: str, sets: str
) -> None:
    """Register ops are checked for linearizability, set ops for lost elements; either violation fails the run."""
    result = check_history(_mixed(lose_element=lose_element, stale_read=stale_read).history(), RegisterModel())
    assert result.linearizability is not None and result.sets is not None
    assert (result.verdict, result.linearizability.verdict, result.sets.verdict) == (verdict, lin, sets)
    assert [k.key for k in result.linearizability.keys] == ["r"] and [k.key for k in result.sets.keys] == ["s"]


def test_write_reports_fills_a_run_folder_that_reads_back(tmp_path: Path) -> None:
    """history.jsonl re-reads as the same events, results.json holds the verdict, timeline.html shows the fault."""
    history = _mixed(lose_element=False, stale_read=True).history()
    result = check_history(history, RegisterModel())
    folder = tmp_path / "run-1"
    write_reports(folder, history, result, title="run 1")
    assert load_jsonl(folder / "history.jsonl").events == history.events
    data = json.loads((folder / "results.json").read_text())
    assert data["verdict"] == "not-linearizable"
    assert data["linearizability"]["first_failing_op"] == 2
    page = (folder / "timeline.html").read_text()
    assert 'data-fault="partition"' in page and 'class="op violation"' in page


def test_write_reports_into_an_unwritable_place_is_a_history_error(tmp_path: Path) -> None:
    """A folder path that is a file gives a HistoryError, not an OSError."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HistoryError, match="cannot write"):
        write_reports(blocker, HistoryBuilder().history(), check_history(HistoryBuilder().history(), RegisterModel()))


def test_replicas_agree_when_every_readable_dump_is_equal() -> None:
    """Equal dumps agree; an unreadable node is listed but does not make them disagree."""
    result = check_replicas({"n1": {"a": 1, "b": 2}, "n2": {"b": 2, "a": 1}, "n3": None})
    assert (result.verdict, result.unreadable) == (AGREE, ("n3",))


def test_replicas_disagree_on_a_different_or_missing_key() -> None:
    """A different value and a key missing on one node are both reported per node."""
    result = check_replicas({"n1": {"a": 1, "b": 2}, "n2": {"a": 1, "b": 3}, "n3": {"a": 1}})
    assert result.verdict == DISAGREE
    assert result.differences == {"b": {"n1": 2, "n2": 3, "n3": "<absent>"}}


def test_replicas_with_fewer_than_two_readable_nodes_are_unknown() -> None:
    """One readable node has nothing to agree with."""
    assert check_replicas({"n1": {"a": 1}, "n2": None}).verdict == UNKNOWN
