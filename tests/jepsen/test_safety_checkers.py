"""The checkers that read the nodes' own records: election safety from traces, committed-log agreement; deletes."""

from __future__ import annotations

import json
from pathlib import Path

from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, check_operations
from jepsen_lite.elections import NO_TRACES, SAFE, UNSAFE, check_elections, check_trace_files, leaders_by_term
from jepsen_lite.models import RegisterModel
from jepsen_lite.replicas import AGREE, DISAGREE, UNKNOWN, check_logs
from jepsen_lite.testing import HistoryBuilder
from jepsen_lite.workloads import decode_padded


def _trace_line(node: str, term: int, event: str) -> str:
    return json.dumps({"time": 0.0, "node": node, "term": term, "role": "leader", "event": event, "fields": {}})


def test_one_leader_per_term_is_safe_and_two_are_reported_with_their_term() -> None:
    """A term led by two nodes is UNSAFE and named; successive terms with one leader each are SAFE."""
    lines = [("n1", _trace_line("n1", 1, "became_leader")), ("n2", _trace_line("n2", 2, "became_leader"))]
    assert check_elections(leaders_by_term(lines)).verdict == SAFE
    lines.append(("n3", _trace_line("n3", 2, "became_leader")))
    result = check_elections(leaders_by_term(lines))
    assert result.verdict == UNSAFE
    assert result.violations == {2: ["n2", "n3"]}
    assert "term 2: n2+n3" in result.summary()


def test_the_same_leader_twice_in_a_term_and_torn_lines_are_not_violations() -> None:
    """A node tracing became_leader twice in a term is one leader; a torn last line (SIGKILL) is skipped."""
    lines = [("n1", _trace_line("n1", 3, "became_leader")), ("n1", _trace_line("n1", 3, "became_leader")),
             ("n2", '{"time": 1.0, "node": "n2", "te')]
    assert check_elections(leaders_by_term(lines)).verdict == SAFE


def test_traces_without_any_leader_are_never_a_pass() -> None:
    """No became_leader event at all means nothing was checked: NO_TRACES, not SAFE."""
    assert check_elections(leaders_by_term([("n1", _trace_line("n1", 1, "became_follower"))])).verdict == NO_TRACES


def test_election_check_reads_a_run_folders_node_traces(tmp_path: Path) -> None:
    """check_trace_files finds nodes/<id>/trace.jsonl and reports a doubled term across files."""
    for node, term in (("n1", 4), ("n2", 4)):
        folder = tmp_path / node
        folder.mkdir()
        (folder / "trace.jsonl").write_text(_trace_line(node, term, "became_leader") + "\n")
    assert check_trace_files(tmp_path).violations == {4: ["n1", "n2"]}


def test_committed_logs_that_differ_at_an_index_disagree() -> None:
    """Two nodes holding different committed entries at one index is DISAGREE, naming index and terms."""
    same = {1: (1, b"a"), 2: (1, b"b")}
    assert check_logs({"n1": same, "n2": dict(same)}).verdict == AGREE
    diverged = {1: (1, b"a"), 2: (2, b"c")}
    result = check_logs({"n1": same, "n2": diverged, "n3": None})
    assert result.verdict == DISAGREE
    assert result.differences == {2: {"n1": 1, "n2": 2}}
    assert result.unreadable == ("n3",)


def test_logs_compacted_at_different_points_compare_only_what_both_hold() -> None:
    """An index one node compacted away is not compared; fewer than two readable logs is UNKNOWN."""
    result = check_logs({"n1": {5: (2, b"x"), 6: (2, b"y")}, "n2": {6: (2, b"y")}})
    assert (result.verdict, result.compared) == (AGREE, 1)
    assert check_logs({"n1": {1: (1, b"a")}, "n2": None}).verdict == UNKNOWN


def test_a_read_of_a_deleted_key_that_returns_its_old_value_is_not_linearizable() -> None:
    """The register model's delete makes the key absent: absent afterwards is fine, the old value is not."""
    model = RegisterModel()
    for seen, verdict in ((None, LINEARIZABLE), (1, NOT_LINEARIZABLE)):
        b = HistoryBuilder()
        b.ok(b.invoke(0, "write", "k", 1))
        b.ok(b.invoke(0, "delete", "k"))
        b.ok(b.invoke(1, "read", "k"), seen)
        assert check_operations(b.history().operations, model).verdict == verdict


def test_padded_delete_workload_values_decode_to_their_number() -> None:
    """``7:....`` reads as 7, absent as None, anything else as its text (so the checker reports it)."""
    assert decode_padded(b"7:" + b"." * 512) == 7
    assert decode_padded(None) is None
    assert decode_padded(b"junk") == "junk"


def test_kill_voter_reads_back_the_real_vote_a_node_granted_above_a_term(tmp_path: Path) -> None:
    """voted_after ignores pre-votes and older terms: it names the candidate of the real vote the trace shows."""
    from jepsen_lite.nemesis import voted_after

    def vote(term: int, candidate: str, pre: bool) -> str:
        fields = {"candidate": candidate, "pre_vote": pre}
        return json.dumps({"time": 0.0, "node": "n2", "term": term, "role": "follower", "event": "vote_granted",
                           "fields": fields})

    trace = tmp_path / "trace.jsonl"
    trace.write_text("\n".join([vote(3, "n1", False), vote(5, "n3", True)]) + "\n")
    assert voted_after(trace, above_term=4) is None, "only a pre-vote above term 4"
    with open(trace, "a", encoding="utf-8") as fh:
        fh.write(vote(5, "n3", False) + "\n")
    assert voted_after(trace, above_term=4) == "n3"
    assert voted_after(tmp_path / "missing.jsonl", above_term=0) is None
